"""The websocket side of the pipeline's Outbox, and the guard on input audio speed."""

from __future__ import annotations

import asyncio
import time

import structlog
from starlette.websockets import WebSocket, WebSocketDisconnect

from voice_chat.pipeline.events import Error, ErrorInfo, ServerEvent
from voice_chat.server.encoding import dumps

log = structlog.get_logger(__name__)


class WebSocketOutbox:
    """Serialises sends; silently drops them once the socket is gone."""

    def __init__(self, ws: WebSocket) -> None:
        self.ws = ws
        self._lock = asyncio.Lock()
        self.closed = False

    async def _send(self, data: str | bytes) -> None:
        if self.closed:
            return
        async with self._lock:
            try:
                if isinstance(data, str):
                    await self.ws.send_text(data)
                else:
                    await self.ws.send_bytes(data)
            except (WebSocketDisconnect, RuntimeError, OSError):
                self.closed = True

    async def send_text(self, text: str) -> None:
        """A text frame as it is (another dialect's encoder has made it)."""
        await self._send(text)

    async def event(self, event: ServerEvent) -> None:
        await self._send(dumps(event))

    async def audio(self, pcm: bytes) -> None:
        await self._send(pcm)

    async def error(self, code: str, message: str) -> None:
        log.info("client error", code=code, message=message)
        await self.event(Error(ErrorInfo(code, message)))


class AudioRateGuard:
    """Drops input audio that arrives much faster than real time, sustained."""

    def __init__(self, max_speed: float, burst_s: float = 10.0) -> None:
        self.max_speed, self.burst_s = max_speed, burst_s
        self.start = time.monotonic()
        self.audio_s = 0.0
        self._last_warn = 0.0

    def admit(self, seconds: float) -> bool:
        allowed = (time.monotonic() - self.start) * self.max_speed + self.burst_s
        if self.audio_s + seconds > allowed:
            return False
        self.audio_s += seconds
        return True

    def should_warn(self) -> bool:
        now = time.monotonic()
        if now - self._last_warn > 5.0:
            self._last_warn = now
            return True
        return False
