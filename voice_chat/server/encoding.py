"""The native dialect's encoder: a typed server event to its JSON frame (docs/protocol.md)."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from voice_chat.pipeline.events import Error, ErrorInfo, ServerEvent


def encode(event: ServerEvent) -> dict[str, Any]:
    """``{"type": ..., **fields}``; optional fields that are ``None`` are left out."""
    body = dataclasses.asdict(event)
    if isinstance(event, Error) and event.error.event_id is None:
        body["error"].pop("event_id")
    return {"type": event.TYPE, **body}


def dumps(event: ServerEvent) -> str:
    return json.dumps(encode(event), ensure_ascii=False)


def error_event(code: str, message: str, event_id: str | None = None) -> dict[str, Any]:
    return encode(Error(ErrorInfo(code, message, event_id)))
