"""The GA encoder without a server: typed pipeline events in, GA events that the SDK accepts."""

from __future__ import annotations

import base64
import json

import pytest
from ga_client import SDK_MODELS
from pipecat.services.openai.realtime.events import parse_server_event

from voice_chat.audio.codecs import PCMU
from voice_chat.pipeline import events as ev
from voice_chat.server.ga.encoder import GAEncoder, Wire
from voice_chat.server.ga.items import Items


class Sink:
    def __init__(self) -> None:
        self.frames: list[dict] = []

    async def __call__(self, text: str) -> None:
        event = json.loads(text)
        SDK_MODELS[event["type"]].model_validate(event)  # strict: every required field
        parse_server_event(text)  # and Pipecat's models
        self.frames.append(event)

    def kinds(self) -> list[str]:
        return [f["type"] for f in self.frames]


async def _spoken_reply(wire: Wire) -> tuple[Sink, GAEncoder]:
    sink, items = Sink(), Items()
    enc = GAEncoder(sink, items, wire)
    await enc.event(ev.SpeechStarted(100, "item_u1"))
    await enc.event(ev.TranscriptDelta("item_u1", "What", "What"))
    await enc.event(ev.SpeechStopped(900, "item_u1"))
    await enc.event(ev.AudioCommitted("item_u1"))
    await enc.event(ev.TranscriptCompleted("item_u1", "What is it?"))
    await enc.event(ev.ResponseCreated(ev.ResponseRef("resp_1")))
    await enc.event(ev.TextDelta("resp_1", "It is"))
    await enc.event(ev.AudioStarted("resp_1", wire.output_format.rate))
    await enc.audio(bytes(wire.output_format.rate // 5))  # 100 ms of PCM16
    await enc.event(ev.TextDelta("resp_1", " a fox."))
    await enc.event(ev.AudioDone("resp_1", 100))
    await enc.event(
        ev.ResponseDone(ev.ResponseResult("resp_1", "completed", "It is a fox.", {"llm_tokens": 5}))
    )
    return sink, enc


async def test_a_spoken_turn_in_ga_events() -> None:
    sink, enc = await _spoken_reply(Wire())
    assert sink.kinds() == [
        "input_audio_buffer.speech_started",
        "conversation.item.input_audio_transcription.delta",
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
        "conversation.item.added",
        "conversation.item.input_audio_transcription.completed",
        "conversation.item.done",
        "response.created",
        "response.output_item.added",
        "conversation.item.added",
        "response.content_part.added",
        "response.output_audio_transcript.delta",
        "response.output_audio.delta",
        "response.output_audio_transcript.delta",
        "response.output_audio.done",
        "response.output_audio_transcript.done",
        "response.content_part.done",
        "response.output_item.done",
        "conversation.item.done",
        "response.done",
        "rate_limits.updated",
    ]
    by = {f["type"]: f for f in sink.frames}
    item_id = by["response.output_item.added"]["item"]["id"]
    assert by["conversation.item.done"]["item"]["id"] == item_id
    assert by["conversation.item.done"]["previous_item_id"] == "item_u1"
    assert by["response.output_audio_transcript.done"]["transcript"] == "It is a fox."
    done = by["response.done"]["response"]
    assert done["status"] == "completed" and done["output"][0]["id"] == item_id
    assert done["usage"]["output_tokens"] == 5
    assert len({f["event_id"] for f in sink.frames}) == len(sink.frames)
    assert enc.items.response_of[item_id] == "resp_1"


async def test_mu_law_output_and_a_cancelled_reply() -> None:
    wire = Wire(output_format=PCMU)
    sink, _ = await _spoken_reply(wire)
    delta = next(f for f in sink.frames if f["type"] == "response.output_audio.delta")
    assert len(base64.b64decode(delta["delta"])) == 800  # 100 ms at 8 kHz, a byte a sample
    sink2, items = Sink(), Items()
    enc = GAEncoder(sink2, items, Wire(cancel_reason="client_cancelled"))
    await enc.event(ev.ResponseCreated(ev.ResponseRef("resp_2")))
    await enc.event(ev.ResponseDone(ev.ResponseResult("resp_2", "cancelled", "")))
    done = sink2.frames[-2]["response"]
    assert done["status"] == "cancelled"
    assert done["status_details"] == {"type": "cancelled", "reason": "client_cancelled"}


@pytest.mark.parametrize("audio_output", [True, False])
async def test_text_only_replies_have_no_audio(audio_output: bool) -> None:
    sink, items = Sink(), Items()
    enc = GAEncoder(sink, items, Wire(audio_output=audio_output))
    await enc.event(ev.ResponseCreated(ev.ResponseRef("r")))
    await enc.event(ev.TextDelta("r", "Hi."))
    await enc.audio(b"\x00\x00" * 100)
    await enc.event(ev.ResponseDone(ev.ResponseResult("r", "completed", "Hi.")))
    kinds = sink.kinds()
    if audio_output:
        assert "response.output_audio_transcript.delta" in kinds
    else:
        assert "response.output_text.delta" in kinds and "response.output_text.done" in kinds
        assert not any("audio" in k for k in kinds)
