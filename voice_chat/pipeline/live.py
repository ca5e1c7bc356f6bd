"""While the user speaks: a transcript of the utterance so far, now and then.

Each :data:`EVERY_MS` of new speech, when the STT engine has nothing else to do, the
utterance so far is transcribed in the background. The pipeline shows the words as transcript
deltas and pre-fills them into the LLM's cache, so the reply at the end of the turn only
evaluates the user's last few words instead of the whole line. It is best effort: a busy
engine is never asked (the engine answers ``None``), a transcript that arrives after the
user paused or went on to another utterance is dropped, and a turn's own transcript is made
at the pause as before, never taken from here.

The turn's own transcript can start early, though: at the first silent VAD frame after
speech (:meth:`LiveTranscript.quiet`), 32 ms before a reply may start speculatively, the
utterance is transcribed in full. When the pause comes and no speech was heard in between,
the reply takes that transcription (:meth:`LiveTranscript.take`) instead of starting its own:
the audio is the same but for a frame of silence. When the user goes on, it is dropped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import numpy as np
import structlog

from voice_chat.audio.pcm import MODEL_RATE

log = structlog.get_logger(__name__)

EVERY_MS = 500  # new utterance audio between two live transcripts
MAX_S = 20.0  # longer utterances are not transcribed live (the 30 s window costs too much)

Transcribe = Callable[[np.ndarray], Awaitable[str | None]]
OnWords = Callable[[str, str], Awaitable[None]]  # (item_id, text)


@dataclass
class _Early:
    item_id: str
    speech_end_ms: int  # the utterance's last speech frame when it was started
    task: asyncio.Task[str]


class LiveTranscript:
    """At most one live transcription at a time, for the utterance being spoken."""

    def __init__(
        self,
        transcribe: Transcribe,
        on_words: OnWords,
        every_ms: int = EVERY_MS,
        *,
        final: Callable[[np.ndarray], Awaitable[str]] | None = None,
    ):
        self._transcribe, self._on_words = transcribe, on_words
        self._final = final
        self._every = every_ms * MODEL_RATE // 1000
        self._item = ""
        self._done_at = 0  # utterance samples covered by the last live transcript
        self._task: asyncio.Task[None] | None = None
        self._early: _Early | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def heard(self, item_id: str, samples: int, audio: Callable[[], np.ndarray]) -> None:
        """The utterance ``item_id`` has ``samples`` of audio and the user is speaking."""
        if item_id != self._item:
            self._item, self._done_at = item_id, 0
        if self.running or samples - self._done_at < self._every:
            return
        if samples > MAX_S * MODEL_RATE:
            return
        self._done_at = samples
        self._task = asyncio.create_task(self._run(item_id, audio()))

    def quiet(self, item_id: str, speech_end_ms: int, audio: Callable[[], np.ndarray]) -> None:
        """The first silence after speech: start the turn's own transcription now."""
        early = self._early
        if self._final is None or (
            early is not None and (early.item_id, early.speech_end_ms) == (item_id, speech_end_ms)
        ):
            return
        self.drop_early()
        task = asyncio.create_task(self._final(audio()))
        task.add_done_callback(_retrieve)
        self._early = _Early(item_id, speech_end_ms, task)

    def take(self, item_id: str, speech_end_ms: int) -> asyncio.Task[str] | None:
        """The early transcription of this utterance, if nothing was said after it began."""
        early, self._early = self._early, None
        if early is None:
            return None
        if (early.item_id, early.speech_end_ms) == (item_id, speech_end_ms):
            return early.task
        early.task.cancel()
        return None

    def drop_early(self) -> None:
        if self._early is not None:
            self._early.task.cancel()
            self._early = None

    async def _run(self, item_id: str, audio: np.ndarray) -> None:
        try:
            text = await self._transcribe(audio)
            if text and text.strip():
                await self._on_words(item_id, text.strip())
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - best effort: the pause transcribes anyway
            log.warning("live transcript failed", error=str(exc))

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        self.drop_early()


def _retrieve(task: asyncio.Task[str]) -> None:
    """An early transcription nobody took: its failure is not worth a warning."""
    if not task.cancelled():
        task.exception()
