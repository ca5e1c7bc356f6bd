"""Session options a client sets on connect: speech speed and the display name ({{user}})."""

from __future__ import annotations

import uuid

import httpx
import pytest
import websockets

from voice_chat.client.rtclient import RealtimeClient

pytestmark = pytest.mark.slow


async def _greeting(live_server, cid: str, **params: str) -> tuple[dict, dict]:
    user = f"opt-{uuid.uuid4().hex[:8]}"
    async with RealtimeClient.connect(live_server.ws_url, character=cid, user=user, **params) as rt:
        session = (await rt.wait_for("session.created", timeout=10)).event["session"]
        done = (await rt.wait_for("response.audio.done", timeout=60)).event
        text = (await rt.wait_for("response.done", timeout=30)).event["response"]["text"]
        return session, {"audio_ms": done["audio_ms"], "text": text}


async def test_speech_speed_and_name(live_server) -> None:
    card = {
        "spec": "chara_card_v2",
        "spec_version": "2.0",
        "data": {
            "name": f"Pacer {uuid.uuid4().hex[:4]}",
            "first_mes": "Hello {{user}}, this sentence is long enough to hear the pace change.",
            "extensions": {"voice_chat": {"voice": "joe"}},
        },
    }
    cid = httpx.post(live_server.url + "/v1/characters", json=card).json()["id"]
    normal, a = await _greeting(live_server, cid, user_name="Ahab")
    fast, b = await _greeting(live_server, cid, user_name="Ahab", speed="1.4")
    assert normal["speech_speed"] == 1.0 and fast["speech_speed"] == 1.4
    assert fast["voice"] == normal["voice"] == "joe"  # the same voice, only faster
    assert a["text"] == b["text"] and a["text"].startswith("Hello Ahab,")
    assert b["audio_ms"] < a["audio_ms"] * 0.85, (a, b)
    url = f"{live_server.ws_url}/v1/realtime?character={cid}&speed=fast"
    async with websockets.connect(url) as ws:
        assert "speed must be a number" in str(await ws.recv())
