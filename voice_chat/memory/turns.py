"""One turn of a conversation, as sessions and the pipeline hold it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Turn:
    id: int
    role: str  # "user" | "assistant"
    text: str
