"""Conversation memory through the real server: resume, isolation, reset, restart, bad database.

The memory tests run on both backends: the shared SQLite server, and a server whose
VOICE_CHAT_DATABASE_URL points at a real PostgreSQL cluster started by the ``postgres`` fixture.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from voice_chat.client.launcher import start_server
from voice_chat.client.rtclient import RealtimeClient
from voice_chat.memory import MemoryStoreError
from voice_chat.memory.conversations import ConversationMemory

slow = pytest.mark.slow
SHORT = {"VOICE_CHAT_MAX_REPLY_SENTENCES": "1", "VOICE_CHAT_MAX_REPLY_TOKENS": "24"}


def memo_card(server: Any) -> str:
    """A character with a short greeting (replies are paced in real time: keep them short)."""
    data = {
        "name": f"Memo {uuid.uuid4().hex[:6]}",
        "description": "{{char}} is a friend with a good memory.",
        "first_mes": "Hi there.",
        "system_prompt": "You are {{char}}. Answer {{user}} in one very short sentence.",
    }
    card = {"spec": "chara_card_v2", "spec_version": "2.0", "data": data}
    r = httpx.post(server.url + "/v1/characters", json=card)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def memory_server(request: pytest.FixtureRequest, tmp_path_factory) -> Iterator[Any]:
    """A live server on each backend (SQLite: the session's shared server)."""
    if request.param == "sqlite":
        yield request.getfixturevalue("live_server")
        return
    database = request.getfixturevalue("postgres").create_database()
    server = start_server(
        tmp_path_factory.mktemp("pg-server"), env={"VOICE_CHAT_DATABASE_URL": database}
    )
    try:
        health = httpx.get(server.url + "/healthz").json()["memory"]
        assert health["backend"] == "postgresql" and "vc-test-secret" not in health["database"]
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def memo(memory_server) -> str:
    return memo_card(memory_server)


def new_user(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def say(rt: RealtimeClient, text: str) -> dict[str, Any]:
    await rt.send(
        {
            "type": "conversation.item.create",
            "item": {"type": "message", "role": "user", "text": text},
        }
    )
    done = await rt.wait_for("response.done", timeout=60)
    assert done.event["response"]["status"] == "completed"
    return done.event["response"]


def stored(server: Any, user: str, character: str) -> list[tuple[str, str]]:
    r = httpx.get(server.url + "/v1/conversations", params={"user": user, "character": character})
    assert r.status_code == 200, r.text
    return [(m["role"], m["text"]) for m in r.json()["messages"]]


async def created(rt: RealtimeClient) -> dict[str, Any]:
    return (await rt.wait_for("session.created", timeout=10)).event["session"]["conversation"]


async def no_reply_within(rt: RealtimeClient, seconds: float) -> bool:
    await asyncio.sleep(seconds)
    return not rt.events("response.created")


@slow
async def test_users_are_isolated_and_reconnecting_resumes(memory_server, memo: str) -> None:
    live_server = memory_server
    alice, bob = new_user("alice"), new_user("bob")

    async def chat(user: str, text: str) -> list[tuple[str, str]]:
        async with RealtimeClient.connect(live_server.ws_url, character=memo, user=user) as rt:
            assert await created(rt) == {"id": "default", "resumed": False, "turns": []}
            greeting = (await rt.wait_for("response.done", timeout=60)).event["response"]["text"]
            reply = await say(rt, text)
            return [("assistant", greeting), ("user", text), ("assistant", reply["text"])]

    # Two sessions at once on the same character.
    a_turns, b_turns = await asyncio.gather(
        chat(alice, "My cat is called Pumpkin."), chat(bob, "I collect old trains.")
    )
    assert stored(live_server, alice, memo) == a_turns
    assert stored(live_server, bob, memo) == b_turns
    async with RealtimeClient.connect(live_server.ws_url, character=memo, user=alice) as rt:
        conv = await created(rt)
        assert conv["resumed"] and [(t["role"], t["text"]) for t in conv["turns"]] == a_turns
        assert await no_reply_within(rt, 1.5)  # no greeting replay
        # Switching user mid-session switches conversation: new turns go to bob's.
        await rt.send({"type": "session.update", "session": {"user": {"id": bob}}})
        updated = (await rt.wait_for("session.updated", timeout=10)).event["session"]
        assert updated["user"]["id"] == bob
        assert [(t["role"], t["text"]) for t in updated["conversation"]["turns"]] == b_turns
        text = "Which trains do I like?"
        item = {"type": "message", "role": "user", "text": text}
        await rt.send({"type": "conversation.item.create", "item": item})
        await rt.wait_for("response.created", timeout=30)
        await rt.send({"type": "response.cancel"})
        await rt.wait_for("response.done", timeout=10)
        await asyncio.sleep(0.3)
    bob_now = stored(live_server, bob, memo)
    assert bob_now[:4] == [*b_turns, ("user", text)] and len(bob_now) <= 5
    assert stored(live_server, alice, memo) == a_turns
    # DELETE resets: the next connection is a new conversation with a greeting.
    params = {"user": alice, "character": memo}
    r = httpx.delete(live_server.url + "/v1/conversations", params=params)
    assert r.status_code == 200 and r.json()["deleted"] == 3
    assert stored(live_server, alice, memo) == []
    async with RealtimeClient.connect(live_server.ws_url, character=memo, user=alice) as rt:
        assert (await created(rt))["resumed"] is False
        await rt.wait_for("response.done", timeout=60)
    assert len(stored(live_server, alice, memo)) == 1
    assert stored(live_server, bob, memo) == bob_now


@slow
async def test_what_was_heard_is_stored(memory_server) -> None:
    live_server = memory_server
    user = new_user("cut")
    async with RealtimeClient.connect(live_server.ws_url, character="pip", user=user) as rt:
        greet = (await rt.wait_for("response.done", timeout=60)).event["response"]
        await rt.send(
            {"type": "conversation.item.truncate", "response_id": greet["id"], "audio_end_ms": 800}
        )
        cut = (await rt.wait_for("conversation.item.truncated", timeout=10)).event["text"]
        assert 0 < len(cut) < len(greet["text"])
        await asyncio.sleep(0.3)
    assert stored(live_server, user, "pip") == [("assistant", cut)]
    # A reply cancelled while it plays keeps only what was sent.
    user = new_user("cancel")
    async with RealtimeClient.connect(live_server.ws_url, character="pip", user=user) as rt:
        started = await rt.wait_for("response.audio.started", timeout=60)
        await asyncio.sleep(1.0)
        await rt.send({"type": "response.cancel"})
        done = await rt.wait_for(
            "response.done", timeout=10, response_id=started.event["response_id"]
        )
        assert done.event["response"]["status"] == "cancelled"
    history = stored(live_server, user, "pip")
    full = " ".join(done.event["response"]["text"].split())
    assert len(history) <= 1 and all(full.startswith(text) and text != full for _, text in history)


@slow
async def test_greetings_random_or_pinned(live_server) -> None:
    card = {
        "spec": "chara_card_v2",
        "spec_version": "2.0",
        "data": {
            "name": f"Greeter {uuid.uuid4().hex[:6]}",
            "description": "Greets.",
            "first_mes": "Greeting zero.",
            "alternate_greetings": ["Greeting one.", "Greeting two."],
        },
    }
    r = httpx.post(
        live_server.url + "/v1/characters",
        content=json.dumps(card),
        headers={"Content-Type": "application/json"},
    )
    cid = r.json()["id"]
    options = {"Greeting zero.", "Greeting one.", "Greeting two."}
    heard = set()
    for pin in ("2", None, None, None, "9"):
        async with RealtimeClient.connect(
            live_server.ws_url, character=cid, user=new_user("g"), greeting=pin
        ) as rt:
            text = (
                (await rt.wait_for("response.done", timeout=60)).event["response"]["text"].strip()
            )
            if pin == "2":
                assert text == "Greeting two."
            if pin == "9":
                assert rt.events("error")[0]["error"]["code"] == "invalid_greeting"
            heard.add(text)
    assert heard <= options
    # Bad user ids: an error, and the conversation is not saved.
    async with RealtimeClient.connect(
        live_server.ws_url, character=cid, user="no spaces/allowed"
    ) as rt:
        err = await rt.wait_for("error", timeout=10)
        assert err.event["error"]["code"] == "invalid_event"
        await rt.wait_for("response.done", timeout=60)
    r = httpx.get(live_server.url + "/v1/conversations", params={"user": "../x", "character": cid})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_request"


@slow
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_memory_survives_a_restart(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    data, user = tmp_path / "data", "robin"
    env = dict(SHORT)
    if backend == "postgresql":
        env["VOICE_CHAT_DATABASE_URL"] = request.getfixturevalue("postgres").create_database()
    server = start_server(data, env=env)
    try:
        cid = memo_card(server)
        async with RealtimeClient.connect(server.ws_url, character=cid, user=user) as rt:
            greeting = (await rt.wait_for("response.done", timeout=60)).event["response"]["text"]
            reply = await say(rt, "Please remember that I am learning the cello.")
    finally:
        server.stop()
    before = [
        ("assistant", greeting),
        ("user", "Please remember that I am learning the cello."),
        ("assistant", reply["text"]),
    ]
    server = start_server(data, env=env)
    try:
        assert stored(server, user, cid) == before
        async with RealtimeClient.connect(server.ws_url, character=cid, user=user) as rt:
            conv = await created(rt)
            assert conv["resumed"] and [(t["role"], t["text"]) for t in conv["turns"]] == before
            assert await no_reply_within(rt, 1.5)
            await say(rt, "What instrument am I learning?")
        assert len(stored(server, user, cid)) == 5
    finally:
        server.stop()


@slow
async def test_corrupt_database_is_reported_and_left_alone(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    db = data / "voice_chat.db"
    garbage = b"this is not an SQLite database\n" * 200
    db.write_bytes(garbage)
    server = start_server(data, env=SHORT)
    try:
        cid = memo_card(server)
        async with RealtimeClient.connect(server.ws_url, character=cid, user="dana") as rt:
            assert (await created(rt))["resumed"] is False
            err = await rt.wait_for("error", timeout=10)
            assert err.event["error"]["code"] == "memory_unavailable"
            await rt.wait_for("response.done", timeout=60)  # the call goes on, in memory
            await say(rt, "Can you hear me?")
        for method in ("GET", "DELETE"):
            r = httpx.request(
                method,
                server.url + "/v1/conversations",
                params={"user": "dana", "character": cid},
            )
            assert r.status_code == 503 and r.json()["error"]["code"] == "memory_unavailable"
            assert "not a database" in r.json()["error"]["message"]
    finally:
        server.stop()
    assert db.read_bytes() == garbage


# ------------------------------------------------------- the write-through cache, no server
class Outbox:
    def __init__(self) -> None:
        self.errors: list[tuple[str, str]] = []

    async def event(self, payload: dict[str, Any]) -> None:
        pass

    async def audio(self, pcm: bytes) -> None:
        pass

    async def error(self, code: str, message: str) -> None:
        self.errors.append((code, message))


async def settle(memory: ConversationMemory) -> None:
    await memory.call(lambda store: None)  # every queued write is done
    await asyncio.sleep(0.05)  # and reported errors delivered


@pytest.fixture(params=["sqlite", "postgresql"])
def memory_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'm.db'}"
    return str(request.getfixturevalue("postgres").create_database())


async def test_turns_are_written_through_in_order(memory_url: str) -> None:
    memory, out = ConversationMemory(memory_url), Outbox()
    conv = await memory.open_conversation("u1", "c1", out.error)
    assert conv.saving and not conv.resumed
    conv.add("assistant", "Hello there, how are you?")
    user = conv.add("user", "Fine thanks.")
    reply = conv.add("assistant", "Great to hear. Tell me more.")
    conv.update(reply, "Great to hear.")  # barge-in: only what was heard
    conv.remove(user)  # a user turn transcribed again
    (await memory.open_conversation("u2", "c1", out.error)).add("user", "Someone else.")
    expected = [("assistant", "Hello there, how are you?"), ("assistant", "Great to hear.")]
    got = await memory.conversation("u1", "c1")
    assert [(m["role"], m["text"]) for m in got["messages"]] == expected
    again = await memory.open_conversation("u1", "c1", out.error)
    assert again.resumed and [(t.role, t.text) for t in again.turns()] == expected
    assert await memory.reset("u1", "c1") == 2
    assert conv.turns() == [] and again.turns() == []  # live sessions forget too
    conv.update(reply, "late")  # its message is gone: ignored, not an error
    await settle(memory)
    assert out.errors == []
    assert len((await memory.conversation("u2", "c1"))["messages"]) == 1
    memory.close()


async def test_unusable_database_keeps_sessions_going(tmp_path: Path) -> None:
    db = tmp_path / "bad.db"
    db.write_bytes(b"garbage" * 500)
    memory, out = ConversationMemory(f"sqlite:///{db}"), Outbox()
    conv = await memory.open_conversation("u", "c", out.error)
    assert conv.pending[0][0] == "memory_unavailable" and not conv.saving
    conv.add("user", "hi")
    assert [t.text for t in conv.turns()] == ["hi"]
    with pytest.raises(MemoryStoreError):
        await memory.conversation("u", "c")
    memory.close()
    assert db.read_bytes() == b"garbage" * 500


async def test_a_failed_write_is_reported_once(memory_url: str) -> None:
    memory, out = ConversationMemory(memory_url), Outbox()
    conv = await memory.open_conversation("u", "c", out.error)
    conv.add("user", "saved")
    await memory.call(lambda store: store.close())  # the database goes away mid-session
    conv.add("assistant", "not saved")
    conv.add("user", "not saved either")
    await settle(memory)
    assert [code for code, _ in out.errors] == ["memory_unavailable"]
    assert [t.text for t in conv.turns()] == ["saved", "not saved", "not saved either"]
    memory.close()


async def test_lost_postgres_connection_mid_call(postgres) -> None:
    url = postgres.create_database()
    memory, out = ConversationMemory(url), Outbox()
    conv = await memory.open_conversation("u", "c", out.error)
    conv.add("user", "saved")
    await settle(memory)
    assert memory.health()["status"] == "ok"
    postgres.terminate_connections(url.rsplit("/", 1)[1])  # the database drops us mid-call
    conv.add("assistant", "lost")
    conv.add("user", "not saved either")
    await settle(memory)
    assert [code for code, _ in out.errors] == ["memory_unavailable"]
    assert "connection" in out.errors[0][1] and "vc-test-secret" not in out.errors[0][1]
    assert [t.text for t in conv.turns()] == ["saved", "lost", "not saved either"]  # goes on
    health = memory.health()
    assert health["status"] == "unavailable" and "io_error" in health["error"]
    # The next session connects again and resumes what was saved.
    again = await memory.open_conversation("u", "c", out.error)
    assert again.saving and [t.text for t in again.turns()] == ["saved"]
    assert memory.health()["status"] == "ok"
    memory.close()


async def test_unreachable_postgres_keeps_sessions_going() -> None:
    from conftest import free_port

    memory, out = (
        ConversationMemory(f"postgresql://voice:pw@127.0.0.1:{free_port()}/voice"),
        Outbox(),
    )
    conv = await memory.open_conversation("u", "c", out.error)
    assert conv.pending[0][0] == "memory_unavailable" and not conv.saving
    assert "reachable" in conv.pending[0][1]
    conv.add("user", "hi")
    assert [t.text for t in conv.turns()] == ["hi"]
    health = memory.health()
    assert health["status"] == "unavailable" and health["backend"] == "postgresql"
    assert (
        health["database"] == health["database"].replace(":pw@", "") and "***" in health["database"]
    )
    memory.close()


@slow
async def test_server_with_unreachable_postgres_explains_and_talks(tmp_path: Path) -> None:
    from conftest import free_port

    url = f"postgresql://voice:secret@127.0.0.1:{free_port()}/voice"
    server = start_server(tmp_path / "data", env={**SHORT, "VOICE_CHAT_DATABASE_URL": url})
    try:
        memory = httpx.get(server.url + "/healthz").json()["memory"]
        assert memory["status"] == "unavailable" and "reachable" in memory["error"]
        assert "secret" not in json.dumps(memory)
        async with RealtimeClient.connect(server.ws_url, character="pip", user="eve") as rt:
            err = await rt.wait_for("error", timeout=10)
            assert err.event["error"]["code"] == "memory_unavailable"
            await rt.wait_for("response.done", timeout=60)  # the call goes on, in memory
            await say(rt, "Can you hear me?")
        assert "conversation memory unavailable" in server.log()
    finally:
        server.stop()
