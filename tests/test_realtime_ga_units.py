"""The OpenAI Realtime dialect without a server: wire formats, client-event validation."""

from __future__ import annotations

import json

import numpy as np
import pytest

from voice_chat.audio.codecs import FORMATS, PCM24K, PCMA, PCMU, AudioFormatError
from voice_chat.audio.pcm import float_to_pcm16, pcm16_to_float
from voice_chat.server.ga import client_events
from voice_chat.server.ga.client_events import GAError


def _tone(rate: int, seconds: float = 0.5, hz: float = 440.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (0.5 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


@pytest.mark.parametrize("fmt", [PCMU, PCMA])
def test_g711_round_trip_keeps_the_signal(fmt) -> None:
    tone = _tone(fmt.rate)
    wire = fmt.from_pcm16(float_to_pcm16(tone))
    assert len(wire) == len(tone)  # one byte a sample at 8 kHz
    back = pcm16_to_float(fmt.to_pcm16(wire))
    snr = 10 * np.log10(np.sum(tone**2) / np.sum((tone - back) ** 2))
    assert snr > 30, snr  # G.711 gives about 38 dB on a loud tone


def test_mu_law_and_a_law_are_the_itu_codes() -> None:
    # Silence is 0xFF in mu-law and 0xD5 in A-law (ITU-T G.711 tables).
    silence = bytes(2 * 8)
    assert PCMU.from_pcm16(silence) == b"\xff" * 8
    assert PCMA.from_pcm16(silence) == b"\xd5" * 8


def test_pcm_needs_whole_samples() -> None:
    assert PCM24K.to_pcm16(b"\x01\x02") == b"\x01\x02"
    with pytest.raises(AudioFormatError):
        PCM24K.to_pcm16(b"\x01\x02\x03")
    assert FORMATS["audio/pcm"].describe() == {"type": "audio/pcm", "rate": 24000}
    assert FORMATS["audio/pcmu"].describe() == {"type": "audio/pcmu"}


def _refusal(event: dict) -> GAError:
    with pytest.raises(GAError) as info:
        client_events.parse(json.dumps(event))
    return info.value


def test_refusals_name_the_field_and_the_event() -> None:
    err = _refusal(
        {
            "type": "session.update",
            "event_id": "evt_1",
            "session": {"type": "realtime", "audio": {"input": {"format": {"type": "audio/wav"}}}},
        }
    )
    assert (err.code, err.param, err.event_id) == (
        "invalid_event",
        "session.audio.input.format",
        "evt_1",
    )
    err = _refusal(
        {
            "type": "session.update",
            "session": {"audio": {"output": {"format": {"type": "audio/pcm", "rate": 16000}}}},
        }
    )
    assert err.param == "session.audio.output.format.rate"
    err = _refusal({"type": "conversation.item.create", "item": {"type": "function_call"}})
    assert (err.code, err.param) == ("unknown_item", "item.type")
    err = _refusal({"type": "response.teleport", "event_id": "e9"})
    assert (err.code, err.param, err.event_id) == ("unknown_event", "type", "e9")
    err = _refusal(
        {"type": "conversation.item.create", "item": {"role": "user", "content": [{"type": "x"}]}}
    )
    assert err.param == "item.content.0"
    with pytest.raises(GAError) as info:
        client_events.parse("[1, 2]")
    assert info.value.code == "invalid_json"


def test_valid_events_parse() -> None:
    event = client_events.parse(
        json.dumps(
            {
                "type": "session.update",
                "session": {
                    "type": "realtime",
                    "instructions": "Be brief.",
                    "output_modalities": ["text"],
                    "audio": {
                        "input": {"format": {"type": "audio/pcmu"}, "turn_detection": None},
                        "output": {"format": {"type": "audio/pcma"}, "voice": "sage"},
                    },
                },
            }
        )
    )
    session = event.session
    assert session.output_modalities == ["text"]
    assert session.audio.input.format.type == "audio/pcmu"
    # turn_detection: null (turn VAD off) is told apart from leaving it out
    assert "turn_detection" in session.audio.input.model_fields_set
    assert session.audio.input.turn_detection is None
    beta = client_events.parse(json.dumps({"type": "session.update", "session": {}}))
    assert beta.session.type == "realtime"
    item = client_events.parse(
        json.dumps(
            {
                "type": "conversation.item.create",
                "item": {
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "input_text", "text": "hi"}],
                },
            }
        )
    )
    assert item.item.content[0].text == "hi"


def test_the_pages_event_names_are_generated_from_the_typed_events() -> None:
    from voice_chat.pipeline.events import SERVER_EVENT_TYPES
    from voice_chat.server.event_names import JS_PATH, SERVER, render_js

    assert JS_PATH.read_text() == render_js(), "run python -m voice_chat.server.event_names"
    assert set(SERVER.values()) == SERVER_EVENT_TYPES


def test_client_instructions_are_added_to_the_persona_or_replace_it() -> None:
    from voice_chat.characters.registry import Character
    from voice_chat.pipeline.conversation import Turn
    from voice_chat.pipeline.prompting import build_messages

    sage = Character("sage", {"name": "Sage", "description": "A calm storyteller by the fire."})
    turns = [Turn(1, "user", "Hello.")]
    plain = build_messages(sage, turns)
    added = build_messages(sage, turns, instructions="Speak like a pirate.")
    assert added[0]["content"].startswith(plain[0]["content"])
    assert added[0]["content"].endswith("Speak like a pirate.")
    assert added[1:] == plain[1:]
    replaced = build_messages(
        sage, turns, instructions="Speak like a pirate.", replace_persona=True
    )
    assert replaced[0] == {"role": "system", "content": "Speak like a pirate."}
    assert "storyteller" not in replaced[0]["content"] and replaced[-1]["content"] == "Hello."
