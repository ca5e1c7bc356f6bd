"""Server events: every event the server sends, as one typed model each, defined here only.

The pipeline and the session build these; a dialect's encoder turns them into wire frames
(``voice_chat.server.encoding`` for the native protocol of ``docs/protocol.md``). Field names
are the native protocol's, so the native encoder is the dataclass as a dict plus ``type``.
Clients (the page, the terminal client, the test client) take the names from
:data:`SERVER_EVENT_TYPES` instead of repeating strings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar


@dataclass(frozen=True)
class ServerEvent:
    TYPE: ClassVar[str] = ""


@dataclass(frozen=True)
class SessionCreated(ServerEvent):
    TYPE: ClassVar[str] = "session.created"
    session: dict[str, Any]


@dataclass(frozen=True)
class SessionUpdated(ServerEvent):
    TYPE: ClassVar[str] = "session.updated"
    session: dict[str, Any]


@dataclass(frozen=True)
class ItemCreated(ServerEvent):
    """A typed user message was added to the conversation."""

    TYPE: ClassVar[str] = "conversation.item.created"
    item: dict[str, Any]


@dataclass(frozen=True)
class SpeechStarted(ServerEvent):
    TYPE: ClassVar[str] = "input_audio_buffer.speech_started"
    audio_start_ms: int
    item_id: str


@dataclass(frozen=True)
class SpeechStopped(ServerEvent):
    TYPE: ClassVar[str] = "input_audio_buffer.speech_stopped"
    audio_end_ms: int
    item_id: str


@dataclass(frozen=True)
class AudioCommitted(ServerEvent):
    TYPE: ClassVar[str] = "input_audio_buffer.committed"
    item_id: str


@dataclass(frozen=True)
class AudioCleared(ServerEvent):
    TYPE: ClassVar[str] = "input_audio_buffer.cleared"


@dataclass(frozen=True)
class TranscriptDelta(ServerEvent):
    """The user's words so far: ``delta`` extends the previous partial, ``text`` is all."""

    TYPE: ClassVar[str] = "conversation.item.input_audio_transcription.delta"
    item_id: str
    delta: str
    text: str


@dataclass(frozen=True)
class TranscriptCompleted(ServerEvent):
    TYPE: ClassVar[str] = "conversation.item.input_audio_transcription.completed"
    item_id: str
    transcript: str


@dataclass(frozen=True)
class ItemTruncated(ServerEvent):
    TYPE: ClassVar[str] = "conversation.item.truncated"
    response_id: str
    audio_end_ms: int
    text: str


@dataclass(frozen=True)
class ResponseRef:
    id: str


@dataclass(frozen=True)
class ResponseCreated(ServerEvent):
    TYPE: ClassVar[str] = "response.created"
    response: ResponseRef


@dataclass(frozen=True)
class TextDelta(ServerEvent):
    TYPE: ClassVar[str] = "response.text.delta"
    response_id: str
    delta: str


@dataclass(frozen=True)
class AudioStarted(ServerEvent):
    """Reply audio follows as binary frames at ``sample_rate``."""

    TYPE: ClassVar[str] = "response.audio.started"
    response_id: str
    sample_rate: int
    encoding: str = "pcm16"


@dataclass(frozen=True)
class AudioDone(ServerEvent):
    TYPE: ClassVar[str] = "response.audio.done"
    response_id: str
    audio_ms: int


@dataclass(frozen=True)
class ResponseResult:
    id: str
    status: str  # "completed" | "cancelled" | "failed"
    text: str
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class ResponseDone(ServerEvent):
    TYPE: ClassVar[str] = "response.done"
    response: ResponseResult


@dataclass(frozen=True)
class ErrorInfo:
    code: str
    message: str
    event_id: str | None = None


@dataclass(frozen=True)
class Error(ServerEvent):
    TYPE: ClassVar[str] = "error"
    error: ErrorInfo


SERVER_EVENTS: tuple[type[ServerEvent], ...] = (
    SessionCreated,
    SessionUpdated,
    ItemCreated,
    SpeechStarted,
    SpeechStopped,
    AudioCommitted,
    AudioCleared,
    TranscriptDelta,
    TranscriptCompleted,
    ItemTruncated,
    ResponseCreated,
    TextDelta,
    AudioStarted,
    AudioDone,
    ResponseDone,
    Error,
)
SERVER_EVENT_TYPES: frozenset[str] = frozenset(cls.TYPE for cls in SERVER_EVENTS)
