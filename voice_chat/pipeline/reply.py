"""The state of one character reply: what was generated, what was sent, what was heard.

A reply moves through :class:`ReplyState` in order, and ends exactly once (:meth:`Reply.finish`).
Its three tasks talk through typed items on ``outq`` (see :data:`Item`).
"""

from __future__ import annotations

import asyncio
import enum
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import InitVar, dataclass, field

import numpy as np
import structlog

from voice_chat.pipeline.conversation import Turn
from voice_chat.pipeline.events import ResponseDone, ResponseResult

log = structlog.get_logger(__name__)


class ReplyState(enum.IntEnum):
    SPECULATIVE = 0  # work runs during a pause; nothing is sent
    LIVE = 1  # the turn is over: the gate is open
    ANNOUNCED = 2  # response.created went out
    SPEAKING = 3  # reply audio went out
    FINISHED = 4  # completed, cancelled or failed: nothing more is sent


# --- what the think and speak tasks hand to the emit task, in order
@dataclass(frozen=True)
class Transcript:
    text: str


@dataclass(frozen=True)
class UserTurn:
    text: str


@dataclass(frozen=True)
class Announce:
    pass


@dataclass(frozen=True)
class Text:
    delta: str


@dataclass(frozen=True)
class AudioStart:
    sample_rate: int


@dataclass(frozen=True)
class Audio:
    pcm: bytes


@dataclass(frozen=True)
class End:
    pass


Item = Transcript | UserTurn | Announce | Text | AudioStart | Audio | End


def new_item_id() -> str:
    return "item_" + uuid.uuid4().hex[:12]


@dataclass
class Segment:
    text: str
    start_ms: float
    end_ms: float


@dataclass(eq=False)
class Reply:
    speech_end: float  # wall clock (monotonic) when the user stopped speaking
    voice_id: str
    output_rate: int | None
    live: InitVar[bool]  # False while speculative: work runs, nothing is sent
    audio: np.ndarray | None = None  # user audio to transcribe
    transcript: asyncio.Task[str] | None = None  # ... whose transcription already runs
    text: str | None = None  # or typed user text
    fixed: str | None = None  # or a fixed reply (the greeting), no LLM
    respond: bool = True  # False: transcribe and store the user's turn, no reply
    speak: bool = True  # False: text only, no speech synthesis
    instructions: str | None = None  # this reply's own instructions (else the session's)
    item_id: str = field(default_factory=new_item_id)  # the user item this reply answers
    id: str = field(default_factory=lambda: "resp_" + uuid.uuid4().hex[:12])
    task: asyncio.Task[None] | None = None
    state: ReplyState = ReplyState.SPECULATIVE
    stop_generating: threading.Event = field(default_factory=threading.Event)  # LLM thread
    gate: asyncio.Event = field(default_factory=asyncio.Event)
    playing: asyncio.Event = field(default_factory=asyncio.Event)  # clear: audio held
    outq: asyncio.Queue[Item] = field(default_factory=asyncio.Queue)
    user_turn: int | None = None
    assistant_turn: int | None = None
    chunks_out: int = 0  # text chunks handed to TTS
    sample_rate: int = 0
    audio_sent_ms: float = 0.0
    audio_queued_ms: float = 0.0
    audio_wall_start: float = 0.0
    segments: list[Segment] = field(default_factory=list)
    next_prompt: list[Turn] | None = None  # pending turns to pre-fill once the speech is made
    metrics: dict[str, float] = field(default_factory=dict)

    def __post_init__(self, live: bool) -> None:
        self.playing.set()
        if live:
            self.go_live()

    @property
    def is_live(self) -> bool:
        return self.state >= ReplyState.LIVE

    @property
    def announced(self) -> bool:
        return ReplyState.ANNOUNCED <= self.state < ReplyState.FINISHED

    @property
    def audio_started(self) -> bool:
        return self.audio_wall_start > 0

    @property
    def finished(self) -> bool:
        return self.state is ReplyState.FINISHED

    def advance(self, state: ReplyState) -> None:
        """Move forward to ``state`` (never back; a finished reply stays finished)."""
        if self.state < state:
            self.state = state

    def go_live(self) -> None:
        self.advance(ReplyState.LIVE)
        self.gate.set()

    def finish(self) -> None:
        self.state = ReplyState.FINISHED
        self.stop_generating.set()

    def mark(self, name: str) -> None:
        """Record a timing in ms since the end of the user's speech (first time only)."""
        self.metrics.setdefault(name, round((time.monotonic() - self.speech_end) * 1000, 1))

    @property
    def full_text(self) -> str:
        return " ".join(s.text for s in self.segments)

    def played_ms(self) -> float:
        """Best server-side estimate of how much audio the user heard (sent and due)."""
        if not self.audio_started:
            return 0.0
        elapsed = (time.monotonic() - self.audio_wall_start) * 1000
        return min(self.audio_sent_ms, elapsed)

    def heard_text(self, audio_ms: float) -> str:
        """The words spoken in the first ``audio_ms`` of the reply audio."""
        words: list[str] = []
        for seg in self.segments:
            if audio_ms >= seg.end_ms:
                words.extend(seg.text.split())
            elif audio_ms > seg.start_ms:
                seg_words = seg.text.split()
                share = (audio_ms - seg.start_ms) / max(1.0, seg.end_ms - seg.start_ms)
                words.extend(seg_words[: int(len(seg_words) * share)])
                break
            else:
                break
        return " ".join(words)

    def done_event(self, status: str) -> ResponseDone:
        return ResponseDone(ResponseResult(self.id, status, self.full_text, dict(self.metrics)))


def failure_cause(exc: BaseException) -> BaseException:
    """The first real error inside a task group's exception group."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


async def quietly(job: Callable[[], Awaitable[None]]) -> None:
    """Run ``job()``. The coroutine is made inside the task: a task cancelled before it starts
    (a session closed at once) leaves no coroutine that was never awaited."""
    try:
        await job()
    except Exception as exc:  # noqa: BLE001 - an optimisation; never fails a session
        log.warning("LLM prefill failed", error=str(exc))
