"""API-key authentication: an ASGI middleware that decides who is calling and what they may do.

With ``auth`` off (the default on loopback) nothing is checked and requests carry no identity.
With ``auth`` on, every route except the page, its static files, ``/healthz`` and
``GET /v1/auth`` needs a credential:

* ``Authorization: Bearer <key>`` (what the OpenAI SDKs send with ``api_key=``), on HTTP and
  on the websocket handshake;
* a short-lived token from ``POST /v1/auth/token``, as ``Authorization: Bearer <token>``,
  ``?token=<token>`` (browsers cannot set headers on a websocket) or the ``voice_chat_token``
  cookie that the same call sets for the page (HttpOnly, SameSite=Strict).

Tokens are HMAC-SHA256 signed with a secret made at start-up, name their key and expire after
``auth_token_ttl_s``; a revoked key's tokens stop working with it. The identity (the key's
user id and role) is put in ``scope["state"]["identity"]``; routes and sessions take the user
from there, never from a query parameter.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import structlog

from voice_chat.memory import MemoryStoreError
from voice_chat.memory.keys import ApiKey, KeyStore, hash_key, looks_like_key
from voice_chat.runtime.local import Runtime
from voice_chat.server.buckets import KeyedBuckets
from voice_chat.server.security import ASGIApp, Receive, Scope, Send, header, refuse

log = structlog.get_logger(__name__)
COOKIE = "voice_chat_token"
TOKEN_PREFIX = "vct_"
PUBLIC_EXACT = frozenset({"/", "/healthz", "/favicon.ico"})
PUBLIC_PREFIXES = ("/static/",)
CACHE_S = 5.0  # a revoked key (revoked by the CLI, another process) stops within this
CACHE_SIZE = 1024
HOW = (
    "pass Authorization: Bearer <key> (create a key with `voice-chat keys create`), or for a "
    "websocket ?token=<token> from POST /v1/auth/token"
)


@dataclass(frozen=True)
class Identity:
    """Who is calling: the key's user id and role (``via`` is "key" or "token")."""

    user_id: str
    role: str
    key_id: str
    via: str

    @property
    def admin(self) -> bool:
        return self.role == "admin"

    def to_dict(self) -> dict[str, Any]:
        return {"user_id": self.user_id, "role": self.role, "key_id": self.key_id}


def identity_of(scope: Scope) -> Identity | None:
    """The caller's identity, set by :class:`AuthMiddleware` (None when auth is off)."""
    found = scope.get("state", {}).get("identity")
    return found if isinstance(found, Identity) else None


def owner(scope: Scope, asked: str | None, auth_on: bool) -> str | None:
    """Whose conversations a request may touch: with auth on, the key's own user (``asked``
    must be absent or the same, unless the key is an admin's); with auth off, ``asked``.
    Raises PermissionError(code, message)."""
    if not auth_on:
        return asked
    identity = identity_of(scope)
    if identity is None:
        raise PermissionError("auth_required", f"this server requires an API key: {HOW}")
    if asked is None or asked == identity.user_id or identity.admin:
        return asked or identity.user_id
    raise PermissionError(
        "forbidden",
        f"this key belongs to user {identity.user_id!r}: it cannot read or change the "
        f"conversations of {asked[:64]!r} (leave out ?user=)",
    )


def required_role(method: str, path: str) -> str | None:
    """None for public routes, else the role a route needs ("admin" or "user")."""
    if (method in ("GET", "HEAD") and path in PUBLIC_EXACT) or path.startswith(PUBLIC_PREFIXES):
        return None
    if path == "/v1/auth" and method in ("GET", "HEAD"):
        return None
    if path.startswith("/v1/keys"):
        return "admin"
    writes = method in ("POST", "PUT", "PATCH", "DELETE")
    if writes and (path == "/v1/characters" or path.startswith("/v1/characters/")):
        return "admin"  # import, edit, delete a character; assign its voice
    if writes and path.startswith("/v1/presets"):
        return "admin"  # switch the model every session uses
    if path.startswith("/v1/voices"):
        preview = path.endswith("/preview")
        if writes and not preview:
            return "admin"  # register, delete, assign a voice
    return "user"


class TokenSigner:
    """Stateless short-lived tokens: ``vct_<key id>.<expiry>.<nonce>.<signature>``."""

    def __init__(self, ttl_s: int, secret: bytes | None = None) -> None:
        self.ttl_s = ttl_s
        self._secret = secret or secrets.token_bytes(32)

    def _sign(self, body: str) -> str:
        digest = hmac.new(self._secret, body.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def issue(self, key_id: str, now: float | None = None) -> tuple[str, int]:
        expiry = int((now or time.time()) + self.ttl_s)
        body = f"{key_id}.{expiry}.{secrets.token_hex(8)}"
        return f"{TOKEN_PREFIX}{body}.{self._sign(body)}", expiry

    def check(self, token: str, now: float | None = None) -> str:
        """The key id of a valid token; raises ValueError("expired"/"invalid") otherwise."""
        if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
            raise ValueError("invalid")
        body, _, signature = token[len(TOKEN_PREFIX) :].rpartition(".")
        parts = body.split(".")
        if len(parts) != 3 or not hmac.compare_digest(self._sign(body), signature):
            raise ValueError("invalid")
        if not parts[1].isdigit() or int(parts[1]) < (now or time.time()):
            raise ValueError("expired")
        return parts[0]


class Authenticator:
    """Verifies keys and tokens against the key store, with a small time-bounded cache."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.signer = TokenSigner(runtime.settings.auth_token_ttl_s)
        self._cache: OrderedDict[str, tuple[float, ApiKey | None]] = OrderedDict()

    async def _lookup(self, cache_key: str, fn: Any) -> ApiKey | None:
        now = time.monotonic()
        hit = self._cache.get(cache_key)
        if hit is not None and now - hit[0] < CACHE_S:
            return hit[1]
        record: ApiKey | None = await self.runtime.store.call(lambda s: fn(KeyStore(s)))
        self._cache[cache_key] = (now, record)
        self._cache.move_to_end(cache_key)
        while len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        return record

    def recently_verified(self, credential: str) -> bool:
        """A key or token this server verified within CACHE_S (no database read)."""
        if credential.startswith(TOKEN_PREFIX):
            try:
                cache_key = "id:" + self.signer.check(credential)
            except ValueError:
                return False
        else:
            cache_key = "key:" + hash_key(credential)
        hit = self._cache.get(cache_key)
        return hit is not None and hit[1] is not None and time.monotonic() - hit[0] < CACHE_S

    def forget(self) -> None:
        """Drop the cache (a key was revoked through the HTTP API)."""
        self._cache.clear()

    async def identify(self, credential: str) -> Identity:
        """The identity of a key or token; raises PermissionError(code, message)."""
        if credential.startswith(TOKEN_PREFIX):
            try:
                key_id = self.signer.check(credential)
            except ValueError as exc:
                if str(exc) == "expired":
                    raise PermissionError(
                        "token_expired",
                        "the token has expired: get a new one from POST /v1/auth/token",
                    ) from None
                raise PermissionError("invalid_token", "the token is not valid") from None
            record = await self._lookup("id:" + key_id, lambda ks: ks.get(key_id))
            if record is None or not record.active:
                raise PermissionError("invalid_token", "the token's API key was revoked")
            return Identity(record.user_id, record.role, record.id, "token")
        if not looks_like_key(credential):
            raise PermissionError(
                "invalid_key", "that is not an API key of this server (they look like vc_...)"
            )
        record = await self._lookup("key:" + hash_key(credential), lambda ks: ks.verify(credential))
        if record is None:
            raise PermissionError("invalid_key", "the API key is unknown or has been revoked")
        return Identity(record.user_id, record.role, record.id, "key")


def credential_of(scope: Scope) -> str | None:
    """The bearer credential of a request: the header, then ``?token=``, then the cookie."""
    auth = header(scope, b"authorization")
    if auth is not None:
        scheme, _, value = auth.strip().partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        return auth.strip() or None
    query = bytes(scope.get("query_string", b"")).decode("latin-1")
    for pair in query.split("&"):
        name, _, value = pair.partition("=")
        if name == "token" and value:
            return value
    cookies = header(scope, b"cookie") or ""
    for part in cookies.split(";"):
        name, _, value = part.strip().partition("=")
        if name == COOKIE and value:
            return value
    return None


class AuthMiddleware:
    """Puts the caller's :class:`Identity` in the scope, and refuses what it may not do."""

    def __init__(self, app: ASGIApp, runtime: Runtime, authenticator: Authenticator) -> None:
        self.app, self.runtime, self.auth = app, runtime, authenticator
        self.on = runtime.settings.auth == "on"
        per_min = runtime.settings.max_auth_failures_per_min
        self.failures = KeyedBuckets(per_min / 60.0, per_min)  # wrong keys, per address

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or not self.on:
            return await self.app(scope, receive, send)
        method = scope.get("method", "GET") if scope["type"] == "http" else "GET"
        if method == "OPTIONS":  # CORS preflight: answered (or refused) outside this layer
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        needed = required_role(method, path)
        credential = credential_of(scope)
        state = scope.setdefault("state", {})
        challenge = [(b"www-authenticate", b'Bearer realm="voice_chat"')]
        if credential is None:
            if needed is None:
                return await self.app(scope, receive, send)
            message = f"this server requires an API key: {HOW}"
            return await refuse(scope, receive, send, 401, "auth_required", message, challenge)
        client = scope.get("client")
        failures = self.failures.get(str(client[0]) if client else "unknown")
        if not failures.available() and not self.auth.recently_verified(credential):
            wait = max(1, math.ceil(failures.wait_s()))
            message = (
                "too many wrong API keys or tokens from this address "
                f"(VOICE_CHAT_MAX_AUTH_FAILURES_PER_MIN); retry in {wait} s"
            )
            retry = [(b"retry-after", str(wait).encode())]
            return await refuse(scope, receive, send, 429, "rate_limited", message, retry)
        try:
            identity = await self.auth.identify(credential)
        except PermissionError as exc:
            failures.take()
            if needed is None:
                return await self.app(scope, receive, send)
            code, message = exc.args
            return await refuse(scope, receive, send, 401, code, message, challenge)
        except MemoryStoreError as exc:
            message = f"the key store is unavailable, so no key can be checked: {exc}"
            return await refuse(scope, receive, send, 503, "auth_unavailable", message)
        if needed == "admin" and not identity.admin:
            message = f"{method} {path} needs an admin key; this is a {identity.role} key"
            return await refuse(scope, receive, send, 403, "forbidden", message)
        state["identity"] = identity
        await self.app(scope, receive, send)
