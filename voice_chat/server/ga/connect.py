"""How ``/v1/realtime`` recognises an OpenAI Realtime client, and its refusals.

A connection speaks the GA dialect when its URL has a ``model`` query parameter (the SDK's
``connect(model=...)`` and Pipecat send ``?model=``) or ``intent=transcription``; otherwise it
speaks the native protocol (``?character=``). The model names the character. The SDK's
``Authorization: Bearer`` header is accepted as it is sent.
"""

from __future__ import annotations

import json

from starlette.websockets import WebSocket

from voice_chat.server.ga.items import new_id


def wants_ga(query: dict[str, str]) -> bool:
    return "model" in query or query.get("intent") == "transcription"


async def refuse(
    ws: WebSocket, code: str, message: str, close_code: int, param: str | None = None
) -> None:
    """An ``error`` in the API's shape, then close: the session cannot start."""
    kind = "server_error" if close_code == 1013 else "invalid_request_error"
    error = {"type": kind, "code": code, "message": message, "param": param, "event_id": None}
    body = {"type": "error", "event_id": new_id("event"), "error": error}
    await ws.send_text(json.dumps(body))
    await ws.close(code=close_code, reason=code)
