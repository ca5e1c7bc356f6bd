"""The pipeline alone, on fake engines: barge-in, speculation and its gate, truncation, failures.

No models, no server: :class:`FakeEngines` implements the ``Engines`` port with canned,
timed answers, so these tests pin the flow's own behaviour quickly and exactly.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

import numpy as np
import pytest

from voice_chat.characters.registry import Character
from voice_chat.engines.base import GenerationOptions, Message
from voice_chat.pipeline import events as ev
from voice_chat.pipeline.conversation import InMemoryConversation
from voice_chat.pipeline.pipeline import Pipeline
from voice_chat.pipeline.ports import SessionConfig, TurnConfig
from voice_chat.pipeline.turns import TurnEvent

T = TypeVar("T")
RATE = 16000
CARD = {
    "spec": "chara_card_v2",
    "data": {"name": "Tess", "description": "{{char}} is a test.", "first_mes": "Hi."},
}


class FakeEngines:
    """Transcribes to ``heard``, replies with ``reply`` word by word, speaks 40 ms a word."""

    def __init__(
        self, heard: str = "hello there", reply: str = "One two three. Four five six."
    ) -> None:
        self.heard, self.reply = heard, reply
        self.token_delay = 0.005
        self.stt_delay = 0.02
        self.fail_stt: Exception | None = None
        self.cancels: list[threading.Event] = []
        self.transcribed = 0
        self.prefilled: list[list[Message]] = []
        self.p_complete: float | None = None
        self.partials = 0
        self.busy = True  # live transcripts: off unless a test turns them on

    async def transcribe(self, audio: np.ndarray) -> str:
        self.transcribed += 1
        await asyncio.sleep(self.stt_delay)
        if self.fail_stt is not None:
            raise self.fail_stt
        return self.heard

    async def transcribe_partial(self, audio: np.ndarray) -> str | None:
        self.partials += 1
        return None if self.busy else await self.transcribe(audio)

    async def generate(
        self, messages: list[Message], options: GenerationOptions, cancel: threading.Event
    ) -> AsyncIterator[str]:
        self.cancels.append(cancel)
        for word in self.reply.split():
            if cancel.is_set():
                return
            await asyncio.sleep(self.token_delay)
            yield word + " "

    async def prefill(self, messages: list[Message]) -> None:
        self.prefilled.append(messages)

    def count_tokens(self, text: str) -> int:
        return len(text.split()) + 1

    def prompt_budget(self, max_reply_tokens: int) -> int:
        return 1000

    async def sample_rate(self, voice_id: str) -> int:
        return RATE

    async def synthesize(self, voice_id: str, text: str) -> np.ndarray:
        await asyncio.sleep(0.001)
        return np.full(len(text.split()) * RATE * 40 // 1000, 0.1, dtype=np.float32)

    async def analyse(self, job: Callable[[], T]) -> T:
        return job()

    async def turn_probability(self, audio: np.ndarray) -> float | None:
        return self.p_complete


class Box:
    def __init__(self) -> None:
        self.events: list[ev.ServerEvent] = []
        self.audio_bytes = 0

    async def event(self, event: ev.ServerEvent) -> None:
        self.events.append(event)

    async def audio(self, pcm: bytes) -> None:
        self.audio_bytes += len(pcm)

    async def error(self, code: str, message: str) -> None:
        self.events.append(ev.Error(ev.ErrorInfo(code, message)))

    def of(self, kind: type[Any]) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    async def until(self, kind: type[Any], timeout: float = 5.0) -> Any:
        async def wait() -> Any:
            while not self.of(kind):  # noqa: ASYNC110 - polling a plain list
                await asyncio.sleep(0.005)
            return self.of(kind)[-1]

        return await asyncio.wait_for(wait(), timeout)


def make(
    engines: FakeEngines | None = None, **config_fields: Any
) -> tuple[Pipeline, FakeEngines, Box]:
    engines = engines or FakeEngines()
    box = Box()
    config = SessionConfig(
        character=Character("tess", CARD), voice_id="joe", output_rate=RATE, **config_fields
    )
    return Pipeline(engines, box, config, InMemoryConversation()), engines, box


async def test_typed_turn_streams_text_then_audio_and_stores_both_turns() -> None:
    pipe, _, box = make()
    await pipe.user_text("Hi Tess")
    done = await box.until(ev.ResponseDone)
    assert done.response.status == "completed"
    kinds = [type(e) for e in box.events]
    assert kinds[0] is ev.ResponseCreated
    assert kinds.index(ev.TextDelta) < kinds.index(ev.AudioStarted) < kinds.index(ev.AudioDone)
    text = "".join(e.delta for e in box.of(ev.TextDelta))
    assert text == done.response.text == "One two three. Four five six."
    assert box.audio_bytes == 6 * RATE * 40 // 1000 * 2  # every word's audio went out
    turns = [(t.role, t.text) for t in pipe.conversation.turns()]
    assert turns == [("user", "Hi Tess"), ("assistant", "One two three. Four five six.")]


async def test_speculative_reply_waits_for_the_end_of_turn() -> None:
    pipe, engines, box = make()
    await pipe._on_turn(TurnEvent("started", 0))
    await pipe._on_turn(TurnEvent("paused", 600, 500))
    await asyncio.sleep(0.3)  # STT, LLM and TTS have all run by now
    assert engines.transcribed == 1
    assert not box.of(ev.ResponseCreated) and box.audio_bytes == 0  # held behind the gate
    assert [type(e) for e in box.events] == [ev.SpeechStarted, ev.TranscriptDelta]
    await pipe._on_turn(TurnEvent("ended", 800, 500))
    done = await box.until(ev.ResponseDone)
    assert done.response.status == "completed" and box.audio_bytes > 0
    assert engines.transcribed == 1  # the speculative work was used, not redone


async def test_speech_resuming_drops_the_speculative_reply_silently() -> None:
    pipe, engines, box = make()
    await pipe._on_turn(TurnEvent("started", 0))
    await pipe._on_turn(TurnEvent("paused", 600, 500))
    await asyncio.sleep(0.05)
    await pipe._on_turn(TurnEvent("resumed", 700))
    assert pipe.reply is None
    await asyncio.sleep(0.2)
    assert not box.of(ev.ResponseCreated) and not box.of(ev.ResponseDone)
    assert box.audio_bytes == 0 and pipe.conversation.turns() == []
    assert engines.cancels and engines.cancels[0].is_set()  # its LLM was told to stop


async def test_barge_in_stops_the_llm_and_keeps_only_what_was_heard() -> None:
    engines = FakeEngines(reply=" ".join(f"word{i}." for i in range(40)))
    engines.token_delay = 0.02
    pipe, engines, box = make(engines, max_reply_sentences=100)
    await pipe.user_text("Tell me a long story")
    await box.until(ev.AudioStarted)
    await asyncio.sleep(0.15)
    await pipe._on_turn(TurnEvent("started", 5000))  # the user speaks over the reply
    done = await box.until(ev.ResponseDone)
    assert done.response.status == "cancelled"
    assert engines.cancels[-1].is_set()
    sent = box.of(ev.TextDelta)
    assert len(sent) < 40  # generation stopped early
    heard = pipe.conversation.turns()[-1]
    assert (
        heard.role == "assistant" and heard.text and len(heard.text) < len(done.response.text) + 1
    )
    assert heard.text.split()[0] == "word0."
    count = len(box.events)
    await asyncio.sleep(0.2)
    assert len(box.events) == count  # nothing more after response.done


async def test_truncate_keeps_the_words_heard_before_the_cut() -> None:
    pipe, _, box = make()
    await pipe.user_text("Hi")
    done = await box.until(ev.ResponseDone)
    await pipe.truncate(done.response.id, 120)  # 3 words of 40 ms each
    truncated = box.of(ev.ItemTruncated)[-1]
    assert truncated.text == "One two three."
    assert pipe.conversation.turns()[-1].text == "One two three."
    await pipe.truncate("resp_nope", 10)
    assert box.of(ev.Error)[-1].error.code == "invalid_event"


async def test_a_failing_engine_fails_the_reply_not_the_pipeline() -> None:
    pipe, engines, box = make()
    engines.fail_stt = RuntimeError("boom")
    await pipe._on_turn(TurnEvent("started", 0))
    await pipe._on_turn(TurnEvent("ended", 800, 500))
    error = await box.until(ev.Error)
    assert error.error.code == "response_failed" and "boom" in error.error.message
    assert (await box.until(ev.ResponseDone)).response.status == "failed"
    assert pipe.reply is None
    engines.fail_stt = None
    await pipe.user_text("still there?")
    for _ in range(200):
        if [d for d in box.of(ev.ResponseDone) if d.response.status == "completed"]:
            break
        await asyncio.sleep(0.01)
    assert [d.response.status for d in box.of(ev.ResponseDone)] == ["failed", "completed"]


@pytest.mark.parametrize("text", ["", "   "])
async def test_an_empty_transcript_gets_no_reply(text: str) -> None:
    pipe, _, box = make(FakeEngines(heard=text))
    await pipe._on_turn(TurnEvent("started", 0))
    await pipe._on_turn(TurnEvent("ended", 800, 500))
    await asyncio.sleep(0.2)
    assert not box.of(ev.ResponseCreated) and pipe.reply is None


async def _held_reply(pipe: Pipeline, box: Box) -> None:
    """A long reply, held by speech over it (maybe "mm-hmm": not judged yet)."""
    pipe.config.turn.echo_guard = False
    pipe.config.turn.backchannel_ms = 800
    await pipe.user_text("Tell me a long story")
    await box.until(ev.AudioStarted)
    await pipe._on_turn(TurnEvent("started", 5000))
    assert pipe.barge.overlap is not None and pipe.reply is not None
    assert not pipe.reply.playing.is_set()


async def test_clearing_the_buffer_lets_a_held_reply_go_on() -> None:
    engines = FakeEngines(reply=" ".join(f"word{i}." for i in range(20)))
    pipe, _, box = make(engines, max_reply_sentences=100)
    await _held_reply(pipe, box)
    await pipe.clear()  # the page switched to push-to-talk mid-overlap
    assert pipe.barge.overlap is None
    done = await box.until(ev.ResponseDone)
    assert done.response.status == "completed"


async def test_a_held_reply_goes_on_when_the_audio_stops(monkeypatch: pytest.MonkeyPatch) -> None:
    """No verdict ever comes (the client stopped sending audio): the hold has a time limit."""
    from voice_chat.pipeline import overlap_flow

    monkeypatch.setattr(overlap_flow, "HOLD_LIMIT_S", 0.2)
    engines = FakeEngines(reply=" ".join(f"word{i}." for i in range(20)))
    pipe, _, box = make(engines, max_reply_sentences=100)
    await _held_reply(pipe, box)
    done = await box.until(ev.ResponseDone)
    assert done.response.status == "completed"
    await pipe.close()


async def test_missing_audio_mid_turn_is_heard_as_silence() -> None:
    """Speech, then the stream stops: the gap filler ends the turn, and the reply comes."""
    pipe, _, box = make()
    t = np.arange(RATE) / RATE
    voice = (0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t))).astype(np.float32)
    pipe.detector.in_speech = True  # as if the VAD had heard the start of a turn
    await pipe._on_turn(TurnEvent("started", 0))
    pipe._gaps.received(len(voice))
    done = await box.until(ev.ResponseDone, timeout=10)
    assert done.response.status == "completed"
    assert box.of(ev.SpeechStopped)
    await pipe.close()


def _speaking(pipe: Pipeline, seconds: float) -> None:
    """As if the VAD had heard ``seconds`` of an utterance that is still going on."""
    frames = int(seconds * RATE) // 512
    pipe.detector.in_speech = True
    pipe.detector._frames = [np.zeros(512, np.float32)] * frames


async def test_live_transcript_shows_the_words_and_prefills_all_but_the_last() -> None:
    engines = FakeEngines(heard="tell me about the sea")
    engines.busy = False
    pipe, _, box = make(engines)
    await pipe._on_turn(TurnEvent("started", 0))
    _speaking(pipe, 0.3)
    pipe._transcribe_live()
    await asyncio.sleep(0.05)
    assert engines.partials == 0  # not enough speech yet
    _speaking(pipe, 0.7)
    pipe._transcribe_live()
    pipe._transcribe_live()  # one at a time
    delta = await box.until(ev.TranscriptDelta)
    assert delta.text == "tell me about the sea" and engines.partials == 1
    await asyncio.sleep(0.05)
    assert engines.prefilled[-1][-1] == {"role": "user", "content": "tell me about the"}
    pipe._transcribe_live()  # no new speech since: nothing to do
    await asyncio.sleep(0.05)
    assert engines.partials == 1
    await pipe.close()


async def test_no_live_transcript_while_stt_is_busy_or_a_reply_is_under_way() -> None:
    engines = FakeEngines()
    pipe, _, _ = make(engines)
    await pipe._on_turn(TurnEvent("started", 0))
    _speaking(pipe, 1.0)
    pipe._transcribe_live()
    await asyncio.sleep(0.1)
    assert engines.partials == 1 and engines.transcribed == 0  # asked, but busy
    engines.busy = False
    await pipe._on_turn(TurnEvent("paused", 1100, 1000))  # a speculative reply starts
    _speaking(pipe, 2.0)
    pipe._transcribe_live()
    await asyncio.sleep(0.1)
    assert engines.partials == 1
    await pipe.close()


async def test_the_next_turn_is_prefilled_once_the_replys_speech_is_made() -> None:
    engines = FakeEngines(reply="One two three. Four five six.")
    said: list[str] = []
    first_said = asyncio.Event()
    synthesize = engines.synthesize

    async def slow_tts(voice_id: str, text: str) -> np.ndarray:
        await asyncio.sleep(0.1)  # the reply's text is final long before its speech is made
        said.append(text)
        first_said.set()
        return await synthesize(voice_id, text)

    engines.synthesize = slow_tts  # type: ignore[method-assign]
    pipe, _, box = make(engines)
    await asyncio.sleep(0.05)
    before = len(engines.prefilled)
    await pipe.user_text("Hi")
    await asyncio.wait_for(first_said.wait(), 5)
    assert pipe.reply is not None and pipe.reply.next_prompt is not None  # the text is final
    assert len(engines.prefilled) == before  # the second chunk's TTS runs: the LLM waits
    await box.until(ev.ResponseDone)
    await asyncio.sleep(0.05)
    assert len(said) == 2 and len(engines.prefilled) > before  # (again when it has played)
    last = engines.prefilled[before]
    assert last[-2:] == [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "One two three. Four five six."},
    ]
    await pipe.close()


async def test_the_turns_transcript_starts_at_the_first_silent_frame() -> None:
    engines = FakeEngines(heard="what is your name")
    engines.stt_delay = 0.1
    pipe, _, box = make(engines)
    await pipe._on_turn(TurnEvent("started", 0))
    _speaking(pipe, 1.0)
    pipe.detector._last_speech_ms = 1000
    pipe.detector._silent_ms = 32  # the first silent frame: the transcription starts
    pipe._transcribe_live()
    pipe._transcribe_live()  # the same silence: not twice
    await asyncio.sleep(0.06)
    assert engines.transcribed == 1
    await pipe._on_turn(TurnEvent("paused", 1064, 1000))  # the reply takes it, half done
    await pipe._on_turn(TurnEvent("ended", 1300, 1000))
    done = await box.until(ev.TranscriptCompleted)
    assert done.transcript == "what is your name" and engines.transcribed == 1
    await box.until(ev.ResponseDone)
    await pipe.close()


async def test_an_early_transcript_is_dropped_when_the_user_goes_on() -> None:
    engines = FakeEngines(heard="what is your name")
    pipe, _, box = make(engines)
    await pipe._on_turn(TurnEvent("started", 0))
    _speaking(pipe, 1.0)
    pipe.detector._last_speech_ms = 1000
    pipe.detector._silent_ms = 32
    pipe._transcribe_live()
    await asyncio.sleep(0.05)
    assert engines.transcribed == 1
    # a dip, then more words: the pause after them transcribes the whole utterance again
    await pipe._on_turn(TurnEvent("paused", 1800, 1700))
    await pipe._on_turn(TurnEvent("ended", 2000, 1700))
    await box.until(ev.TranscriptCompleted)
    assert engines.transcribed == 2
    await box.until(ev.ResponseDone)
    await pipe.close()


async def test_the_sound_of_the_turn_is_judged_only_after_complete_words() -> None:
    calls: list[int] = []
    engines = FakeEngines()

    async def probability(audio: np.ndarray) -> float | None:
        calls.append(len(audio))
        return 0.9

    engines.turn_probability = probability  # type: ignore[method-assign]
    pipe, _, _ = make(engines, turn=TurnConfig(type="semantic_vad"))
    pipe.endpoint.listen_again()
    pipe.endpoint.judge_words("I was thinking about", np.zeros(RATE, np.float32))
    await asyncio.sleep(0.05)
    assert calls == [] and pipe.detector.endpoint_ms == 2500  # unfinished: wait the cap
    pipe.endpoint.judge_words("What is your favourite colour?", np.zeros(RATE, np.float32))
    await asyncio.sleep(0.05)
    assert calls == [RATE] and pipe.detector.endpoint_ms == 192  # complete, and it sounds so
    await pipe.close()
