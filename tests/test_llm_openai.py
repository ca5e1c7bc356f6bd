"""The OpenAI-compatible backend against a real server: llama-cpp-python's own, on loopback."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from conftest import free_port, start_server, stop_server

from voice_chat.client.rtclient import RealtimeClient
from voice_chat.engines.base import EngineError, GenerationOptions
from voice_chat.engines.llm_llama import resolve_gguf
from voice_chat.engines.llm_openai import OpenAIChat

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def openai_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    pytest.importorskip("llama_cpp.server", reason="needs llama-cpp-python[server]")
    gguf = resolve_gguf("embedded:smollm2-135m", tmp_path_factory.mktemp("cache"))
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(gguf),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_threads",
            "1",
            "--n_ctx",
            "2048",
            "--model_alias",
            "smollm2",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/models", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("llama_cpp.server did not start")
    yield base
    proc.terminate()
    proc.wait(20)


async def test_streams_a_reply(openai_server: str) -> None:
    chat = OpenAIChat(base_url=openai_server, model="smollm2")
    await chat.check()
    messages = [
        {"role": "system", "content": "You are a friendly pirate."},
        {"role": "user", "content": "Say hello in one short sentence."},
    ]
    deltas = [
        d async for d in chat.stream(messages, GenerationOptions(max_tokens=30), threading.Event())
    ]
    assert len(deltas) > 1, deltas  # streamed, not one block
    assert "".join(deltas).strip()
    await chat.aclose()


async def test_cancel_stops_the_stream(openai_server: str) -> None:
    chat = OpenAIChat(base_url=openai_server, model="smollm2")
    cancel = threading.Event()
    got = []
    async for d in chat.stream(
        [{"role": "user", "content": "Count from one to one hundred."}],
        GenerationOptions(max_tokens=200),
        cancel,
    ):
        got.append(d)
        if len(got) == 3:
            cancel.set()
    assert len(got) == 3
    await chat.aclose()


async def test_unreachable_server_is_a_clear_error() -> None:
    chat = OpenAIChat(base_url=f"http://127.0.0.1:{free_port()}/v1", model="x")
    with pytest.raises(EngineError, match="cannot reach"):
        await chat.check()
    with pytest.raises(EngineError, match="request failed"):
        async for _ in chat.stream(
            [{"role": "user", "content": "hi"}], GenerationOptions(), threading.Event()
        ):
            pass
    await chat.aclose()


async def test_voice_chat_server_talks_through_it(openai_server: str, tmp_path) -> None:
    server = start_server(
        tmp_path,
        env={
            "VOICE_CHAT_LLM_ENGINE": "openai",
            "VOICE_CHAT_LLM_BASE_URL": openai_server,
            "VOICE_CHAT_LLM_MODEL": "smollm2",
        },
    )
    try:
        async with RealtimeClient.connect(server.ws_url, character="nova") as rt:
            await rt.wait_for("response.done", timeout=60)
            await rt.send({"type": "conversation.item.create", "item": {"text": "How are you?"}})
            done = await rt.wait_for("response.done", timeout=60)
            assert done.event["response"]["status"] == "completed"
            assert done.event["response"]["text"].strip()
    finally:
        stop_server(server)
