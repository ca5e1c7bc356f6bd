"""The receive loop both websocket dialects share: frames in, and the idle timeout.

A session that receives nothing for ``idle_s`` while its character is silent is closed with
an ``idle_timeout`` error (a call left open in a forgotten tab frees its slot); while a
reply is being made or spoken the silence is the user listening, not idleness.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
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
    """Dispatch frames until the client leaves or the session idles out.

    Quiet time counts from the last frame received or the last moment a reply was in
    progress, checked at least every second: a reply that ends just before a check does
    not let the session close before the user had ``idle_s`` to answer it.
    """
    poll = min(1.0, idle_s / 4)
    quiet_since = time.monotonic()
    try:
        while True:
            try:
                message = await asyncio.wait_for(ws.receive(), poll)
            except TimeoutError:
                now = time.monotonic()
                if on.busy():
                    quiet_since = now
                elif now - quiet_since >= idle_s:
                    await on.idle()
                    with contextlib.suppress(RuntimeError, OSError, WebSocketDisconnect):
                        await ws.close(code=1000, reason="idle_timeout")
                    return
                continue
            quiet_since = time.monotonic()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("text") is not None:
                await on.text(message["text"])
            elif message.get("bytes") is not None:
                await on.binary(message["bytes"])
    except WebSocketDisconnect:
        return
