"""The conversation items of a GA session, as the API shows them, in order.

The pipeline's conversation holds turns (role, text); clients of the API see items with ids,
content parts and a status. This keeps the items of one session (the newest ``limit``) so that
``conversation.item.retrieve``, ``.truncate`` and ``.delete`` can find them, and so that every
``previous_item_id`` is right.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from typing import Any


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:20]}"


def user_item(
    item_id: str,
    *,
    text: str | None = None,
    transcript: str | None = None,
    status: str = "completed",
) -> dict[str, Any]:
    if text is not None:
        content: dict[str, Any] = {"type": "input_text", "text": text}
    else:
        content = {"type": "input_audio", "transcript": transcript}
    return {
        "id": item_id,
        "object": "realtime.item",
        "type": "message",
        "status": status,
        "role": "user",
        "content": [content],
    }


def assistant_item(
    item_id: str, *, audio: bool, text: str = "", status: str = "in_progress"
) -> dict[str, Any]:
    part = (
        {"type": "output_audio", "transcript": text}
        if audio
        else {"type": "output_text", "text": text}
    )
    return {
        "id": item_id,
        "object": "realtime.item",
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": [part] if text or status != "in_progress" else [],
    }


def system_item(item_id: str, text: str) -> dict[str, Any]:
    return {
        "id": item_id,
        "object": "realtime.item",
        "type": "message",
        "status": "completed",
        "role": "system",
        "content": [{"type": "input_text", "text": text}],
    }


def item_text(item: dict[str, Any]) -> str:
    parts = item.get("content") or []
    return " ".join(
        str(p.get("text") or p.get("transcript") or "") for p in parts if isinstance(p, dict)
    ).strip()


class Items:
    """item id -> item (the API's JSON shape), oldest first; the response of assistant items."""

    def __init__(self, limit: int = 512) -> None:
        self.limit = limit
        self._items: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self.response_of: dict[str, str] = {}  # assistant item id -> response id
        self.item_of: dict[str, str] = {}  # response id -> assistant item id
        self.turn_of: dict[str, int] = {}  # item id -> turn id in the pipeline's conversation

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._items

    def get(self, item_id: str) -> dict[str, Any] | None:
        return self._items.get(item_id)

    def last_id(self) -> str | None:
        return next(reversed(self._items), None)

    def put(self, item: dict[str, Any]) -> str | None:
        """Add or replace an item; returns the id of the item before it (new items: the last)."""
        item_id = item["id"]
        if item_id in self._items:
            keys = list(self._items)
            index = keys.index(item_id)
            self._items[item_id] = item
            return keys[index - 1] if index else None
        previous = self.last_id()
        self._items[item_id] = item
        while len(self._items) > self.limit:
            old, _ = self._items.popitem(last=False)
            self.turn_of.pop(old, None)
            response = self.response_of.pop(old, None)
            if response is not None:
                self.item_of.pop(response, None)
        return previous

    def remove(self, item_id: str) -> dict[str, Any] | None:
        self.turn_of.pop(item_id, None)
        response = self.response_of.pop(item_id, None)
        if response is not None:
            self.item_of.pop(response, None)
        return self._items.pop(item_id, None)
