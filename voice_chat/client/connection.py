"""The websocket connection to ``/v1/realtime``: URL building, event builders, readable errors."""

from __future__ import annotations

import asyncio
import json
import random
import socket
import time
from collections.abc import Iterator
from typing import Any, TextIO
from urllib.parse import urlencode, urlsplit, urlunsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from voice_chat.server.event_names import CLIENT

Event = dict[str, Any]
Message = Event | bytes

REALTIME_PATH = "/v1/realtime"
# Close codes after which reconnecting cannot help (policy: e.g. unknown character).
FATAL_CLOSE_CODES = {1008}


class ConnectError(ConnectionError):
    """Could not connect, or the connection was lost. ``str()`` is a one-line message."""

    def __init__(
        self, message: str, *, retryable: bool = True, close_code: int | None = None
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.close_code = close_code


def build_url(
    server: str,
    character: str | None = None,
    user: str | None = None,
    turn_detection: str | None = None,
    **params: str | int | None,
) -> str:
    """``ws://host:port`` (or ``http://``, or bare ``host:port``) -> the realtime URL with query.

    ``params``: any other query parameter (``conversation``, ``input_sample_rate``, ...).
    """
    if "://" not in server:
        server = "ws://" + server
    parts = urlsplit(server)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    if scheme not in ("ws", "wss"):
        raise ConnectError(f"invalid server URL {server!r}: use ws://HOST:PORT", retryable=False)
    path = parts.path.rstrip("/")
    if not path.endswith(REALTIME_PATH):
        path += REALTIME_PATH
    query = dict(item.split("=", 1) for item in parts.query.split("&") if "=" in item)
    for key, value in (
        ("character", character),
        ("user", user),
        ("turn_detection", turn_detection),
    ):
        if value:
            query[key] = value
    query.update({k: str(v) for k, v in params.items() if v is not None})
    return urlunsplit((scheme, parts.netloc, path, urlencode(query), ""))


# --- client events (docs/protocol.md, "Client to server events")


def session_update(
    turn_detection: str | None = None,
    input_rate: int | None = None,
    user: str | None = None,
    character: str | None = None,
) -> Event:
    session: dict[str, Any] = {}
    if turn_detection:
        session["turn_detection"] = {"type": turn_detection}
    if input_rate:
        session["input_audio_format"] = {"sample_rate": input_rate}
    if user:
        session["user"] = {"id": user}
    if character:
        session["character"] = character
    return {"type": CLIENT["SESSION_UPDATE"], "session": session}


def commit() -> Event:
    return {"type": CLIENT["INPUT_AUDIO_BUFFER_COMMIT"]}


def clear() -> Event:
    return {"type": CLIENT["INPUT_AUDIO_BUFFER_CLEAR"]}


def text_message(text: str) -> Event:
    return {
        "type": CLIENT["CONVERSATION_ITEM_CREATE"],
        "item": {"type": "message", "role": "user", "text": text},
    }


def cancel(response_id: str | None) -> Event:
    event: Event = {"type": CLIENT["RESPONSE_CANCEL"]}
    if response_id:
        event["response_id"] = response_id
    return event


def truncate(response_id: str, audio_end_ms: float) -> Event:
    return {
        "type": CLIENT["CONVERSATION_ITEM_TRUNCATE"],
        "response_id": response_id,
        "audio_end_ms": int(audio_end_ms),
    }


def describe_error(event: Event) -> str:
    """A server ``error`` event as one readable line."""
    err = event.get("error") or {}
    code = err.get("code", "error") if isinstance(err, dict) else "error"
    message = err.get("message", "") if isinstance(err, dict) else str(err)
    return f"server error [{code}]: {message}".rstrip(": ")


def backoff_delays(first: float = 0.5, cap: float = 30.0) -> Iterator[float]:
    """Exponential backoff with jitter: 0.5, 1, 2, 4 ... capped at ``cap`` seconds."""
    delay = first
    while True:
        yield delay * random.uniform(0.8, 1.2)
        delay = min(cap, delay * 2)


class Connection:
    """One websocket to the server. Text frames are parsed to dicts, binary frames stay bytes."""

    def __init__(self, ws: ClientConnection, url: str, log: TextIO | None = None) -> None:
        self._ws = ws
        self.url = url
        self._log = log
        self._t0 = time.monotonic()

    @classmethod
    async def open(
        cls,
        url: str,
        open_timeout: float = 10.0,
        log: TextIO | None = None,
        api_key: str | None = None,
        headers: dict[str, str] | None = None,
        max_size: int | None = 2**24,
    ) -> Connection:
        """``api_key``: sent as ``Authorization: Bearer`` (servers with auth on).

        ``headers``: more handshake headers; ``max_size``: the largest frame accepted.
        """
        where = url.split("?", 1)[0].removesuffix(REALTIME_PATH)
        headers = dict(headers or {})
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        try:
            ws = await asyncio.wait_for(
                connect(
                    url,
                    open_timeout=open_timeout,
                    proxy=None,
                    compression=None,
                    max_size=max_size,
                    additional_headers=headers or None,
                ),
                open_timeout + 1,
            )
        except ConnectionRefusedError:
            raise ConnectError(
                f"cannot connect to {where}: connection refused (is `voice-chat serve` running?)"
            ) from None
        except socket.gaierror as exc:
            raise ConnectError(
                f"cannot connect to {where}: unknown host ({exc.strerror})"
            ) from None
        except TimeoutError:
            raise ConnectError(f"cannot connect to {where}: timed out") from None
        except InvalidStatus as exc:
            status = exc.response.status_code
            body = (
                exc.response.body.decode("utf-8", "replace").strip()[:200]
                if exc.response.body
                else ""
            )
            raise ConnectError(
                f"server at {where} refused the websocket: HTTP {status}"
                + (f" ({body})" if body else ""),
                retryable=status >= 500 or status == 429,
            ) from None
        except InvalidURI as exc:
            raise ConnectError(f"invalid server URL: {exc}", retryable=False) from None
        except (InvalidHandshake, OSError) as exc:
            raise ConnectError(f"cannot connect to {where}: {exc}") from None
        return cls(ws, url, log)

    @property
    def websocket(self) -> ClientConnection:
        """The websocket itself (a scripted client reads and writes raw frames)."""
        return self._ws

    def _record(self, direction: str, payload: Message) -> None:
        if self._log is None:
            return
        stamp = round(time.monotonic() - self._t0, 3)
        if isinstance(payload, bytes):
            entry: Event = {"t": stamp, "dir": direction, "audio_bytes": len(payload)}
        else:
            entry = {"t": stamp, "dir": direction, "event": payload}
        self._log.write(json.dumps(entry) + "\n")
        self._log.flush()

    async def send_event(self, event: Event) -> None:
        self._record("out", event)
        try:
            await self._ws.send(json.dumps(event))
        except ConnectionClosed as exc:
            raise closed_error(exc) from None

    async def send_audio(self, pcm16: bytes) -> None:
        if self._log is not None:
            self._record("out", pcm16)
        try:
            await self._ws.send(pcm16)
        except ConnectionClosed as exc:
            raise closed_error(exc) from None

    async def recv(self) -> Message:
        try:
            frame = await self._ws.recv()
        except ConnectionClosed as exc:
            raise closed_error(exc) from None
        if isinstance(frame, bytes):
            if self._log is not None:
                self._record("in", frame)
            return frame
        try:
            event = json.loads(frame)
        except ValueError:
            event = {
                "type": "error",
                "error": {"code": "invalid_json", "message": "server sent bad JSON"},
            }
        if not isinstance(event, dict):
            event = {
                "type": "error",
                "error": {"code": "invalid_json", "message": "server sent a non-object"},
            }
        self._record("in", event)
        return event

    async def close(self) -> None:
        try:
            await asyncio.wait_for(self._ws.close(), 2.0)
        except (TimeoutError, ConnectionClosed, OSError):
            pass


def closed_error(exc: ConnectionClosed) -> ConnectError:
    """A readable error for a connection that was closed or dropped."""
    rcvd = exc.rcvd
    if rcvd is None:
        return ConnectError("connection to the server was lost")
    reason = f": {rcvd.reason}" if rcvd.reason else ""
    if rcvd.code == 1013:
        return ConnectError(f"server is busy (too many sessions){reason}", close_code=rcvd.code)
    if rcvd.code in FATAL_CLOSE_CODES:
        return ConnectError(
            f"server closed the session{reason}", retryable=False, close_code=rcvd.code
        )
    if rcvd.code == 1011:
        return ConnectError(
            f"server closed the session after an internal error{reason}", close_code=rcvd.code
        )
    return ConnectError(
        f"server closed the connection (code {rcvd.code}){reason}", close_code=rcvd.code
    )
