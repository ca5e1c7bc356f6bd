"""Per-client limits: websocket sessions per client, and an upload rate limit.

A *client* is its API key when auth is on, else its address (behind a reverse proxy, the
address the proxy forwards). The per-session limits (text events per second, idle timeout)
use :class:`TokenBucket` from the session itself. Every limit is a setting; see the README's
limits table.
"""

from __future__ import annotations

import math

from voice_chat.server.auth import identity_of
from voice_chat.server.buckets import KeyedBuckets, TokenBucket
from voice_chat.server.security import ASGIApp, Receive, Scope, Send, refuse
from voice_chat.settings import Settings


class EventGate:
    """A session's text-event rate limit (``max_events_per_s``, bursts of ``event_burst``).

    An event over the limit is dropped unparsed and answered with a ``rate_limited`` error,
    so every frame still gets an answer; the refusal costs no JSON parsing."""

    def __init__(self, rate: float, burst: int) -> None:
        self.bucket = TokenBucket(rate, float(burst))
        self.message = (
            f"too many events: at most {rate:g} a second, bursts of {burst} "
            "(VOICE_CHAT_MAX_EVENTS_PER_S, VOICE_CHAT_EVENT_BURST); this one was dropped"
        )

    def admit(self) -> str | None:
        """None: go ahead. Otherwise the error message for the dropped event."""
        return None if self.bucket.take() else self.message


def client_of(scope: Scope) -> str:
    identity = identity_of(scope)
    if identity is not None:
        return "key:" + identity.key_id
    client = scope.get("client")
    return "addr:" + (str(client[0]) if client else "unknown")


def is_upload(method: str, path: str) -> bool:
    """Requests that store an upload: card imports and replacements, voice registrations."""
    if method in ("POST", "PUT") and (
        path == "/v1/characters" or path.startswith("/v1/characters/")
    ):
        return True
    return method == "POST" and path.rstrip("/") == "/v1/voices"


class LimitsMiddleware:
    """Refuses a client's websocket past ``max_sessions_per_client`` (429 before accept), and
    its uploads past ``max_uploads_per_min`` (429 with ``Retry-After``)."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.max_sessions = settings.max_sessions_per_client
        self.upload_rate = settings.max_uploads_per_min
        self.uploads = KeyedBuckets(self.upload_rate / 60.0, self.upload_rate)  # a minute's worth
        self.sessions: dict[str, int] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            return await self._websocket(scope, receive, send)
        if scope["type"] == "http" and is_upload(scope.get("method", ""), scope.get("path", "")):
            bucket = self.uploads.get(client_of(scope))
            if not bucket.take():
                wait = math.ceil(bucket.wait_s())
                message = (
                    f"too many uploads: at most {self.upload_rate} a minute per client "
                    f"(VOICE_CHAT_MAX_UPLOADS_PER_MIN); retry in {wait} s"
                )
                retry = [(b"retry-after", str(wait).encode())]
                return await refuse(scope, receive, send, 429, "rate_limited", message, retry)
        await self.app(scope, receive, send)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = client_of(scope)
        held = self.sessions.get(client, 0)
        if held >= self.max_sessions:
            message = (
                f"this client already holds {held} sessions, the limit per client "
                "(VOICE_CHAT_MAX_SESSIONS_PER_CLIENT); close one first"
            )
            return await refuse(scope, receive, send, 429, "too_many_sessions", message)
        self.sessions[client] = held + 1
        try:
            await self.app(scope, receive, send)
        finally:
            left = self.sessions.get(client, 1) - 1
            if left > 0:
                self.sessions[client] = left
            else:
                self.sessions.pop(client, None)
