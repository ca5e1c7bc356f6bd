"""TCP-level limits that uvicorn does not have: connections per client, in total, and a
deadline for a connection to send its first request.

uvicorn only times out a keep-alive connection *after* a response, so a socket that connects
and sends nothing (or dribbles half a request line) holds a file descriptor for ever: enough
of them and the server cannot accept anyone. :func:`http_protocol` returns uvicorn's own HTTP
protocol class with three checks added: a connection is closed when it has not sent a whole
request head within ``header_timeout_s``; a new connection is closed at once past
``max_connections`` in total or ``max_connections_per_client`` from one address.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import structlog

log = structlog.get_logger(__name__)


def http_protocol(
    max_connections: int, max_per_client: int, header_timeout_s: float
) -> type[asyncio.Protocol]:
    """A subclass of uvicorn's HTTP protocol (httptools or h11) with the limits above."""
    from uvicorn.protocols.http.auto import AutoHTTPProtocol

    per_client: Counter[str] = Counter()
    base: Any = AutoHTTPProtocol

    class LimitedHTTPProtocol(base):  # type: ignore[misc, valid-type]
        _deadline: asyncio.TimerHandle | None = None
        _counted: str | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            address = str(self.client[0]) if self.client else "unknown"
            if len(self.connections) > max_connections or per_client[address] >= max_per_client:
                log.warning(
                    "connection refused: too many connections",
                    client=address,
                    total=len(self.connections),
                    from_client=per_client[address],
                )
                transport.abort()
                return
            per_client[address] += 1
            self._counted = address
            self._deadline = self.loop.call_later(header_timeout_s, self._head_timeout)

        def _head_timeout(self) -> None:
            self._deadline = None
            # Still ours (not upgraded to a websocket) and no request head parsed yet.
            if self.transport.get_protocol() is self and self.cycle is None:
                self.transport.close()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self.transport.get_protocol() is not self:  # upgraded to a websocket
                self._release()  # (sessions per client are limited in server/limits.py)
            elif self._deadline is not None and self.cycle is not None:
                self._deadline.cancel()
                self._deadline = None

        def _release(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None
            if self._counted is not None:
                per_client[self._counted] -= 1
                if per_client[self._counted] <= 0:
                    del per_client[self._counted]
                self._counted = None

        def connection_lost(self, exc: Exception | None) -> None:
            self._release()
            super().connection_lost(exc)

    return LimitedHTTPProtocol
