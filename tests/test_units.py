"""Unit tests: chunking, protocol validation, resampling, turn detection, prompts."""

from __future__ import annotations

import numpy as np
import pytest

from voice_chat.audio.pcm import StreamResampler, float_to_pcm16, pcm16_to_float, resample
from voice_chat.characters.registry import Character
from voice_chat.pipeline.chunking import Chunker, clean_for_speech
from voice_chat.pipeline.conversation import Turn
from voice_chat.pipeline.prompting import build_messages
from voice_chat.pipeline.reply import Reply, Segment
from voice_chat.server.protocol import ProtocolError, SessionUpdate, Truncate, parse_client_event


def chunks_of(text: str, step: int = 3, **kw: int) -> list[str]:
    c = Chunker(**kw)
    out: list[str] = []
    for i in range(0, len(text), step):
        out.extend(c.feed(text[i : i + step]))
    out.extend(c.flush())
    return out


def test_first_chunk_is_cut_early_then_sentences() -> None:
    text = "Well, I think that is a wonderful idea for a sunny day. Let us go now. Bye!"
    out = chunks_of(text, max_sentences=5)
    assert len(out[0].split()) <= 6
    assert " ".join(out).replace("  ", " ") == text
    assert out[-1] == "Bye!"


def test_the_second_chunk_may_end_at_a_clause_later_ones_do_not() -> None:
    text = (
        "Oh, well, a dragon lived in the hills above the town, and it slept on gold, "
        "old coins and crowns. Then a knight came, tired, hungry and alone, to the gate. "
    )
    out = chunks_of(text, max_sentences=5)
    assert out[0] == "Oh, well, a dragon"  # the first: early
    assert out[1] == "lived in the hills above the town,"  # the second: at a clause
    assert out[2] == "and it slept on gold, old coins and crowns."  # then whole sentences
    assert out[3] == "Then a knight came, tired, hungry and alone, to the gate."
    # a clause of fewer than three words does not end the second chunk
    assert chunks_of("Well then, so, it is late now. ", max_sentences=3) == [
        "Well then,",
        "so, it is late now.",
    ]


def test_reply_is_capped_at_max_sentences() -> None:
    c = Chunker(max_sentences=2)
    out = list(c.feed("One. Two. Three. Four. ")) + list(c.flush())
    assert out == ["One.", "Two."] and c.capped


def test_stage_directions_and_emoji_are_not_spoken() -> None:
    assert clean_for_speech("(laughs) Oh *smiles* you are funny 😀!") == "Oh you are funny !"
    out = chunks_of("Hello (waves happily) there friend. ", max_sentences=3)
    assert "waves" not in " ".join(out)


def test_speaker_prefix_is_stripped() -> None:
    assert chunks_of("Nova: Hi there. ", max_sentences=3) == ["Hi there."]


def test_protocol_accepts_valid_events() -> None:
    ev = parse_client_event(
        '{"type":"session.update","session":{"turn_detection":{"type":"manual"}}}'
    )
    assert isinstance(ev, SessionUpdate) and ev.session.turn_detection.type == "manual"
    ev = parse_client_event(
        '{"type":"conversation.item.truncate","response_id":"r","audio_end_ms":5}'
    )
    assert isinstance(ev, Truncate) and ev.audio_end_ms == 5
    ev = parse_client_event(
        '{"type":"conversation.item.create","item":{"content":[{"type":"input_text","text":"hi"}]}}'
    )
    assert ev.item.full_text() == "hi"


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("nope", "invalid_json"),
        ("42", "invalid_json"),
        ('{"type": 3}', "invalid_event"),
        ('{"type": "x.y"}', "unknown_event"),
        (
            '{"type":"conversation.item.truncate","response_id":"r","audio_end_ms":-1}',
            "invalid_event",
        ),
        (
            '{"type":"session.update","session":{"input_audio_format":{"sample_rate":96000}}}',
            "invalid_event",
        ),
        ('{"type":"session.update","session":{"user":{"id":"../x"}}}', "invalid_event"),
    ],
)
def test_protocol_rejects_bad_events(text: str, code: str) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_client_event(text)
    assert info.value.code == code and str(info.value)


def test_pcm_round_trip_and_clipping() -> None:
    x = np.array([0.0, 0.5, -0.5, 2.0, -2.0], dtype=np.float32)
    y = pcm16_to_float(float_to_pcm16(x))
    assert np.allclose(y[:3], x[:3], atol=1e-4) and y[3] < 1.0 and y[4] == -1.0


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000])
def test_streaming_resampler_matches_rate_and_pitch(rate: int) -> None:
    t = np.arange(rate) / rate
    tone = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    rs = StreamResampler(rate, 16000)
    parts = [rs.process(tone[i : i + 333]) for i in range(0, len(tone), 333)]
    parts.append(rs.process(np.zeros(0, np.float32), last=True))
    out = np.concatenate(parts)
    assert abs(len(out) - 16000) <= 32
    spectrum = np.abs(np.fft.rfft(out[:16000] * np.hanning(len(out[:16000]))))
    assert abs(np.argmax(spectrum) * 16000 / len(out[:16000]) - 440) < 3
    assert np.allclose(resample(tone, rate, rate), tone)


def test_heard_text_follows_audio_time() -> None:
    import asyncio

    async def make() -> Reply:
        return Reply(speech_end=0.0, voice_id="joe", output_rate=None, live=True)

    reply = asyncio.run(make())
    reply.segments = [Segment("Hello there.", 0, 1000), Segment("How are you today?", 1000, 3000)]
    assert reply.heard_text(500) == "Hello"
    assert reply.heard_text(1000) == "Hello there."
    assert reply.heard_text(2000) == "Hello there. How are"
    assert reply.heard_text(9999) == "Hello there. How are you today?"


def test_card_to_prompt() -> None:
    card = {
        "spec": "chara_card_v2",
        "data": {
            "name": "Ada",
            "description": "{{char}} is a pilot.",
            "personality": "brave",
            "scenario": "{{char}} flies with {{user}}.",
            "first_mes": "Hi!",
            "mes_example": "<START>\n{{user}}: Ready?\n{{char}}: Always, {{user}}!",
            "system_prompt": "",
            "post_history_instructions": "Stay in character.",
        },
    }
    msgs = build_messages(Character("ada", card), [Turn(1, "user", "Hello")], user_name="Sam")
    assert msgs[0]["role"] == "system" and "Ada is a pilot." in msgs[0]["content"]
    assert "Ada flies with Sam." in msgs[0]["content"]
    assert {"role": "user", "content": "Ready?"} in msgs
    assert {"role": "assistant", "content": "Always, Sam!"} in msgs
    assert msgs[-2] == {"role": "user", "content": "Hello"}
    assert msgs[-1]["content"] == "Stay in character."


def test_repeated_sentences_are_spoken_once() -> None:
    out = chunks_of("I love pizza! I love pizza! It is round. ", max_sentences=5)
    assert out == ["I love pizza!", "It is round."]
