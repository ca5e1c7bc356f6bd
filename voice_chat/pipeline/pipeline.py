"""The conversation flow, in one place.

    audio in → turn detection → STT → LLM → sentence chunking → TTS → audio out

:class:`Pipeline` owns one conversation. Audio goes through :meth:`Pipeline.push_audio`
(resampled to 16 kHz, then the turn detector). When the user pauses, a reply starts
*speculatively*: transcription, generation and synthesis run, but nothing is sent until the
turn really ends; if the user speaks again first, the speculative reply is dropped. A reply
runs as three tasks joined by queues (see :mod:`voice_chat.pipeline.reply`):

    think: STT → prompt → LLM stream → chunker  ──chunks──▶  speak: TTS → PCM frames
                                                                        │
                                            emit: (gate) → websocket ◀──┘

A barge-in cancels the reply's task group: the LLM stops at its next token, TTS at its next
chunk, and only what the user heard stays in the history.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Sequence
from typing import Any

import numpy as np
import structlog

from voice_chat.audio.pcm import MODEL_RATE, StreamResampler, float_to_pcm16, pcm16_to_float
from voice_chat.characters.registry import Character
from voice_chat.engines.base import GenerationOptions, Synthesizer
from voice_chat.metrics import observe_reply
from voice_chat.pipeline.chunking import Chunker
from voice_chat.pipeline.conversation import Conversation, Turn
from voice_chat.pipeline.prompting import build_messages
from voice_chat.pipeline.reply import END, Outbox, Reply, Segment, new_item_id
from voice_chat.pipeline.turns import TurnDetector, TurnEvent
from voice_chat.runtime.local import Runtime

log = structlog.get_logger(__name__)


class Pipeline:
    def __init__(
        self,
        runtime: Runtime,
        outbox: Outbox,
        character: Character,
        conversation: Conversation,
        *,
        user_name: str = "User",
        input_rate: int = MODEL_RATE,
        output_rate: int | None = None,
        manual: bool = False,
    ) -> None:
        s = runtime.settings
        self.runtime = runtime
        self.outbox = outbox
        self.character = character
        self.conversation = conversation
        self.user_name = user_name
        self.output_rate = output_rate
        self.manual = manual
        self.naive = s.pipeline_mode == "naive"
        self.detector = TurnDetector(
            threshold=s.vad_threshold,
            silence_ms=s.silence_duration_ms,
            speculative_ms=0 if self.naive else s.speculative_ms,
        )
        self.set_input_rate(input_rate)
        self.reply: Reply | None = None  # the reply in progress (speculative or live)
        self.replies: dict[str, Reply] = {}  # recent replies, for truncation
        self._manual_audio: list[np.ndarray] = []
        self._carry = np.zeros(0, dtype=np.float32)  # utterance re-joined after a false end
        self._prefill_task: asyncio.Task[None] | None = None
        self._item_id = new_item_id()  # the user's utterance being transcribed
        self._partial_text = ""

    @property
    def voice_id(self) -> str:
        return self.runtime.voice_for(self.character.voice)

    def set_input_rate(self, rate: int) -> None:
        self.input_rate = rate
        self._resampler = StreamResampler(rate, MODEL_RATE)

    # ----------------------------------------------------------------- audio in
    async def push_audio(self, pcm: bytes) -> None:
        audio = self._resampler.process(pcm16_to_float(pcm))
        if self.manual:
            self._manual_audio.append(audio)
            if (
                sum(map(len, self._manual_audio))
                > self.runtime.settings.max_utterance_s * MODEL_RATE
            ):
                await self.outbox.error(
                    "utterance_too_long", "turn longer than max_utterance_s; ended"
                )
                await self.commit()
            return
        for event in self.detector.feed(audio):
            await self._on_turn(event)
        if (
            self.detector.in_speech
            and self.detector.utterance_samples > self.runtime.settings.max_utterance_s * MODEL_RATE
        ):
            await self.outbox.error("utterance_too_long", "turn longer than max_utterance_s; ended")
            now = self.detector.now_ms
            self.detector.in_speech = False
            await self._on_turn(TurnEvent("ended", now, now))

    # ----------------------------------------------------------- turn detection
    async def _on_turn(self, ev: TurnEvent) -> None:
        reply = self.reply
        if ev.kind == "started":
            merge = reply is not None and reply.audio is not None and reply.audio_sent_ms == 0
            if not merge:
                self._item_id, self._partial_text = new_item_id(), ""
            await self.outbox.event(
                {
                    "type": "input_audio_buffer.speech_started",
                    "audio_start_ms": ev.at_ms,
                    "item_id": self._item_id,
                }
            )
            if reply is not None:
                if merge and reply.audio is not None:
                    # The turn was not really over: drop the reply, transcribe it all again.
                    self._carry = reply.audio
                    await self.cancel(reply, status="cancelled", revert_user=True)
                else:
                    await self.cancel(reply, status="cancelled")
        elif ev.kind == "paused" and reply is None:
            audio = np.concatenate([self._carry, self.detector.utterance()])
            self.reply = self._start(audio=audio, speech_end=self._wall(ev), live=False)
        elif ev.kind == "resumed" and reply is not None and not reply.is_live:
            await self.cancel(reply, status="cancelled")
        elif ev.kind == "ended":
            await self.outbox.event(
                {
                    "type": "input_audio_buffer.speech_stopped",
                    "audio_end_ms": ev.speech_end_ms,
                    "item_id": self._item_id,
                }
            )
            await self.outbox.event(
                {"type": "input_audio_buffer.committed", "item_id": self._item_id}
            )
            audio = np.concatenate([self._carry, self.detector.utterance()])
            self.detector.clear_utterance()
            self._carry = np.zeros(0, dtype=np.float32)
            if reply is not None and not reply.is_live:
                reply.audio = audio
                reply.go_live()
            elif reply is None:
                reply = self.reply = self._start(audio=audio, speech_end=self._wall(ev), live=True)
            if reply is not None:
                reply.mark("speech_stopped_ms")

    def _wall(self, ev: TurnEvent) -> float:
        """Wall-clock time at which the user stopped speaking (audio arrives in real time)."""
        return time.monotonic() - (self.detector.now_ms - ev.speech_end_ms) / 1000.0

    # ------------------------------------------------------------ client calls
    async def commit(self) -> None:
        if self.manual:
            audio = np.concatenate(self._manual_audio) if self._manual_audio else np.zeros(0)
            self._manual_audio = []
        else:
            audio = np.concatenate([self._carry, self.detector.utterance()])
            self.detector.clear_utterance()
            self.detector.in_speech = False
        if len(audio) < MODEL_RATE // 10:
            await self.outbox.error("nothing_to_commit", "no buffered audio to commit")
            return
        await self.interrupt()
        self._item_id, self._partial_text = new_item_id(), ""
        await self.outbox.event({"type": "input_audio_buffer.committed", "item_id": self._item_id})
        self.reply = self._start(
            audio=audio.astype(np.float32), speech_end=time.monotonic(), live=True
        )

    async def clear(self) -> None:
        self._manual_audio = []
        self._carry = np.zeros(0, dtype=np.float32)
        self.detector.clear_utterance()
        await self.outbox.event({"type": "input_audio_buffer.cleared"})

    async def user_text(self, text: str) -> None:
        await self.interrupt()
        self.reply = self._start(text=text, speech_end=time.monotonic(), live=True)

    async def greet(self, greeting: str) -> None:
        if greeting.strip():
            self.reply = self._start(fixed=greeting, speech_end=time.monotonic(), live=True)

    async def interrupt(self) -> None:
        if self.reply is not None:
            await self.cancel(self.reply, status="cancelled")

    async def truncate(self, response_id: str, audio_end_ms: int) -> None:
        reply = self.replies.get(response_id)
        if reply is None:
            await self.outbox.error("invalid_event", f"unknown response_id {response_id!r}")
            return
        heard = reply.heard_text(audio_end_ms)
        if reply.assistant_turn is not None:
            self.conversation.update(reply.assistant_turn, heard)
        await self.outbox.event(
            {
                "type": "conversation.item.truncated",
                "response_id": response_id,
                "audio_end_ms": audio_end_ms,
                "text": heard,
            }
        )

    # ---------------------------------------------------------------- replies
    async def _partial(self, item_id: str, text: str) -> None:
        """Send the transcript so far: ``delta`` extends the previous partial, ``text`` is all."""
        text = text.strip()
        if not text or text == self._partial_text:
            return
        extends = text.startswith(self._partial_text)
        delta = text[len(self._partial_text) :] if extends else text
        self._partial_text = text
        await self.outbox.event(
            {
                "type": "conversation.item.input_audio_transcription.delta",
                "item_id": item_id,
                "delta": delta,
                "text": text,
            }
        )

    def _start(self, *, speech_end: float, live: bool, **what: Any) -> Reply:
        reply = Reply(
            item_id=self._item_id,
            speech_end=speech_end,
            voice_id=self.voice_id,
            output_rate=self.output_rate,
            live=live,
            **what,
        )
        self.replies[reply.id] = reply
        if len(self.replies) > 32:
            self.replies.pop(next(iter(self.replies)))
        reply.task = asyncio.create_task(self._run(reply))
        return reply

    async def _run(self, reply: Reply) -> None:
        try:
            chunks: asyncio.Queue[str | None] = asyncio.Queue()
            async with asyncio.TaskGroup() as group:
                group.create_task(self._think(reply, chunks))
                group.create_task(self._speak(reply, chunks))
                group.create_task(self._emit(reply))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("reply failed", response_id=reply.id)
            await self.outbox.error("response_failed", f"the reply failed: {exc}")
            await self.outbox.event(reply.done_event("failed"))
            observe_reply("failed", reply.metrics, spoken_turn=False)
        finally:
            if self.reply is reply:
                self.reply = None

    async def cancel(self, reply: Reply, *, status: str, revert_user: bool = False) -> None:
        """Stop a reply now: LLM and TTS stop, no more audio, history keeps what was heard."""
        if self.reply is reply:
            self.reply = None
        if reply.finished:
            return
        reply.stop()
        if reply.task is not None:
            reply.task.cancel()
            await asyncio.gather(reply.task, return_exceptions=True)
        if revert_user and reply.user_turn is not None:
            self.conversation.remove(reply.user_turn)
            reply.user_turn = None
        if reply.announced:
            heard = reply.heard_text(reply.played_ms())
            if reply.assistant_turn is None and heard and not revert_user:
                reply.assistant_turn = self.conversation.add("assistant", heard)
            if reply.audio_started:
                await self.outbox.event(
                    {
                        "type": "response.audio.done",
                        "response_id": reply.id,
                        "audio_ms": round(reply.audio_sent_ms),
                    }
                )
            await self.outbox.event(reply.done_event(status))
            observe_reply(status, reply.metrics, spoken_turn=False)
        reply.finished = True
        self._prefill()

    async def close(self) -> None:
        await self.interrupt()
        if self._prefill_task is not None:
            self._prefill_task.cancel()

    def _prefill(self, pending: Sequence[Turn] = (), now: bool = False) -> None:
        """While the user listens and speaks, pre-compute the LLM's KV cache for the history.

        ``pending`` turns are about to be stored; ``now`` runs even while a reply is playing.
        """
        llm = self.runtime.llm
        busy = self.reply is not None and not self.reply.finished
        if llm is None or self.naive or (busy and not now):
            return
        messages = build_messages(
            self.character,
            [*self.conversation.turns(), *pending],
            user_name=self.user_name,
            count_tokens=llm.count_tokens,
            budget_tokens=self.runtime.llm_budget(),
        )
        self._prefill_task = asyncio.create_task(_quietly(llm.warm(messages)))

    # ------------------------------------------------ the three stages of a reply
    async def _think(self, reply: Reply, chunks: asyncio.Queue[str | None]) -> None:
        """STT → prompt → LLM stream → chunker. Puts text events out, chunks to TTS."""
        out, rt = reply.outq, self.runtime
        try:
            user_text = reply.text
            if reply.audio is not None:
                t = time.monotonic()
                user_text = await rt.transcribe(reply.audio)
                reply.metrics["stt_ms"] = round((time.monotonic() - t) * 1000, 1)
                if not reply.is_live:  # a speculative transcript is a partial one: show it
                    await self._partial(reply.item_id, user_text)
                out.put_nowait(("transcript", user_text))
                if not user_text.strip():
                    return  # noise or a cough: no reply
            if user_text is not None:
                out.put_nowait(("user_turn", user_text))
            out.put_nowait(("event", {"type": "response.created", "response": {"id": reply.id}}))
            chunker = Chunker(max_sentences=rt.settings.max_reply_sentences)
            if reply.fixed is not None:
                chunker.max_sentences = 1000
                for piece in [*chunker.feed(reply.fixed + " "), *chunker.flush()]:
                    self._chunk_out(reply, chunks, piece)
            else:
                await self._generate(reply, chunks, chunker, user_text or "")
            if reply.is_live:  # the reply's text is final: get the LLM ready for the next turn
                pending = (
                    [Turn(0, "user", user_text)] if user_text and reply.user_turn is None else []
                )
                self._prefill([*pending, Turn(0, "assistant", " ".join(chunker.spoken))], now=True)
        finally:
            chunks.put_nowait(None)

    async def _generate(
        self, reply: Reply, chunks: asyncio.Queue[str | None], chunker: Chunker, user_text: str
    ) -> None:
        rt, s = self.runtime, self.runtime.settings
        assert rt.llm is not None
        turns = [*self.conversation.turns(), Turn(0, "user", user_text)]
        messages = build_messages(
            self.character,
            turns,
            user_name=self.user_name,
            count_tokens=rt.llm.count_tokens,
            budget_tokens=rt.llm_budget(),
        )
        options = GenerationOptions(
            max_tokens=s.max_reply_tokens,
            temperature=s.llm_temperature,
            repeat_penalty=s.llm_repeat_penalty,
        )
        stop_llm = threading.Event()
        t = time.monotonic()
        tokens = 0
        async for delta in rt.llm.stream(messages, options, stop_llm):
            if tokens == 0:
                reply.metrics["llm_first_token_ms"] = round((time.monotonic() - t) * 1000, 1)
            tokens += 1
            for piece in chunker.feed(delta):
                self._chunk_out(reply, chunks, piece)
            if chunker.capped or reply.cancelled.is_set():
                break
        stop_llm.set()
        for piece in chunker.flush():
            self._chunk_out(reply, chunks, piece)
        reply.metrics["llm_tokens"] = tokens
        reply.metrics["llm_ms"] = round((time.monotonic() - t) * 1000, 1)

    def _chunk_out(self, reply: Reply, chunks: asyncio.Queue[str | None], piece: str) -> None:
        reply.mark("first_chunk_ms")
        reply.outq.put_nowait(("text", " " + piece if reply.text_out else piece))
        reply.text_out = True
        chunks.put_nowait(piece)

    async def _speak(self, reply: Reply, chunks: asyncio.Queue[str | None]) -> None:
        """TTS each chunk in a worker thread; cut the audio into 100 ms PCM16 frames."""
        rt = self.runtime
        try:
            synth = await rt.run(rt.tts_pool, lambda: rt.synthesizer(reply.voice_id))
            rate = reply.output_rate or synth.sample_rate
            resampler = StreamResampler(synth.sample_rate, rate)
            frame = rate // 10
            held: list[Any] = []  # naive mode: nothing goes out until all audio is made
            out = held.append if self.naive else reply.outq.put_nowait
            while (piece := await chunks.get()) is not None:
                t = time.monotonic()
                audio = await rt.run(rt.tts_pool, lambda p=piece: _synth_all(synth, p))
                reply.metrics.setdefault(
                    "tts_first_chunk_ms", round((time.monotonic() - t) * 1000, 1)
                )
                reply.metrics["tts_audio_ms"] = (
                    reply.metrics.get("tts_audio_ms", 0) + len(audio) / synth.sample_rate * 1000
                )
                reply.metrics["tts_ms"] = (
                    reply.metrics.get("tts_ms", 0) + (time.monotonic() - t) * 1000
                )
                pcm = float_to_pcm16(resampler.process(audio))
                if not reply.audio_queued_ms:
                    out(("audio_start", rate))
                start = reply.audio_queued_ms
                for i in range(0, len(pcm), frame * 2):
                    part = pcm[i : i + frame * 2]
                    reply.audio_queued_ms += len(part) / 2 / rate * 1000
                    out(("audio", part))
                reply.segments.append(Segment(piece, start, reply.audio_queued_ms))
            for item in held:
                reply.outq.put_nowait(item)
        finally:
            reply.outq.put_nowait(END)

    async def _emit(self, reply: Reply) -> None:
        """Hold everything until the turn is confirmed, then send it in order, audio paced."""
        await reply.gate.wait()
        box, lead_s = self.outbox, 0.6
        while (item := await reply.outq.get()) is not END:
            kind, value = item
            if kind == "transcript":
                reply.mark("transcript_ms")
                await box.event(
                    {
                        "type": "conversation.item.input_audio_transcription.completed",
                        "item_id": reply.item_id,
                        "transcript": value,
                    }
                )
            elif kind == "user_turn":
                reply.user_turn = self.conversation.add("user", value)
            elif kind == "event":
                reply.announced = True
                await box.event(value)
            elif kind == "text":
                reply.mark("first_text_ms")
                await box.event(
                    {"type": "response.text.delta", "response_id": reply.id, "delta": value}
                )
            elif kind == "audio_start":
                reply.audio_started, reply.audio_wall_start = True, time.monotonic()
                reply.sample_rate = value
                await box.event(
                    {
                        "type": "response.audio.started",
                        "response_id": reply.id,
                        "sample_rate": value,
                        "encoding": "pcm16",
                    }
                )
            elif kind == "audio":
                ahead = reply.audio_sent_ms / 1000 - (time.monotonic() - reply.audio_wall_start)
                if ahead > lead_s:
                    await asyncio.sleep(ahead - lead_s)
                reply.mark("first_audio_ms")
                await box.audio(value)
                reply.audio_sent_ms += len(value) / 2 / reply.sample_rate * 1000
        if not reply.announced:
            reply.finished = True
            return
        if reply.audio_started:
            await box.event(
                {
                    "type": "response.audio.done",
                    "response_id": reply.id,
                    "audio_ms": round(reply.audio_sent_ms),
                }
            )
        if reply.full_text:
            reply.assistant_turn = self.conversation.add("assistant", reply.full_text)
        reply.mark("total_ms")
        reply.finished = True
        observe_reply("completed", reply.metrics, spoken_turn=reply.audio is not None)
        await box.event(reply.done_event("completed"))
        self._prefill()


def _synth_all(synth: Synthesizer, text: str) -> np.ndarray:
    parts = list(synth.synthesize(text))
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)


async def _quietly(job: Awaitable[None]) -> None:
    try:
        await job
    except Exception as exc:  # noqa: BLE001 - an optimisation; never fails a session
        log.warning("LLM prefill failed", error=str(exc))
