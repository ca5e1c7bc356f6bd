"""Start-up refusal and the session limit, against a real server process."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
import websockets

from voice_chat.client.launcher import ROOT, free_port

pytestmark = pytest.mark.slow


async def _refusal(url: str) -> tuple[dict, int | None]:
    async with websockets.connect(url) as ws:
        first = json.loads(await ws.recv())
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await ws.recv()
    rcvd = closed.value.rcvd
    return first, rcvd.code if rcvd else None


async def test_not_ready_then_the_session_limit(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "VOICE_CHAT_DATA": str(tmp_path), "VOICE_CHAT_MAX_SESSIONS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "voice_chat", "serve", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base, ws_url = f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}/v1/realtime"
    try:
        deadline = time.monotonic() + 60
        while True:  # the socket opens before the models are loaded
            try:
                health = httpx.get(base + "/healthz", timeout=2)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
        assert health.status_code == 503  # loading (warm-up alone takes over a second)
        first, code = await _refusal(ws_url)
        assert first["error"]["code"] == "not_ready" and code == 1013
        while httpx.get(base + "/healthz", timeout=2).status_code != 200:
            assert time.monotonic() < deadline + 120
            await asyncio.sleep(0.2)
        async with websockets.connect(f"{ws_url}?user={uuid.uuid4().hex}") as ws:
            assert json.loads(await ws.recv())["type"] == "session.created"
            first, code = await _refusal(f"{ws_url}?user={uuid.uuid4().hex}")
            assert first["error"]["code"] == "too_many_sessions" and code == 1013
            assert "limit of 1 sessions" in first["error"]["message"]
        for _ in range(50):  # the slot frees once the first session has ended
            if httpx.get(base + "/healthz").json()["sessions"] == 0:
                break
            await asyncio.sleep(0.1)
        async with websockets.connect(f"{ws_url}?user={uuid.uuid4().hex}") as ws:
            assert json.loads(await ws.recv())["type"] == "session.created"
    finally:
        proc.terminate()
        proc.wait(20)
