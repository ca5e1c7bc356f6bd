"""The conversation flow, in one place.

    audio in → turn detection → STT → LLM → sentence chunking → TTS → audio out

:class:`Pipeline` owns one conversation. Audio goes through :meth:`Pipeline.push_audio`
(resampled to 16 kHz, then the turn detector). When the user pauses, a reply starts
*speculatively*: transcription, generation and synthesis run, but nothing is sent until the
turn really ends; if the user speaks again first, the speculative reply is dropped. A reply
runs as three tasks joined by queues (:mod:`voice_chat.pipeline.stages`):

    think: STT → prompt → LLM stream → chunker  ──chunks──▶  speak: TTS → PCM frames
                                                                        │
                                            emit: (gate) → websocket ◀──┘

A barge-in cancels the reply's task group: the LLM stops at its next token, TTS at its next
chunk, and only what the user heard stays in the history.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import numpy as np
import structlog

from voice_chat.audio.pcm import MODEL_RATE, StreamResampler, pcm16_to_float
from voice_chat.audio.vad import speech_ms
from voice_chat.characters.registry import Character
from voice_chat.metrics import observe_reply
from voice_chat.pipeline import events as ev
from voice_chat.pipeline.conversation import Conversation, Turn
from voice_chat.pipeline.endpoint import SemanticEndpoint
from voice_chat.pipeline.gaps import TICK_S, StreamGaps
from voice_chat.pipeline.live import LiveTranscript
from voice_chat.pipeline.overlap import BargeIn
from voice_chat.pipeline.overlap_flow import OverlapFlow
from voice_chat.pipeline.ports import Engines, Outbox, SessionConfig
from voice_chat.pipeline.reply import Reply, failure_cause, new_item_id
from voice_chat.pipeline.stages import ReplyStages
from voice_chat.pipeline.turns import TurnDetector, TurnEvent

log = structlog.get_logger(__name__)


class Pipeline(OverlapFlow, ReplyStages):
    """One conversation's flow. The session owns ``config`` and may change it at any time."""

    def __init__(
        self, engines: Engines, outbox: Outbox, config: SessionConfig, conversation: Conversation
    ) -> None:
        self.engines = engines
        self.outbox = outbox
        self.config = config
        self.conversation = conversation
        self.detector = TurnDetector(config.turn, speculative=not config.naive)
        self.set_input_rate(config.input_rate)
        self.reply: Reply | None = None  # the reply in progress (speculative or live)
        self.replies: dict[str, Reply] = {}  # recent replies, for truncation
        self._manual_audio: list[np.ndarray] = []
        self._carry = np.zeros(0, dtype=np.float32)  # utterance re-joined after a false end
        self._prefill_task: asyncio.Task[None] | None = None
        self._item_id = new_item_id()  # the user's utterance being transcribed
        self._detached: set[asyncio.Task[None]] = set()  # transcriptions left to finish
        self._partial_text = ""
        self.endpoint = SemanticEndpoint(config, self.detector, engines)  # semantic_vad
        # echo and backchannels while the character speaks
        self.barge = BargeIn(cancel_echo=config.turn.echo_guard and config.turn.echo_cancel)
        self._gaps = StreamGaps()
        self.live = LiveTranscript(
            engines.transcribe_partial, self._live_words, final=engines.transcribe
        )
        self._hearing = asyncio.Lock()  # audio and gap filler reach the detector in turn
        self._filler = asyncio.create_task(self._fill_gaps())
        self._prefill()  # the persona (and a resumed conversation) into the KV cache now

    @property
    def character(self) -> Character:
        return self.config.character

    def set_input_rate(self, rate: int) -> None:
        self.config.input_rate = rate
        self._resampler = StreamResampler(rate, MODEL_RATE)

    # ----------------------------------------------------------------- audio in
    async def push_audio(self, pcm: bytes) -> None:
        audio = self._resampler.process(pcm16_to_float(pcm))
        limit = self.config.max_utterance_s * MODEL_RATE
        if self.config.turn.manual:
            if self.barge.overlap is not None:  # switched to push-to-talk mid-overlap
                self.release_hold(keep_utterance=False)
            self._manual_audio.append(audio)
            if sum(map(len, self._manual_audio)) > limit:
                await self.outbox.error(
                    "utterance_too_long", "turn longer than max_utterance_s; ended"
                )
                await self.commit()
            return
        self._gaps.received(len(audio))
        async with self._hearing:
            await self._hear(audio)

    async def _hear(self, audio: np.ndarray) -> None:
        in_speech = self.detector.in_speech

        def listen() -> list[TurnEvent]:  # echo cancelling and VAD, in the listening pool
            return self.detector.feed(self.barge.hear(audio, in_speech=in_speech))

        for event in await self.engines.analyse(listen):
            await self._on_turn(event)
        await self._watch_overlap()
        self._transcribe_live()
        limit = self.config.max_utterance_s * MODEL_RATE
        if self.detector.in_speech and self.detector.utterance_samples > limit:
            await self.outbox.error("utterance_too_long", "turn longer than max_utterance_s; ended")
            now = self.detector.now_ms
            self.detector.in_speech = False
            await self._on_turn(TurnEvent("ended", now, now))

    def _transcribe_live(self) -> None:
        detector = self.detector
        if not detector.in_speech or self.reply is not None or self.config.naive:
            return
        if self.barge.overlap is not None:
            return
        if not detector.silent_ms:
            samples = len(self._carry) + detector.utterance_samples
            self.live.heard(self._item_id, samples, self._utterance)
        elif detector.silent_ms < detector.speculative_ms:  # the turn's own, started early
            self.live.quiet(self._item_id, detector.last_speech_ms, self._utterance)

    def _utterance(self) -> np.ndarray:
        """The utterance's audio, with what was carried over from a false end."""
        return np.concatenate([self._carry, self.detector.utterance()])

    async def _live_words(self, item_id: str, text: str) -> None:
        """Words of the utterance still being spoken: show them, pre-fill all but the last."""
        if item_id != self._item_id or self.reply is not None or not self.detector.in_speech:
            return  # the user paused (that pause transcribes) or this is another utterance
        await self._partial(item_id, text)
        head = text.rsplit(maxsplit=1)[0] if " " in text else ""  # the last word may change
        if head:
            self._prefill([Turn(0, "user", head)])

    async def _fill_gaps(self) -> None:
        """The audio stopped in the middle of a turn: its missing time is heard as silence."""
        while True:
            await asyncio.sleep(TICK_S)
            if self.config.turn.manual or not (self.detector.in_speech or self.barge.overlap):
                continue
            samples = self._gaps.missing()
            if samples:
                try:
                    async with self._hearing:
                        await self._hear(np.zeros(samples, dtype=np.float32))
                except Exception:
                    log.exception("gap filler failed")

    # ----------------------------------------------------------- turn detection
    async def _on_turn(self, turn: TurnEvent) -> None:
        if await self._overlapping(turn):
            return
        reply = self.reply
        if turn.kind in ("started", "resumed"):
            self.endpoint.listen_again()
        if turn.kind == "started":
            if reply is not None and reply.is_live and not reply.respond:
                self._detach(reply)  # a finished turn being transcribed: let it finish
                reply = None
            merge = reply is not None and reply.audio is not None and reply.audio_sent_ms == 0
            if not merge:
                self._item_id, self._partial_text = new_item_id(), ""
            await self.outbox.event(ev.SpeechStarted(turn.at_ms, self._item_id))
            if reply is not None:
                if merge and reply.audio is not None:
                    # The turn was not really over: drop the reply, transcribe it all again.
                    self._carry = reply.audio
                    await self.cancel(reply, status="cancelled", revert_user=True)
                else:
                    await self.cancel(reply, status="cancelled")
        elif turn.kind == "paused" and reply is None and self._heard_speech():
            audio = self._utterance()
            early = self.live.take(self._item_id, turn.speech_end_ms)
            self.reply = self._start(
                audio=audio, transcript=early, speech_end=self._wall(turn), live=False
            )
        elif turn.kind == "resumed" and reply is not None and not reply.is_live:
            await self.cancel(reply, status="cancelled")
        elif turn.kind == "ended":
            await self.outbox.event(ev.SpeechStopped(turn.speech_end_ms, self._item_id))
            await self.outbox.event(ev.AudioCommitted(self._item_id))
            audio = self._utterance()
            waited, heard = self.detector.silence_ms, self._heard_speech()
            self.detector.clear_utterance()
            self._carry = np.zeros(0, dtype=np.float32)
            if not heard:  # a click or a breath: no turn, no reply
                if reply is not None and not reply.is_live:
                    await self.cancel(reply, status="cancelled")
                await self.outbox.event(ev.TranscriptCompleted(self._item_id, ""))
                return
            if reply is not None and not reply.is_live:
                reply.audio = audio
                reply.go_live()
            elif reply is None:
                reply = self._start(audio=audio, speech_end=self._wall(turn), live=True)
                self.reply = reply
            if reply is not None:
                reply.mark("speech_stopped_ms")
                reply.metrics["endpoint_ms"] = waited
                if self.endpoint.state.p_audio is not None:
                    reply.metrics["turn_p_complete"] = round(self.endpoint.state.p_audio, 3)

    def _heard_speech(self) -> bool:
        return self.detector.voiced_ms + (len(self._carry) * 1000 // MODEL_RATE) >= (
            self.config.turn.min_speech_ms
        )

    def _wall(self, turn: TurnEvent) -> float:
        """Wall-clock time at which the user stopped speaking (audio arrives in real time)."""
        return time.monotonic() - (self.detector.now_ms - turn.speech_end_ms) / 1000.0

    # ------------------------------------------------------------ client calls
    async def commit(self) -> None:
        if self.config.turn.manual:
            audio = np.concatenate(self._manual_audio) if self._manual_audio else np.zeros(0)
            self._manual_audio = []
        else:
            audio = self._utterance()
            self.detector.clear_utterance()
            self.detector.in_speech = False
        if len(audio) < MODEL_RATE // 10:
            await self.outbox.error("nothing_to_commit", "no buffered audio to commit")
            return
        await self.interrupt()
        self._item_id, self._partial_text = new_item_id(), ""
        await self.outbox.event(ev.AudioCommitted(self._item_id))
        clip = audio.astype(np.float32)
        if await self.engines.analyse(lambda: speech_ms(clip)) < self.config.turn.min_speech_ms:
            await self.outbox.event(ev.TranscriptCompleted(self._item_id, ""))  # no speech
            return
        self.reply = self._start(
            audio=audio.astype(np.float32), speech_end=time.monotonic(), live=True
        )

    async def clear(self) -> None:
        self.release_hold(keep_utterance=False)
        self._manual_audio = []
        self._carry = np.zeros(0, dtype=np.float32)
        self.detector.clear_utterance()
        await self.outbox.event(ev.AudioCleared())

    async def user_text(self, text: str) -> None:
        await self.interrupt()
        self.reply = self._start(text=text, speech_end=time.monotonic(), live=True)

    async def regenerate(self) -> bool:
        """Make the last reply anew and speak it: the history keeps only the new one.

        The user's turn it answered is asked again. False when the last turn is not a reply
        to the user (nothing said yet, or only the greeting): the caller decides what to do.
        """
        await self.interrupt()
        turns = self.conversation.turns()
        if len(turns) < 2 or turns[-1].role != "assistant" or turns[-2].role != "user":
            return False
        asked, answer = turns[-2], turns[-1]
        self.conversation.remove(answer.id)
        self.conversation.remove(asked.id)  # stored again, in place, by the new reply
        self.reply = self._start(text=asked.text, speech_end=time.monotonic(), live=True)
        return True

    async def greet(self, greeting: str) -> None:
        if greeting.strip():
            self.reply = self._start(fixed=greeting, speech_end=time.monotonic(), live=True)

    async def interrupt(self) -> None:
        if self.reply is not None:
            await self.cancel(self.reply, status="cancelled")

    @property
    def responding(self) -> Reply | None:
        """The reply being made or spoken (not a speculative one, not a transcription)."""
        reply = self.reply
        if reply is None or not reply.respond or not reply.is_live or reply.finished:
            return None
        return reply

    async def respond(self, *, instructions: str | None = None, speak: bool | None = None) -> None:
        """Reply to the conversation as it stands (an API client's ``response.create``).

        A user turn still being transcribed is stored first, so the reply answers it.
        """
        pending = self.reply
        if pending is not None and not pending.respond and pending.task is not None:
            await asyncio.gather(asyncio.shield(pending.task), return_exceptions=True)
        await self.interrupt()
        self.reply = self._start(
            speech_end=time.monotonic(),
            live=True,
            instructions=instructions,
            speak=self.config.speak if speak is None else speak,
        )

    def _detach(self, reply: Reply) -> None:
        """Let a reply run on without being the current one (kept so close() can stop it)."""
        if self.reply is reply:
            self.reply = None
        if reply.task is not None and not reply.task.done():
            self._detached.add(reply.task)
            reply.task.add_done_callback(self._detached.discard)

    async def truncate(self, response_id: str, audio_end_ms: int) -> None:
        reply = self.replies.get(response_id)
        if reply is None:
            await self.outbox.error("invalid_event", f"unknown response_id {response_id!r}")
            return
        heard = reply.heard_text(audio_end_ms)
        if reply.assistant_turn is not None:
            self.conversation.update(reply.assistant_turn, heard)
        await self.outbox.event(ev.ItemTruncated(response_id, audio_end_ms, heard))

    # ---------------------------------------------------------------- replies
    def _start(self, *, speech_end: float, live: bool, **what: Any) -> Reply:
        what.setdefault("speak", self.config.speak)
        if what.get("audio") is not None:
            what.setdefault("respond", self.config.auto_respond)
        reply = Reply(
            item_id=self._item_id,
            speech_end=speech_end,
            voice_id=self.config.voice_id,
            output_rate=self.config.output_rate,
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
            if reply.user_turn is not None and reply.assistant_turn is None:
                self.conversation.remove(reply.user_turn)  # never a line without its answer
                reply.user_turn = None
            reply.finish()
            await self.outbox.error("response_failed", f"the reply failed: {failure_cause(exc)}")
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
        reply.stop_generating.set()
        if reply.task is not None:
            reply.task.cancel()
            await asyncio.gather(reply.task, return_exceptions=True)
        if revert_user and reply.user_turn is not None:
            self.conversation.remove(reply.user_turn)
            reply.user_turn = None
        if reply.announced:
            heard = reply.heard_text(reply.played_ms()) if reply.speak else reply.full_text
            if reply.assistant_turn is None and heard and not revert_user:
                reply.assistant_turn = self.conversation.add("assistant", heard)
            if reply.audio_started:
                await self.outbox.event(ev.AudioDone(reply.id, round(reply.audio_sent_ms)))
            await self.outbox.event(reply.done_event(status))
            observe_reply(status, reply.metrics, spoken_turn=False)
        reply.finish()
        self._prefill()

    async def close(self) -> None:
        self._filler.cancel()
        self.live.close()
        self.release_hold(keep_utterance=False)
        await self.interrupt()
        for task in list(self._detached):
            task.cancel()
        self.endpoint.close()
        if self._prefill_task is not None:
            self._prefill_task.cancel()

    # ------------------------------------------------ the three stages of a reply
