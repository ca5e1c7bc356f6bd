"""The state of one character reply: what was generated, what was sent, what was heard."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np


class Outbox(Protocol):
    """How the pipeline talks to its transport (a websocket, or a test)."""

    async def event(self, payload: dict[str, Any]) -> None: ...
    async def audio(self, pcm: bytes) -> None: ...
    async def error(self, code: str, message: str) -> None: ...


END = object()


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
    live: bool  # False while speculative: work runs, nothing is sent
    audio: np.ndarray | None = None  # user audio to transcribe
    text: str | None = None  # or typed user text
    fixed: str | None = None  # or a fixed reply (the greeting), no LLM
    item_id: str = field(default_factory=new_item_id)  # the user item this reply answers
    id: str = field(default_factory=lambda: "resp_" + uuid.uuid4().hex[:12])
    task: asyncio.Task[None] | None = None
    cancelled: threading.Event = field(default_factory=threading.Event)
    gate: asyncio.Event = field(default_factory=asyncio.Event)
    outq: asyncio.Queue[Any] = field(default_factory=asyncio.Queue)
    user_turn: int | None = None
    assistant_turn: int | None = None
    announced: bool = False
    audio_started: bool = False
    finished: bool = False
    text_out: bool = False
    sample_rate: int = 0
    audio_sent_ms: float = 0.0
    audio_queued_ms: float = 0.0
    audio_wall_start: float = 0.0
    segments: list[Segment] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.live:
            self.gate.set()

    @property
    def is_live(self) -> bool:
        return self.live

    def go_live(self) -> None:
        self.live = True
        self.gate.set()

    def stop(self) -> None:
        self.cancelled.set()

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

    def done_event(self, status: str) -> dict[str, Any]:
        return {
            "type": "response.done",
            "response": {
                "id": self.id,
                "status": status,
                "text": self.full_text,
                "metrics": dict(self.metrics),
            },
        }
