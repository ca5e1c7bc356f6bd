"""Client events of the OpenAI Realtime API (GA), parsed and validated.

Only what the server acts on is modelled; other fields a client sends (tools, tracing, noise
reduction, ...) are accepted and ignored. Every refusal is a :class:`GAError` naming the
offending field (``param``) in the API's dotted form, e.g. ``session.audio.input.format.type``.
See docs/protocol.md ("The OpenAI Realtime dialect").
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError


class GAError(ValueError):
    """A refused client event: ``code``, ``message`` and the offending ``param``."""

    def __init__(
        self,
        code: str,
        message: str,
        param: str | None = None,
        *,
        kind: str = "invalid_request_error",
        event_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.code, self.message, self.param, self.kind = code, message, param, kind
        self.event_id = event_id


def no_item(code: str, item_id: str, event_id: str | None) -> GAError:
    return GAError(code, f"no item with id {item_id[:64]!r}", "item_id", event_id=event_id)


class _M(BaseModel):
    model_config = ConfigDict(extra="ignore")


# --- audio formats and turn detection
class PCMFormat(_M):
    type: Literal["audio/pcm"] = "audio/pcm"
    rate: Literal[24000] = 24000


class PCMUFormat(_M):
    type: Literal["audio/pcmu"]


class PCMAFormat(_M):
    type: Literal["audio/pcma"]


Format = Annotated[PCMFormat | PCMUFormat | PCMAFormat, Field(discriminator="type")]


class Transcription(_M):
    model: str | None = Field(None, max_length=128)
    language: str | None = Field(None, max_length=16)
    prompt: str | None = Field(None, max_length=2000)


class ServerVad(_M):
    type: Literal["server_vad"]
    threshold: float | None = Field(None, gt=0.0, lt=1.0)
    silence_duration_ms: int | None = Field(None, ge=0, le=10000)
    prefix_padding_ms: int | None = Field(None, ge=0, le=10000)
    create_response: bool | None = None
    interrupt_response: bool | None = None
    idle_timeout_ms: int | None = None


class SemanticVad(_M):
    type: Literal["semantic_vad"]
    eagerness: Literal["low", "medium", "high", "auto"] | None = None
    create_response: bool | None = None
    interrupt_response: bool | None = None


TurnDetection = Annotated[ServerVad | SemanticVad, Field(discriminator="type")]


class AudioInput(_M):
    """``turn_detection: null`` turns server VAD off: the client commits and asks for replies."""

    format: Format | None = None
    transcription: Transcription | None = None
    turn_detection: TurnDetection | None = None


class AudioOutput(_M):
    format: Format | None = None
    voice: str | dict[str, Any] | None = None
    speed: float | None = Field(None, ge=0.25, le=1.5)


class Audio(_M):
    input: AudioInput | None = None
    output: AudioOutput | None = None


Modalities = Annotated[list[Literal["text", "audio"]], Field(min_length=1, max_length=1)]


class RealtimeSession(_M):
    type: Literal["realtime"] = "realtime"
    model: str | None = Field(None, max_length=128)
    instructions: str | None = Field(None, max_length=20000)
    output_modalities: Modalities | None = None
    audio: Audio | None = None
    max_output_tokens: int | Literal["inf"] | None = None


class TranscriptionAudio(_M):
    input: AudioInput | None = None


class TranscriptionSession(_M):
    type: Literal["transcription"]
    audio: TranscriptionAudio | None = None


class _Event(_M):
    event_id: str | None = Field(None, max_length=256)


class SessionUpdate(_Event):
    type: Literal["session.update"]
    session: Annotated[RealtimeSession | TranscriptionSession, Field(discriminator="type")]


class Append(_Event):
    type: Literal["input_audio_buffer.append"]
    audio: str


class Commit(_Event):
    type: Literal["input_audio_buffer.commit"]


class Clear(_Event):
    type: Literal["input_audio_buffer.clear"]


class OutputClear(_Event):
    type: Literal["output_audio_buffer.clear"]


# --- conversation items
class InputText(_M):
    type: Literal["input_text", "text"]
    text: str


class InputAudio(_M):
    type: Literal["input_audio"]
    audio: str | None = None
    transcript: str | None = None


class OutputText(_M):
    type: Literal["output_text"]
    text: str


class OutputAudio(_M):
    type: Literal["output_audio", "audio"]
    transcript: str | None = None


Content = Annotated[InputText | InputAudio | OutputText | OutputAudio, Field(discriminator="type")]


class MessageItem(_M):
    type: Literal["message"] = "message"
    id: str | None = Field(None, min_length=1, max_length=64)
    role: Literal["user", "assistant", "system"]
    content: list[Content] = Field(min_length=1, max_length=16)


class ItemCreate(_Event):
    type: Literal["conversation.item.create"]
    item: MessageItem
    previous_item_id: str | None = None


class ItemRetrieve(_Event):
    type: Literal["conversation.item.retrieve"]
    item_id: str = Field(min_length=1, max_length=64)


class ItemDelete(_Event):
    type: Literal["conversation.item.delete"]
    item_id: str = Field(min_length=1, max_length=64)


class ItemTruncate(_Event):
    type: Literal["conversation.item.truncate"]
    item_id: str = Field(min_length=1, max_length=64)
    content_index: int = Field(0, ge=0, le=16)
    audio_end_ms: int = Field(ge=0, le=24 * 3600 * 1000)


class ResponseParams(_M):
    instructions: str | None = Field(None, max_length=20000)
    output_modalities: Modalities | None = None
    conversation: str | None = None
    max_output_tokens: int | Literal["inf"] | None = None


class ResponseCreate(_Event):
    type: Literal["response.create"]
    response: ResponseParams | None = None


class ResponseCancel(_Event):
    type: Literal["response.cancel"]
    response_id: str | None = Field(None, max_length=64)


ClientEvent = Annotated[
    SessionUpdate
    | Append
    | Commit
    | Clear
    | OutputClear
    | ItemCreate
    | ItemRetrieve
    | ItemDelete
    | ItemTruncate
    | ResponseCreate
    | ResponseCancel,
    Field(discriminator="type"),
]
CLIENT_EVENT_TYPES: frozenset[str] = frozenset(
    {
        "session.update",
        "input_audio_buffer.append",
        "input_audio_buffer.commit",
        "input_audio_buffer.clear",
        "output_audio_buffer.clear",
        "conversation.item.create",
        "conversation.item.retrieve",
        "conversation.item.delete",
        "conversation.item.truncate",
        "response.create",
        "response.cancel",
    }
)
_adapter: TypeAdapter[Any] = TypeAdapter(ClientEvent)
# Item kinds of the API that this server does not take (no tools).
_KNOWN_ITEM_TYPES = {"message", "function_call", "function_call_output", "mcp_call"}


def parse(text: str) -> Any:
    """One text frame to a client event, or :class:`GAError` with code, message and param."""
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise GAError("invalid_json", f"the frame is not valid JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise GAError("invalid_json", "a client event must be a JSON object")
    event_id = raw.get("event_id") if isinstance(raw.get("event_id"), str) else None
    kind = raw.get("type")
    if not isinstance(kind, str):
        raise GAError(
            "invalid_event", "every event needs a string 'type'", "type", event_id=event_id
        )
    if kind not in CLIENT_EVENT_TYPES:
        raise GAError(
            "unknown_event", f"unknown client event type {kind[:64]!r}", "type", event_id=event_id
        )
    if kind == "conversation.item.create":
        item = raw.get("item")
        item_type = item.get("type", "message") if isinstance(item, dict) else None
        if isinstance(item_type, str) and item_type != "message":
            what = "not supported here" if item_type in _KNOWN_ITEM_TYPES else "unknown"
            raise GAError(
                "unknown_item",
                f"item type {item_type[:64]!r} is {what}: only 'message' items are taken",
                "item.type",
                event_id=event_id,
            )
    if kind == "session.update":
        session = raw.get("session")
        if isinstance(session, dict) and "type" not in session:
            session["type"] = "realtime"  # beta clients leave it out
    try:
        return _adapter.validate_python(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        param = _param(raw, first["loc"])
        where = f"{param}: " if param else ""
        raise GAError(
            "invalid_event", f"{kind}: {where}{first['msg']}", param, event_id=event_id
        ) from exc


def _param(raw: dict[str, Any], loc: tuple[int | str, ...]) -> str | None:
    """A pydantic error location as the API's dotted ``param``, without discriminator tags."""
    parts: list[str] = []
    node: Any = raw
    for part in loc:
        if isinstance(node, dict) and part not in node and part == node.get("type", part):
            if isinstance(part, str) and part != loc[-1]:
                continue  # the tag pydantic adds for a discriminated union
        parts.append(str(part))
        if isinstance(node, dict):
            node = node.get(part) if isinstance(part, str) else None
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        else:
            node = None
    if parts and parts[0] in CLIENT_EVENT_TYPES:
        parts = parts[1:]
    return ".".join(parts) or None
