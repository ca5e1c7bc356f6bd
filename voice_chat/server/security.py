"""Host and Origin checks: an ASGI middleware in front of every route and the websocket.

* **Host.** A request whose ``Host`` header is not one of the server's own names gets 421.
  This is what stops DNS rebinding: a page on ``evil.example`` that re-points its name at
  127.0.0.1 still sends ``Host: evil.example:8000``.
* **Origin.** A browser names the page that made a request in ``Origin``. A state-changing
  request (POST, PUT, PATCH, DELETE) or a websocket handshake from a page of another origin,
  or from an opaque one (``null``: sandboxed frames, ``file:``), is refused (403) whatever its
  content type, so "simple" cross-site requests cannot change anything. Requests without an
  ``Origin`` (the CLI, SDKs, curl) pass: only browsers send it, and they always do for these.

Allowed: the loopback names and addresses on the server's port, the address it is bound to
(every local name when it is bound to all interfaces), the request's own origin (the page the
server itself served), and whatever ``VOICE_CHAT_ALLOWED_HOSTS`` / ``VOICE_CHAT_ALLOWED_ORIGINS``
add. CORS stays closed unless origins are configured: then they, and only they, get CORS.
"""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import structlog

from voice_chat.settings import Settings

log = structlog.get_logger(__name__)
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")
WILDCARD_BINDS = ("0.0.0.0", "::", "")
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def is_loopback(host: str) -> bool:
    """True for loopback names and addresses (what ``--host`` may bind without auth)."""
    h = host.strip().strip("[]").lower()
    return h == "localhost" or h.startswith("127.") or h == "::1"


def split_host(value: str) -> tuple[str, int | None]:
    """``"Name:8000"`` -> ``("name", 8000)``; ``"[::1]:80"`` -> ``("[::1]", 80)``; no port -> None.

    Raises ValueError for a malformed value.
    """
    value = value.strip().lower()
    if not value or any(c.isspace() or c in "/@?#\\" for c in value):
        raise ValueError(value)
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            raise ValueError(value)
        name, rest = value[: end + 1], value[end + 1 :]
        if rest and not rest.startswith(":"):
            raise ValueError(value)
        port_text = rest[1:] if rest else None
    elif value.count(":") > 1:  # a bare IPv6 address
        name, port_text = f"[{value}]", None
    else:
        name, _, port_text = value.partition(":")
        port_text = port_text if ":" in value else None
    if port_text is None:
        return name, None
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(value)
    return name, int(port_text)


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def _local_names() -> set[str]:
    """This machine's names and addresses (for a server bound to every interface)."""
    names = {socket.gethostname().lower(), socket.getfqdn().lower()}
    for name in list(names):
        try:
            for info in socket.getaddrinfo(name, None):
                names.add(_bracket(str(info[4][0]).lower()))
        except OSError:
            pass
    return {n for n in names if n}


@dataclass(frozen=True)
class HostRule:
    name: str  # "example.com", "*.example.com" or "*"
    port: int | None  # None: any port

    def matches(self, name: str, port: int | None) -> bool:
        if self.port is not None and port != self.port:
            return False
        if self.name == "*":
            return True
        if self.name.startswith("*."):
            return name.endswith(self.name[1:])
        return name == self.name


def _normal_origin(origin: str) -> str | None:
    """``scheme://host[:port]`` with the default port dropped, lower case; None if malformed."""
    try:
        parts = urlsplit(origin.strip())
        if parts.scheme not in DEFAULT_PORTS or not parts.netloc or parts.path not in ("", "/"):
            return None
        name, port = split_host(parts.netloc)
    except ValueError:
        return None
    if port == DEFAULT_PORTS[parts.scheme]:
        port = None
    return f"{parts.scheme}://{name}" + (f":{port}" if port else "")


class HostPolicy:
    """Which ``Host`` headers and ``Origin`` headers this server accepts."""

    def __init__(self, settings: Settings) -> None:
        port = settings.port
        names = set(LOOPBACK_NAMES)
        bind = settings.host.strip().lower()
        if bind in WILDCARD_BINDS:
            names |= _local_names()
        else:
            names.add(_bracket(bind))
        self.rules = [HostRule(n, port) for n in sorted(names)]
        for entry in settings.allowed_hosts:
            if entry.strip() == "*":
                self.rules.append(HostRule("*", None))
                continue
            try:
                name, entry_port = split_host(entry)
            except ValueError:
                bad = f"allowed_hosts: {entry!r} is not a host name or name:port"
                raise ValueError(bad) from None
            self.rules.append(HostRule(name, entry_port))
        self.configured_origins: list[str] = []
        self.any_origin = False
        for entry in settings.allowed_origins:
            if entry.strip() == "*":
                self.any_origin = True
                continue
            normal = _normal_origin(entry)
            if normal is None:
                raise ValueError(
                    f"allowed_origins: {entry!r} is not an origin like https://chat.example.com"
                )
            self.configured_origins.append(normal)
        loopback = {
            f"{scheme}://{n}:{port}" for scheme in ("http", "https") for n in LOOPBACK_NAMES
        }
        self.origins = frozenset(loopback | set(self.configured_origins))

    def host_allowed(self, host: str | None) -> bool:
        if host is None:
            return False
        try:
            name, port = split_host(host)
        except ValueError:
            return False
        return any(rule.matches(name, port) for rule in self.rules)

    def origin_allowed(self, origin: str, host: str | None, scheme: str) -> bool:
        """``origin`` is allowed, or is the request's own (same scheme family and Host)."""
        if self.any_origin:
            return origin.strip() != "null"
        normal = _normal_origin(origin)
        if normal is None:
            return False  # "null", or garbage
        if normal in self.origins:
            return True
        if host is None:
            return False
        own_scheme = "https" if scheme in ("https", "wss") else "http"
        mine = _normal_origin(f"{own_scheme}://{host}")
        # Behind a TLS-terminating proxy the server sees http but the page is https.
        alt = _normal_origin(f"{'http' if own_scheme == 'https' else 'https'}://{host}")
        return normal in (mine, alt)


def header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


async def refuse(
    scope: Scope,
    receive: Receive,
    send: Send,
    status: int,
    code: str,
    message: str,
    headers: Iterable[tuple[bytes, bytes]] = (),
) -> None:
    """Answer ``{"error": {"code", "message"}}`` with ``status``; a websocket is refused
    before it is accepted (the HTTP denial response when the server supports it, else 403)."""
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    head = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *headers,
    ]
    if scope["type"] == "websocket":
        first = await receive()
        if first.get("type") != "websocket.connect":
            return
        if "websocket.http.response" in scope.get("extensions", {}):
            await send({"type": "websocket.http.response.start", "status": status, "headers": head})
            await send({"type": "websocket.http.response.body", "body": body})
        else:
            await send({"type": "websocket.close", "code": 1008, "reason": message[:120]})
        return
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": body})


class DenialLogFilter(logging.Filter):
    """uvicorn's websocket protocol logs "ASGI callable returned without completing handshake"
    as an error after every HTTP denial response (``websocket.http.response``, which is how a
    handshake is refused here with a status and a JSON body): a refusal is not a server fault."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "without completing handshake" not in record.getMessage()


class HostOriginMiddleware:
    """Refuses foreign ``Host`` headers (421) and foreign ``Origin`` writes and handshakes (403)."""

    def __init__(self, app: ASGIApp, policy: HostPolicy) -> None:
        self.app, self.policy = app, policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        host = header(scope, b"host")
        if not self.policy.host_allowed(host):
            shown = (host or "")[:100]
            log.warning("refused host", host=shown, path=scope.get("path"))
            message = (
                f"Host {shown!r} is not a name of this server (a DNS-rebinding attempt, or a "
                "name you have not allowed): add it to VOICE_CHAT_ALLOWED_HOSTS"
            )
            return await refuse(scope, receive, send, 421, "host_not_allowed", message)
        origin = header(scope, b"origin")
        checked = kind == "websocket" or scope.get("method", "GET") in UNSAFE_METHODS
        if origin is None and checked and header(scope, b"sec-fetch-site") == "cross-site":
            # a browser that left Origin out still says where the request came from
            message = (
                "a cross-site request cannot change anything here (Sec-Fetch-Site: cross-site);"
                " add the page's origin to VOICE_CHAT_ALLOWED_ORIGINS"
            )
            return await refuse(scope, receive, send, 403, "origin_not_allowed", message)
        if origin is not None and checked:
            if not self.policy.origin_allowed(origin, host, scope.get("scheme", "http")):
                shown = origin[:100]
                log.warning("refused origin", origin=shown, path=scope.get("path"))
                what = "websocket connections" if kind == "websocket" else "changes"
                message = (
                    f"origin {shown} is not allowed to make {what} here; "
                    "add it to VOICE_CHAT_ALLOWED_ORIGINS"
                )
                return await refuse(scope, receive, send, 403, "origin_not_allowed", message)
        await self.app(scope, receive, send)
