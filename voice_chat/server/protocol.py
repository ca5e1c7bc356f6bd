"""Client events of the native dialect: parsing and validation. See docs/protocol.md.

Server events are typed in :mod:`voice_chat.pipeline.events`.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from voice_chat.audio.pcm import MAX_RATE, MIN_RATE
from voice_chat.errors import VoiceChatError


class ProtocolError(VoiceChatError, ValueError):
    """A client event that cannot be used; the session answers it with an ``error`` event."""


class _Event(BaseModel):
    model_config = ConfigDict(extra="ignore")
    event_id: str | None = None


class AudioFormat(BaseModel):
    model_config = ConfigDict(extra="ignore")
    encoding: Literal["pcm16"] = "pcm16"
    sample_rate: int = Field(ge=MIN_RATE, le=MAX_RATE)


class TurnDetection(BaseModel):
    """``server_vad``: a fixed silence ends a turn; ``semantic_vad``: the silence depends on
    whether the words and the sound say the user has finished (``eagerness``, the cap
    ``max_wait_ms``); ``manual``: the client commits."""

    model_config = ConfigDict(extra="ignore")
    type: Literal["server_vad", "semantic_vad", "manual"] = "server_vad"
    silence_duration_ms: int | None = Field(None, ge=100, le=5000)
    threshold: float | None = Field(None, gt=0.0, lt=1.0)
    eagerness: Literal["low", "medium", "high", "auto"] | None = None
    max_wait_ms: int | None = Field(None, ge=500, le=10000)


class UserInfo(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: str | None = Field(None, min_length=1, max_length=128, pattern=r"^[\w.@-]+$")
    name: str | None = Field(None, min_length=1, max_length=64)


class SessionConfig(BaseModel):
    model_config = ConfigDict(extra="ignore")
    character: str | None = Field(None, min_length=1, max_length=64)
    input_audio_format: AudioFormat | None = None
    output_audio_format: AudioFormat | None = None
    turn_detection: TurnDetection | None = None
    user: UserInfo | None = None


class SessionUpdate(_Event):
    type: Literal["session.update"]
    session: SessionConfig


class Commit(_Event):
    type: Literal["input_audio_buffer.commit"]


class Clear(_Event):
    type: Literal["input_audio_buffer.clear"]


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: Literal["input_text", "text"] = "input_text"
    text: str


class Item(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: Literal["message"] = "message"
    role: Literal["user"] = "user"
    text: str | None = None
    content: list[ContentPart] | None = Field(None, max_length=16)

    def full_text(self) -> str:
        if self.text is not None:
            return self.text
        return " ".join(part.text for part in self.content or [])


class ItemCreate(_Event):
    type: Literal["conversation.item.create"]
    item: Item


class ResponseCancel(_Event):
    type: Literal["response.cancel"]
    response_id: str | None = None


class Regenerate(_Event):
    """Say the last reply again, made anew (the history keeps only the new one)."""

    type: Literal["response.regenerate"]


class Truncate(_Event):
    type: Literal["conversation.item.truncate"]
    response_id: str = Field(min_length=1, max_length=64)
    audio_end_ms: int = Field(ge=0, le=24 * 3600 * 1000)


ClientEvent = Annotated[
    SessionUpdate | Commit | Clear | ItemCreate | ResponseCancel | Regenerate | Truncate,
    Field(discriminator="type"),
]
_adapter: TypeAdapter[Any] = TypeAdapter(ClientEvent)
EVENT_TYPES = {
    "session.update",
    "input_audio_buffer.commit",
    "input_audio_buffer.clear",
    "conversation.item.create",
    "response.cancel",
    "response.regenerate",
    "conversation.item.truncate",
}


def parse_client_event(text: str) -> Any:
    """Validate one text frame; raise :class:`ProtocolError` with a code and a clear message."""
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise ProtocolError("invalid_json", f"text frame is not valid JSON: {exc}") from exc
    except RecursionError:  # e.g. "[" * 60000: the parser gives up before the depth is read
        raise ProtocolError("invalid_json", "text frame is nested too deeply") from None
    if not isinstance(raw, dict):
        raise ProtocolError("invalid_json", "a text frame must hold a JSON object")
    kind = raw.get("type")
    if not isinstance(kind, str):
        raise ProtocolError("invalid_event", "every event needs a string field 'type'")
    if kind not in EVENT_TYPES:
        raise ProtocolError("unknown_event", f"unknown event type {kind[:64]!r}")
    try:
        return _adapter.validate_python(raw)
    except RecursionError:
        raise ProtocolError("invalid_event", f"{kind}: the event is nested too deeply") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"][1:]) or "event"
        raise ProtocolError("invalid_event", f"{kind}: {where}: {first['msg']}") from exc
