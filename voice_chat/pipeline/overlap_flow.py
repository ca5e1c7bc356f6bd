"""The pipeline's handling of speech while the character talks (see overlap.py).

A mixin of :class:`~voice_chat.pipeline.pipeline.Pipeline`: it reads the pipeline's detector,
reply and outbox, and holds, resumes or cancels the reply.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

import structlog

from voice_chat.pipeline import events as ev
from voice_chat.pipeline.overlap import Overlap, echo_fragment, echoes, is_backchannel
from voice_chat.pipeline.reply import Reply, new_item_id
from voice_chat.pipeline.turns import TurnEvent

if TYPE_CHECKING:
    from voice_chat.pipeline.endpoint import SemanticEndpoint
    from voice_chat.pipeline.overlap import BargeIn
    from voice_chat.pipeline.ports import Engines, Outbox, SessionConfig
    from voice_chat.pipeline.turns import TurnDetector

log = structlog.get_logger(__name__)
HOLD_LIMIT_S = 4.0  # a held reply goes on if the overlap is still not judged by then
REJUDGE_MS = 400  # a long overlap without words is judged again after this much more voice


class OverlapFlow:
    config: SessionConfig
    engines: Engines
    outbox: Outbox
    detector: TurnDetector
    endpoint: SemanticEndpoint
    barge: BargeIn
    reply: Reply | None
    _item_id: str
    _partial_text: str

    async def cancel(self, reply: Reply, *, status: str, revert_user: bool = False) -> None: ...
    async def _on_turn(self, turn: TurnEvent) -> None: ...

    def _speaking(self) -> Reply | None:
        reply = self.reply
        if reply is not None and reply.audio_started and not reply.finished:
            return reply
        return None

    async def _overlapping(self, turn: TurnEvent) -> bool:
        """Echo and backchannels: True when the event is handled here (see overlap.py)."""
        turn_cfg, barge = self.config.turn, self.barge
        if turn.kind == "started":
            if turn_cfg.echo_guard and barge.echo_possible():
                if await self.engines.analyse(barge.is_echo):
                    barge.echo_turn = True
                    return True
            if turn_cfg.backchannel_ms and self._speaking() is not None:
                self._hold(turn.at_ms)
                return True
            return False
        if barge.echo_turn:
            if turn.kind == "ended":
                barge.echo_turn = False
                return await self._echo_turn_ended(turn)
            return True
        if barge.overlap is None:
            return False
        if turn.kind == "ended":
            await self._judge_overlap(turn)
        return True

    async def _echo_turn_ended(self, turn: TurnEvent) -> bool:
        """What sounded like our echo is over: if its words are not ours, the user spoke.

        Where the echo is cancelled, Whisper hears only its faint rest and makes up a word or
        two ("Nope."); a person would have been heard in one of the checks, so those short
        transcripts are echo too."""
        text = await self.engines.transcribe(self.detector.utterance())
        said = self.barge.said()
        fragment = echo_fragment(text)  # a piece of the echo, misheard
        fragment = fragment or (self.barge.cancelling and len(text.split()) <= 2)
        if not text.strip() or echoes(text, said) or is_backchannel(text) or fragment:
            self.detector.clear_utterance()
            return True
        log.info("not our echo after all", heard=text)
        self._item_id, self._partial_text = new_item_id(), ""
        await self.outbox.event(ev.SpeechStarted(turn.at_ms, self._item_id))
        if self.reply is not None:
            await self.cancel(self.reply, status="cancelled")
        return False  # the pipeline ends this turn as the user's

    def _hold(self, at_ms: int) -> None:
        reply = self._speaking()
        if reply is None:
            return
        reply.playing.clear()
        overlap = self.barge.overlap = Overlap(at_ms, time.monotonic())
        self.detector.endpoint_ms = 320  # a short silence ends the overlap
        overlap.watchdog = asyncio.create_task(self._hold_limit(overlap))

    async def _hold_limit(self, overlap: Overlap) -> None:
        """A hold never outlives its overlap: with no verdict in time (the microphone went
        quiet, the client stopped sending audio), the reply goes on."""
        await asyncio.sleep(HOLD_LIMIT_S)
        if self.barge.overlap is overlap:
            log.info("overlap not judged in time; the reply goes on")
            self.release_hold(keep_utterance=False)

    def release_hold(self, *, keep_utterance: bool = True) -> None:
        """Forget the overlap being judged; a held reply plays on (clear, a change of mode)."""
        overlap, self.barge.overlap = self.barge.overlap, None
        self.barge.echo_turn = False
        if overlap is None:
            return
        if overlap.watchdog is not None and overlap.watchdog is not asyncio.current_task():
            overlap.watchdog.cancel()
        if not keep_utterance:
            self.detector.clear_utterance()
            self.detector.in_speech = False
        self.endpoint.listen_again()
        reply = self._speaking()
        if reply is not None:
            reply.playing.set()

    async def _watch_overlap(self) -> None:
        """Echo that turns into a person talking; an overlap too long to be a backchannel."""
        barge, det = self.barge, self.detector
        if barge.echo_turn and det.in_speech and barge.check_due():
            if not await self.engines.analyse(barge.is_echo):
                barge.echo_turn = False
                det.keep_last(320)  # the echo before it is not the user's
                if self.config.turn.backchannel_ms and self._speaking() is not None:
                    self._hold(det.now_ms)
                else:
                    await self._on_turn(TurnEvent("started", det.now_ms))
        overlap = barge.overlap
        if overlap is not None and det.voiced_ms > max(
            self.config.turn.backchannel_ms, overlap.judge_after_ms
        ):
            await self._judge_overlap(None)  # too long for "mm-hmm": unless it is our echo

    async def _interrupted(self) -> None:
        """The overlap is a real interruption: cancel the reply; the speech is a new turn."""
        overlap, self.barge.overlap = self.barge.overlap, None
        if overlap is None:
            return
        if overlap.watchdog is not None:
            overlap.watchdog.cancel()
        self.endpoint.listen_again()
        self._item_id, self._partial_text = new_item_id(), ""
        await self.outbox.event(ev.SpeechStarted(overlap.started_ms, self._item_id))
        if self.reply is not None:
            await self.cancel(self.reply, status="cancelled")

    def _no_words_yet(self, text: str) -> bool:
        """Nothing heard, or one lone word while our echo may still come in."""
        return not text.strip() or (self.barge.echo_possible() and echo_fragment(text))

    async def _judge_overlap(self, turn: TurnEvent | None) -> None:
        """From what was heard: our own words (echo), "mm-hmm" (at its end), or the user."""
        overlap = self.barge.overlap
        text = await self.engines.transcribe(self.detector.utterance())
        reply = self._speaking()
        if overlap is None or overlap is not self.barge.overlap:
            return
        # One word that the reply also has is our echo only from a client known to echo:
        # from one that is not, "What?" is the user, whatever the character said.
        echo = reply is not None and echoes(text, self.barge.said())
        echo = echo and (self.barge.echoing or len(text.split()) > 1)
        if turn is None and not echo and self._no_words_yet(text):
            # Long, but no words to judge: the rest of our echo, a long laugh. Held on, it is
            # judged again in a while, or at its end.
            overlap.judge_after_ms = self.detector.voiced_ms + REJUDGE_MS
            return
        short = turn is not None and is_backchannel(text, self.detector.voiced_ms)
        short = short or (turn is not None and self.barge.echo_possible() and echo_fragment(text))
        if reply is not None and (echo or short):
            log.info("the reply goes on", heard=text, echo=echo)
            echo_turn = echo and self.detector.in_speech
            if not echo_turn:
                self.detector.clear_utterance()
            self.release_hold()
            self.barge.echo_turn = echo_turn
            return
        log.info("interrupted", heard=text, final=turn is not None)
        await self._interrupted()
        if turn is not None:
            await self._on_turn(turn)  # the overlap was the user's next turn
