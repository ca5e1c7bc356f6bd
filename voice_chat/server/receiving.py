"""The receive loop both websocket dialects share: frames in, and the idle timeout.

A session that receives nothing for ``idle_s`` while its character is silent is closed with
an ``idle_timeout`` error (a call left open in a forgotten tab frees its slot); while a
reply is being made or spoken the silence is the user listening, not idleness.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from starlette.websockets import WebSocket, WebSocketDisconnect


@dataclass(frozen=True)
class Handlers:
    text: Callable[[str], Awaitable[None]]
    binary: Callable[[bytes], Awaitable[None]]
    busy: Callable[[], bool]  # a reply is in progress: not idle
    idle: Callable[[], Awaitable[None]]  # say why the session is closing (then it is closed)


async def receive_until_closed(ws: WebSocket, idle_s: float, on: Handlers) -> None:
    """Dispatch frames until the client leaves or the session idles out."""
    try:
        while True:
            try:
                message = await asyncio.wait_for(ws.receive(), idle_s)
            except TimeoutError:
                if on.busy():
                    continue
                await on.idle()
                with contextlib.suppress(RuntimeError, OSError, WebSocketDisconnect):
                    await ws.close(code=1000, reason="idle_timeout")
                return
            if message["type"] == "websocket.disconnect":
                return
            if message.get("text") is not None:
                await on.text(message["text"])
            elif message.get("bytes") is not None:
                await on.binary(message["bytes"])
    except WebSocketDisconnect:
        return
