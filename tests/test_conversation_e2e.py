"""Characters that hold a conversation, through the real server and the real model.

The name told in turn 2 is recalled at turn 30, after reconnecting and after a restart;
another user never hears it; a 500-turn conversation keeps answering, also after a restart;
a failed reply leaves no half turn; presets are listed and a bad switch keeps the old model.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from voice_chat.client.launcher import start_server
from voice_chat.client.rtclient import RealtimeClient
from voice_chat.memory import Store

slow = pytest.mark.slow
SHORT = {"VOICE_CHAT_MAX_REPLY_SENTENCES": "1", "VOICE_CHAT_MAX_REPLY_TOKENS": "24"}
SMALL_TALK = [
    "What a day it has been.",
    "Do you like rainy weather?",
    "I made pancakes for breakfast.",
    "What is your favorite season?",
    "Tell me something that makes you happy.",
    "Have you ever seen the sea at night?",
    "I think I need a holiday.",
    "What kind of music do you like?",
    "My neighbour plays the drums every evening.",
    "Do you prefer mornings or evenings?",
    "I read a good book last week.",
    "What do you think about cats?",
    "It is getting cold outside.",
    "Have you got any plans for the weekend?",
]


async def say(rt: RealtimeClient, text: str, timeout: float = 90) -> dict[str, Any]:
    rt.mark()
    await rt.send({"type": "conversation.item.create", "item": {"role": "user", "text": text}})
    done = await rt.wait_for("response.done", timeout=timeout)
    return done.event["response"]


async def connect_and(server: Any, user: str, lines: list[str]) -> list[dict[str, Any]]:
    async with RealtimeClient.connect(server.ws_url, character="nova", user=user) as rt:
        created = await rt.wait_for("session.created", timeout=30)
        if not created.event["session"]["conversation"]["resumed"]:
            await rt.wait_for("response.done", timeout=90)  # the greeting
        return [await say(rt, line) for line in lines]


def _quality_installed() -> bool:
    from voice_chat.engines.presets import PRESETS

    return not PRESETS["quality"].missing()


@slow
@pytest.mark.parametrize("preset", ["fast", "quality"])
def test_the_name_told_in_turn_two_is_remembered_at_turn_thirty_and_later(
    tmp_path: Path, preset: str
) -> None:
    """The memory holds the name for every prompt; the quality model also says it back.

    SmolLM2-135M (fast) repeats the name back about half the time even with it in the prompt
    (docs/performance.md), so for it the test checks what is kept and who sees it.
    """
    if preset == "quality" and not _quality_installed():
        pytest.skip("the quality extra is not installed")
    env = {**SHORT, "VOICE_CHAT_LLM_PRESET": preset}
    say_back = preset == "quality"
    server = start_server(tmp_path / "data", env=env, timeout=600)
    user, other = f"maya-{uuid.uuid4().hex[:6]}", f"other-{uuid.uuid4().hex[:6]}"
    try:
        lines = ["Hi Nova!", "I'm Maya, by the way. Nice to talk to you."]
        lines += [SMALL_TALK[i % len(SMALL_TALK)] for i in range(27)]
        lines.append("Do you remember my name?")
        replies = asyncio.run(connect_and(server, user, lines))
        assert all(r["status"] == "completed" for r in replies)
        if say_back:
            assert "maya" in replies[-1]["text"].lower(), replies[-1]["text"]
        again = asyncio.run(connect_and(server, user, ["What is my name again?"]))
        if say_back:
            assert "maya" in again[0]["text"].lower(), again[0]["text"]
        stranger = asyncio.run(connect_and(server, other, ["Hi. What is my name?"]))
        assert "maya" not in stranger[0]["text"].lower(), stranger[0]["text"]
        params = {"user": user, "character": "nova"}
        mine = httpx.get(server.url + "/v1/conversations", params=params)
        assert {"kind": "name", "value": "Maya"} in mine.json()["memory"]
        params["user"] = other
        theirs = httpx.get(server.url + "/v1/conversations", params=params)
        assert all(m["value"] != "Maya" for m in theirs.json()["memory"])
    finally:
        server.stop()
    server = start_server(tmp_path / "data", env=env, timeout=600)  # the next day: a restart
    try:
        later = asyncio.run(connect_and(server, user, ["Hello again! Who am I?"]))
        assert later[0]["status"] == "completed"
        if say_back:
            assert "maya" in later[0]["text"].lower(), later[0]["text"]
        mine = httpx.get(
            server.url + "/v1/conversations", params={"user": user, "character": "nova"}
        )
        assert {"kind": "name", "value": "Maya"} in mine.json()["memory"]
    finally:
        server.stop()


@slow
def test_a_500_turn_conversation_keeps_answering_also_after_a_restart(tmp_path: Path) -> None:
    data = tmp_path / "data"
    user = f"long-{uuid.uuid4().hex[:6]}"
    with Store(data / "voice_chat.db") as store:  # 500 turns, far over the 2048-token context
        store.remember(user, "nova", "name", "Maya")
        for i in range(250):
            store.append(user, "nova", "user", f"{SMALL_TALK[i % len(SMALL_TALK)]} ({i})")
            store.append(user, "nova", "assistant", f"That is lovely, tell me more about it. ({i})")
    env = {**SHORT, "VOICE_CHAT_MAX_REPLY_TOKENS": "16"}
    for run in range(2):
        server = start_server(data, env=env)
        try:
            lines = [SMALL_TALK[(run * 5 + i) % len(SMALL_TALK)] for i in range(5)]
            replies = asyncio.run(connect_and(server, user, lines))
            assert [r["status"] for r in replies] == ["completed"] * 5
            assert all(r["text"].strip() for r in replies)
            assert "exceed context" not in server.log()
        finally:
            server.stop()
    with Store(data / "voice_chat.db") as store:
        history = store.history(user, "nova")
    assert len(history) == 500 + 2 * 2 * 5
    roles = [m.role for m in history]
    assert roles == ["user", "assistant"] * (len(roles) // 2)  # no half turn anywhere


@slow
def test_a_failed_reply_leaves_no_half_turn(tmp_path: Path) -> None:
    # A context too small for the persona once the reply has room: every reply fails, cleanly.
    env = {"VOICE_CHAT_LLM_CONTEXT": "256", "VOICE_CHAT_MAX_REPLY_TOKENS": "200"}
    server = start_server(tmp_path / "data", env=env)
    user = f"fail-{uuid.uuid4().hex[:6]}"
    try:

        async def run() -> tuple[dict[str, Any], list[dict[str, Any]]]:
            async with RealtimeClient.connect(server.ws_url, character="nova", user=user) as rt:
                await rt.wait_for("response.done", timeout=60)  # the greeting (no LLM)
                done = await say(rt, "Tell me a long story about the sea.")
                return done, rt.events("error")

        done, errors = asyncio.run(run())
        assert done["status"] == "failed"
        failed = [e["error"]["message"] for e in errors if e["error"]["code"] == "response_failed"]
        assert failed and "raise VOICE_CHAT_LLM_CONTEXT" in failed[0]
        stored = httpx.get(
            server.url + "/v1/conversations", params={"user": user, "character": "nova"}
        ).json()["messages"]
        assert [m["role"] for m in stored] == ["assistant"]  # only the greeting
        assert httpx.get(server.url + "/healthz").status_code == 200
    finally:
        server.stop()


def test_presets_are_listed_and_a_bad_switch_keeps_the_old_model(live_server: Any) -> None:
    url = live_server.url + "/v1/presets"
    listed = httpx.get(url).json()
    assert listed["current"] == "fast" and listed["model"] == "embedded:smollm2-135m"
    assert {p["name"] for p in listed["presets"]} >= {"fast", "quality"}
    r = httpx.put(url + "/current", json={"preset": "huge"})
    assert r.status_code == 422 and "unknown preset 'huge'" in r.json()["error"]["message"]
    r = httpx.put(url + "/current", json={"model": "/nonexistent/model.gguf"})
    assert r.status_code == 422 and "still serving embedded:smollm2-135m" in r.text
    bad = Path(live_server.data) / "broken.gguf"
    bad.write_bytes(b"GGUF" + b"\0" * 64)
    r = httpx.put(url + "/current", json={"model": str(bad)})
    assert r.status_code == 422 and "could not load GGUF model" in r.json()["error"]["message"]
    assert httpx.get(url).json()["model"] == "embedded:smollm2-135m"

    async def still_talks() -> dict[str, Any]:
        async with RealtimeClient.connect(live_server.ws_url, character="nova") as rt:
            await rt.wait_for("response.done", timeout=60)
            return await say(rt, "Hello!")

    assert asyncio.run(still_talks())["status"] == "completed"


def test_an_unknown_preset_is_refused_at_start_up(tmp_path: Path) -> None:
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "voice_chat", "serve", "--preset", "huge", "--data", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "unknown preset 'huge'" in proc.stderr


def test_a_gguf_that_will_not_load_is_reported_by_healthz(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys
    import time

    from voice_chat.client.launcher import free_port

    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"not a gguf at all")
    port = free_port()
    env = {**os.environ, "VOICE_CHAT_DATA": str(tmp_path), "VOICE_CHAT_LLM_MODEL": str(bad)}
    cmd = [sys.executable, "-m", "voice_chat", "serve", "--port", str(port)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline, health = time.monotonic() + 90, {}
        while time.monotonic() < deadline and health.get("status") != "failed":
            time.sleep(0.5)
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).json()
            except httpx.HTTPError:
                pass
        assert health.get("status") == "failed", health
        assert "could not load GGUF model" in health["error"] and str(bad) in health["error"]
    finally:
        proc.terminate()
        proc.wait(20)
