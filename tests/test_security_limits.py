"""Limits against a real server with small limits: sessions per client, text-event rate, idle
sessions and idle TCP connections, connections per address, upload rate, the transport's
message size, and the crash-hygiene cases (nested JSON, staging leftovers after kill -9)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

from voice_chat.client.launcher import LiveServer, start_server
from voice_chat.client.rtclient import RealtimeClient

pytestmark = pytest.mark.slow
LIMITS = {
    "VOICE_CHAT_MAX_SESSIONS_PER_CLIENT": "2",
    "VOICE_CHAT_MAX_EVENTS_PER_S": "5",
    "VOICE_CHAT_EVENT_BURST": "10",
    "VOICE_CHAT_IDLE_TIMEOUT_S": "3",
    "VOICE_CHAT_HEADER_TIMEOUT_S": "1",
    "VOICE_CHAT_MAX_CONNECTIONS_PER_CLIENT": "20",
    "VOICE_CHAT_MAX_UPLOADS_PER_MIN": "3",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    srv = start_server(tmp_path_factory.mktemp("limits"), env=LIMITS)
    yield srv
    srv.stop()


def _port(server: LiveServer) -> int:
    return int(server.url.rsplit(":", 1)[1])


def _healthy(server: LiveServer) -> bool:
    return httpx.get(server.url + "/healthz", timeout=5).status_code == 200


async def test_sessions_per_client(server: LiveServer) -> None:
    url = server.ws_url + "/v1/realtime?character=nova"
    async with websockets.connect(url), websockets.connect(url):
        with pytest.raises(InvalidStatus) as info:
            async with websockets.connect(url, open_timeout=10):
                pass
        assert info.value.response.status_code == 429
        body = json.loads(info.value.response.body)
        assert "VOICE_CHAT_MAX_SESSIONS_PER_CLIENT" in body["error"]["message"]
    await asyncio.sleep(0.5)  # both closed: a new one is welcome again
    async with websockets.connect(url) as ws:
        assert json.loads(await ws.recv())["type"] == "session.created"


async def test_text_events_are_rate_limited(server: LiveServer) -> None:
    async with RealtimeClient.connect(server.ws_url, character="nova") as rt:
        await rt.wait_for("session.created", timeout=30)
        for _ in range(40):
            await rt.ws.send(json.dumps({"type": "input_audio_buffer.clear"}))
        await asyncio.sleep(1.0)
        limited = [e for e in rt.events("error") if e["error"]["code"] == "rate_limited"]
        assert 25 <= len(limited) <= 31, len(limited)  # burst 10, 5 a second: each drop answered
        assert "VOICE_CHAT_MAX_EVENTS_PER_S" in limited[0]["error"]["message"]
        await asyncio.sleep(1.0)  # tokens come back: the session goes on
        rt.mark()
        await rt.ws.send("{")
        got = await rt.wait_for("error", timeout=5)
        assert got.event["error"]["code"] == "invalid_json"


async def test_idle_session_is_closed(server: LiveServer) -> None:
    async with RealtimeClient.connect(server.ws_url, character="nova") as rt:
        await rt.wait_for("session.created", timeout=30)
        await rt.wait_for("response.done", timeout=120)  # the greeting; then silence
        started = time.monotonic()
        idle = await rt.wait_for("error", timeout=30)
        assert idle.event["error"]["code"] == "idle_timeout"
        assert "VOICE_CHAT_IDLE_TIMEOUT_S" in idle.event["error"]["message"]
        for _ in range(50):
            if rt.closed:
                break
            await asyncio.sleep(0.1)
        assert rt.closed and rt.ws.close_code == 1000, rt.ws.close_code
        assert time.monotonic() - started < 10


async def test_idle_realtime_api_session_is_closed(server: LiveServer) -> None:
    """The OpenAI-dialect session idles out the same way, with its own error shape."""
    async with websockets.connect(server.ws_url + "/v1/realtime?model=nova") as ws:
        started = time.monotonic()
        types = []
        with pytest.raises(ConnectionClosed):
            while time.monotonic() - started < 60:
                event = json.loads(await asyncio.wait_for(ws.recv(), 60))
                types.append(event["type"])
                if event["type"] == "error":
                    assert event["error"]["code"] == "idle_timeout", event
        assert types[0] == "session.created" and "error" in types, types
        assert ws.close_code == 1000, ws.close_code


def test_silent_connections_are_closed(server: LiveServer) -> None:
    """Sockets that connect and send nothing (or half a request) are closed; others go on."""
    socks = [socket.create_connection(("127.0.0.1", _port(server))) for _ in range(10)]
    socks[0].sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0")  # never finished
    try:
        time.sleep(2.5)
        for s in socks:
            s.settimeout(2)
            assert s.recv(100) == b""  # closed by the server
    finally:
        for s in socks:
            s.close()
    assert _healthy(server)


def test_connections_per_address(server: LiveServer) -> None:
    socks = []
    try:
        for _ in range(20):
            socks.append(socket.create_connection(("127.0.0.1", _port(server))))
        time.sleep(0.2)
        extra = socket.create_connection(("127.0.0.1", _port(server)))
        extra.settimeout(3)
        try:
            extra.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            assert extra.recv(100) == b""  # refused at once
        except ConnectionResetError:
            pass
        finally:
            extra.close()
    finally:
        for s in socks:
            s.close()
    time.sleep(0.3)
    assert _healthy(server)
    assert "too many connections" in server.log()


def test_upload_rate_limit(server: LiveServer) -> None:
    statuses = []
    for i in range(5):
        card = {"spec": "chara_card_v2", "spec_version": "2.0", "data": {"name": f"Rate {i}"}}
        r = httpx.post(server.url + "/v1/characters", content=json.dumps(card).encode())
        statuses.append(r.status_code)
        if r.status_code == 429:
            assert int(r.headers["retry-after"]) >= 1
            err = r.json()["error"]
            assert err["code"] == "rate_limited"
            assert "VOICE_CHAT_MAX_UPLOADS_PER_MIN" in err["message"]
    assert statuses == [201, 201, 201, 429, 429], statuses
    assert httpx.get(server.url + "/v1/characters").status_code == 200  # reads are not limited


async def test_oversized_messages_refused(server: LiveServer) -> None:
    """Over the protocol limit: a frame_too_large error and the session goes on; over the
    transport's limit (max_event_bytes, 1 MiB, for the OpenAI dialect's base64 audio): refused
    before it is buffered, close 1009."""
    async with RealtimeClient.connect(server.ws_url, character="nova") as rt:
        await rt.wait_for("session.created", timeout=30)
        for payload in (b"\x00" * 70000, "x" * 70000):
            rt.mark()
            await rt.ws.send(payload)
            got = await rt.wait_for("error", timeout=10)
            assert got.event["error"]["code"] == "frame_too_large"
    for payload in (b"\x00" * (16 << 20), "x" * (2 << 20)):
        async with RealtimeClient.connect(server.ws_url, character="nova") as rt:
            await rt.wait_for("session.created", timeout=30)
            try:
                await rt.ws.send(payload)
            except ConnectionClosed:
                pass
            for _ in range(100):
                if rt.closed:
                    break
                await asyncio.sleep(0.05)
            assert rt.closed and rt.ws.close_code == 1009, rt.ws.close_code
    assert _healthy(server)


async def test_nested_json_gets_invalid_json(server: LiveServer) -> None:
    async with RealtimeClient.connect(server.ws_url, character="nova", user=uuid.uuid4().hex) as rt:
        await rt.wait_for("response.done", timeout=120)  # the greeting
        for text in ("[" * 60000, '{"a":' * 12000):
            rt.mark()
            await rt.ws.send(text)
            got = await rt.wait_for("error", timeout=10)
            assert got.event["error"]["code"] == "invalid_json"
        rt.mark()
        await rt.send({"type": "conversation.item.create", "item": {"text": "Hi!"}})
        done = await rt.wait_for("response.done", timeout=120)
        assert done.event["response"]["status"] == "completed"
    assert "RecursionError" not in server.log() and "Traceback" not in server.log()


def test_staging_leftovers_removed_after_kill_9(tmp_path: Path) -> None:
    """kill -9 the server in the middle of a voice upload, restart it: no leftovers."""
    data = tmp_path / "data"
    first = start_server(data)
    staging = data / "voices" / ".staging"
    boundary = "b0undary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="name"\r\n\r\nHalf\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="kind"\r\n\r\npiper\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="files"; '
        'filename="voice.onnx"\r\nContent-Type: application/octet-stream\r\n\r\n'
    ).encode()
    request = (
        "POST /v1/voices HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
        f"Content-Length: {len(head) + (8 << 20)}\r\n\r\n"
    ).replace("{port}", str(_port(first)))
    with socket.create_connection(("127.0.0.1", _port(first))) as s:
        s.sendall(request.encode() + head + b"\0" * (1 << 20))  # 1 of the 8 MiB promised
        deadline = time.monotonic() + 20
        while not any(staging.glob("*-upload")) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert any(staging.glob("*-upload")), "the upload never reached the staging folder"
        os.kill(first.process.pid, signal.SIGKILL)
        first.process.wait(10)
    assert any(staging.glob("*-upload"))  # what kill -9 leaves
    # and what a card import killed between staging and rename leaves (a dead pid's folder)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    card = data / "characters" / ".staging" / f"{dead}-{uuid.uuid4().hex}"
    card.mkdir(parents=True)
    (card / "card.json").write_text("{}")
    second = start_server(data)
    try:
        assert not any(staging.iterdir()) and not card.exists()
        assert "removed staging leftovers" in second.log()
    finally:
        second.stop()
