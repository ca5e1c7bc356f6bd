"""Bad input never hurts anyone: clear errors, no crash, other sessions unaffected."""

from __future__ import annotations

import asyncio
import json
import uuid

import httpx
import pytest
import websockets
from speech import espeak

from voice_chat.client.rtclient import RealtimeClient

pytestmark = pytest.mark.slow


async def _error_after(rt: RealtimeClient, payload: str | bytes) -> dict:
    rt.mark()
    await rt.ws.send(payload)
    got = await rt.wait_for("error", timeout=10)
    return got.event["error"]


async def test_bad_frames_get_clear_errors(live_server) -> None:
    async with RealtimeClient.connect(
        live_server.ws_url, user=uuid.uuid4().hex, character="nova"
    ) as rt:
        await rt.wait_for("response.done", timeout=120)
        cases: list[tuple[str | bytes, str]] = [
            ("{not json", "invalid_json"),
            ("[1, 2, 3]", "invalid_json"),
            (json.dumps({"no": "type"}), "invalid_event"),
            (json.dumps({"type": "launch.rockets"}), "unknown_event"),
            (json.dumps({"type": "conversation.item.truncate", "response_id": 5}), "invalid_event"),
            (
                json.dumps(
                    {
                        "type": "session.update",
                        "session": {"input_audio_format": {"sample_rate": 2}},
                    }
                ),
                "invalid_event",
            ),
            (
                json.dumps(
                    {"type": "session.update", "session": {"turn_detection": {"type": "psychic"}}}
                ),
                "invalid_event",
            ),
            (
                json.dumps({"type": "conversation.item.create", "item": {"text": ""}}),
                "invalid_event",
            ),
            (
                json.dumps({"type": "conversation.item.create", "item": {"text": "x" * 5000}}),
                "invalid_event",
            ),
            (
                json.dumps(
                    {"type": "conversation.item.truncate", "response_id": "nope", "audio_end_ms": 1}
                ),
                "invalid_event",
            ),
            (json.dumps({"type": "input_audio_buffer.commit"}), "nothing_to_commit"),
            (b"\x01\x02\x03", "invalid_audio"),
            (
                json.dumps({"type": "session.update", "session": {"character": "nobody"}}),
                "unknown_character",
            ),
        ]
        for payload, code in cases:
            err = await _error_after(rt, payload)
            assert err["code"] == code, (payload[:80], err)
            assert err["message"]
        # The session still works after all that.
        await rt.send({"type": "conversation.item.create", "item": {"text": "Hello!"}})
        done = await rt.wait_for("response.done", timeout=120)
        assert done.event["response"]["status"] == "completed"


async def test_unknown_character_closes_with_reason(live_server) -> None:
    async with RealtimeClient.connect(
        live_server.ws_url, user=uuid.uuid4().hex, character="../../etc/passwd"
    ) as rt:
        err = await rt.wait_for("error", timeout=10)
        assert err.event["error"]["code"] == "unknown_character"
        for _ in range(50):
            if rt.closed:
                break
            await asyncio.sleep(0.1)
        assert rt.closed and rt.close_code == 1008


async def test_bad_query_rate_is_refused(live_server) -> None:
    async with RealtimeClient.connect(live_server.ws_url, input_sample_rate="fast") as rt:
        err = await rt.wait_for("error", timeout=10)
        assert err.event["error"]["code"] == "invalid_event"


async def test_flood_is_dropped_and_other_sessions_carry_on(live_server) -> None:
    async with (
        RealtimeClient.connect(
            live_server.ws_url, user=uuid.uuid4().hex, character="nova"
        ) as flood,
        RealtimeClient.connect(live_server.ws_url, user=uuid.uuid4().hex, character="pip") as calm,
    ):
        await flood.wait_for("session.created", timeout=10)
        await calm.wait_for("response.done", timeout=90)
        frame = b"\x00\x00" * 8000  # 0.5 s of silence per frame
        for _ in range(200):  # 100 s of audio as fast as the socket takes it
            await flood.ws.send(frame)
        err = await flood.wait_for("error", timeout=20, since=0)
        assert err.event["error"]["code"] == "audio_rate_exceeded"
        calm.mark()
        await calm.send_speech(espeak("Are you a robot?"))
        done = await calm.wait_for("response.done", timeout=90)
        assert done.event["response"]["status"] == "completed"
    assert httpx.get(live_server.url + "/healthz").status_code == 200


async def test_abrupt_disconnects_do_not_hurt_the_server(live_server) -> None:
    for _ in range(3):
        ws = await websockets.connect(live_server.ws_url + "/v1/realtime?character=aria")
        await ws.recv()
        await ws.send(b"\x00\x10" * 4000)
        ws.transport.abort()  # vanish mid-greeting
    await asyncio.sleep(0.5)
    assert httpx.get(live_server.url + "/healthz").json()["status"] == "ok"
