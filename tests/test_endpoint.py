"""Semantic end of turn: the words' verdict, the policy, and the endpoint moving in a pipeline.

The pipeline part runs on the fake engines of test_pipeline (canned transcripts, a canned
Smart Turn probability), so the flow is pinned exactly; the real models are in
test_listening.py.
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from test_pipeline import FakeEngines, make

from voice_chat.pipeline import events as ev
from voice_chat.pipeline.endpoint import POLICIES, policy_for, text_verdict
from voice_chat.pipeline.ports import TurnConfig
from voice_chat.pipeline.turns import TurnEvent
from voice_chat.server.protocol import ProtocolError, parse_client_event


@pytest.mark.parametrize(
    "text",
    [
        "I was thinking",
        "I was thinking.",
        "Can you tell me about?",
        "My favorite color is",
        "I went to the store and...",
        "So we went there with",
        "Tell me about the",
        "Well, I,",
    ],
)
def test_unfinished_words(text: str) -> None:
    assert text_verdict(text) == "incomplete"


@pytest.mark.parametrize(
    "text",
    [
        "Yes.",
        "Sure, why not?",
        "I love it.",
        "Thank you.",
        "I think so.",
        "What do you think?",
        "No thanks.",
        "I'm tired.",
        "I don't know.",
        "Maybe later.",
        "We went to the beach.",
        "What music do you like?",
        "Where are you from?",
        "Do you know who they are?",
        "Who did you go with?",
    ],
)
def test_finished_words(text: str) -> None:
    assert text_verdict(text) == "complete"


@pytest.mark.parametrize(
    "text",
    [
        "Those days",
        "Those days.",
        "front",
        "Front.",
        "My favorite colors.",
        "",
        "So yesterday my brother",
        "That's what it looks like.",
        "Do you?",
    ],
)
def test_unsure_words(text: str) -> None:
    assert text_verdict(text) == "unsure"


def test_policy_orders_the_waits() -> None:
    for name, p in POLICIES.items():
        assert p.confident_ms <= p.complete_ms < p.unsure_ms < p.max_ms, name
    low, medium, high = POLICIES["low"], POLICIES["medium"], POLICIES["high"]
    assert POLICIES["auto"] == medium
    assert medium.complete_ms <= 300  # a finished turn: never slower than server_vad
    assert medium.unsure_ms > 700  # a 700 ms mid-sentence pause is not an end
    for field in ("confident_ms", "complete_ms", "unsure_ms", "max_ms"):
        assert getattr(low, field) > getattr(medium, field) > getattr(high, field), field
    assert medium.silence_ms(None, None) == medium.max_ms  # nothing known yet: wait
    assert medium.silence_ms("incomplete", 0.99) == medium.max_ms  # the words win
    assert medium.silence_ms("complete", 0.9) == medium.confident_ms
    assert medium.silence_ms("complete", 0.1) == medium.complete_ms
    assert medium.silence_ms("complete", None) == medium.complete_ms
    assert medium.silence_ms("unsure", 0.95) == medium.unsure_ms  # the sound alone: not enough
    assert medium.silence_ms("unsure", 0.2) == medium.unsure_ms
    assert POLICIES["low"].max_ms > medium.max_ms > POLICIES["high"].max_ms
    assert policy_for("medium", max_ms=4000).max_ms == 4000


def semantic(**kw: object) -> TurnConfig:
    return TurnConfig(type="semantic_vad", **kw)  # type: ignore[arg-type]


async def pause(heard: str, p: float | None) -> tuple[int | None, object, object]:
    engines = FakeEngines(heard=heard)
    engines.p_complete = p
    pipe, engines, box = make(engines, turn=semantic())
    pipe.detector.feed(np.zeros(512, np.float32))
    await pipe._on_turn(TurnEvent("started", 0))
    assert pipe.detector.endpoint_ms == POLICIES["auto"].max_ms  # until judged: the cap
    await pipe._on_turn(TurnEvent("paused", 600, 500))
    await asyncio.sleep(0.15)  # the speculative transcript and the sound model are in
    return pipe.detector.endpoint_ms, pipe, box


async def test_unfinished_pause_waits_for_the_cap() -> None:
    waited, pipe, box = await pause("I was thinking", 0.9)
    assert waited == POLICIES["auto"].max_ms
    assert not box.of(ev.ResponseCreated)  # prepared, not spoken
    await pipe._on_turn(TurnEvent("resumed", 900))  # the user goes on: dropped
    assert pipe.reply is None and pipe.detector.endpoint_ms == POLICIES["auto"].max_ms


async def test_finished_pause_ends_fast_and_faster_when_the_sound_agrees() -> None:
    assert (await pause("What is your name?", 0.1))[0] == POLICIES["auto"].complete_ms
    assert (await pause("What is your name?", 0.9))[0] == POLICIES["auto"].confident_ms
    assert (await pause("Those days", None))[0] == POLICIES["auto"].unsure_ms


async def test_server_vad_keeps_its_fixed_silence() -> None:
    pipe, _, _ = make(turn=TurnConfig(type="server_vad", silence_ms=400))
    await pipe._on_turn(TurnEvent("started", 0))
    await pipe._on_turn(TurnEvent("paused", 600, 500))
    await asyncio.sleep(0.1)
    assert pipe.detector.endpoint_ms is None and pipe.detector.silence_ms == 400


def test_protocol_accepts_semantic_vad_and_names_bad_fields() -> None:
    ok = parse_client_event(
        '{"type":"session.update","session":{"turn_detection":'
        '{"type":"semantic_vad","eagerness":"low","max_wait_ms":3000}}}'
    )
    assert ok.session.turn_detection.eagerness == "low"
    bad = [
        ('{"type":"semantic","eagerness":"low"}', "turn_detection.type"),
        ('{"type":"semantic_vad","eagerness":"sometimes"}', "turn_detection.eagerness"),
        ('{"type":"semantic_vad","max_wait_ms":50}', "turn_detection.max_wait_ms"),
        ('{"type":"server_vad","silence_duration_ms":99999}', "silence_duration_ms"),
    ]
    for td, field in bad:
        with pytest.raises(ProtocolError) as err:
            parse_client_event(f'{{"type":"session.update","session":{{"turn_detection":{td}}}}}')
        assert err.value.code == "invalid_event" and field in str(err.value), str(err.value)
