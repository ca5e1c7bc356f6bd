"""``/v1/auth`` (is auth on, and who am I), ``/v1/auth/token`` (a short-lived token for the
websocket and the page) and ``/v1/keys`` (admin: create, list, revoke API keys).

The checks themselves are in :mod:`voice_chat.server.auth` (a middleware), which has already
refused a caller without the role a route needs by the time these handlers run.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from voice_chat.memory import MemoryStoreError
from voice_chat.memory.keys import KeyStore
from voice_chat.server.api.deps import ApiError, read_capped, runtime
from voice_chat.server.auth import COOKIE, identity_of

router = APIRouter(tags=["auth"])
MAX_BODY = 4096


def _authenticator(request: Request) -> Any:
    return request.app.state.authenticator


@router.get("/v1/auth")
async def auth_info(request: Request) -> dict[str, Any]:
    """Public: whether this server needs a key, and who the caller is (if it sent one)."""
    identity = identity_of(request.scope)
    return {
        "auth": runtime(request).settings.auth,
        "identity": identity.to_dict() if identity else None,
    }


@router.post("/v1/auth/token", response_model=None)
async def create_token(request: Request) -> Response:
    """A token for ``?token=`` (websocket) and the ``voice_chat_token`` cookie (the page)."""
    settings = runtime(request).settings
    identity = identity_of(request.scope)
    if settings.auth != "on" or identity is None:
        raise ApiError("auth_off", "this server does not require a key: no token is needed")
    if identity.via != "key":
        raise ApiError("key_required", "a token is made from an API key, not from a token")
    token, expiry = _authenticator(request).signer.issue(identity.key_id)
    ttl = settings.auth_token_ttl_s
    body = {"token": token, "expires_in": ttl, "expires_at": expiry, **identity.to_dict()}
    response = JSONResponse(body)
    response.set_cookie(
        COOKIE,
        token,
        max_age=ttl,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response


@router.delete("/v1/auth/token", response_model=None)
async def forget_token() -> Response:
    """Log the page out: drop its cookie (the token itself expires on its own)."""
    response = JSONResponse({"deleted": True})
    response.delete_cookie(COOKIE, path="/")
    return response


async def _keys(request: Request, fn: Any) -> Any:
    try:
        return await runtime(request).store.call(lambda store: fn(KeyStore(store)))
    except MemoryStoreError as exc:
        if exc.code == "invalid_argument":
            raise ApiError("invalid_field", exc.message, status=422) from None
        message = f"the key store is unavailable: {exc.message}"
        raise ApiError("memory_unavailable", message) from None


@router.get("/v1/keys", response_model=None)
async def list_keys(request: Request) -> Response:
    keys = await _keys(request, lambda ks: ks.list())
    return JSONResponse({"keys": [k.to_dict() for k in keys]})


@router.post("/v1/keys", response_model=None)
async def create_key(request: Request) -> Response:
    """``{"role": "admin"|"user", "name": ..., "user": ...}``; the key is shown only here."""
    raw = await read_capped(request, MAX_BODY, f"a key request is at most {MAX_BODY} bytes")
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        raise ApiError("invalid_json", 'send JSON: {"role": "user", "name": "..."}') from None
    if not isinstance(body, dict) or not isinstance(body.get("role"), str):
        raise ApiError("invalid_field", 'role: "admin" or "user"', status=422)
    role, name, user = body.get("role"), body.get("name"), body.get("user")
    if not all(v is None or isinstance(v, str) for v in (name, user)):
        raise ApiError("invalid_field", "name and user must be strings", status=422)
    key = await _keys(request, lambda ks: ks.create(role, name=name, user_id=user))
    record = await _keys(request, lambda ks: ks.get(key.split("_")[1]))
    return JSONResponse({"key": key, **record.to_dict()}, status_code=201)


@router.delete("/v1/keys/{key_id}", response_model=None)
async def revoke_key(request: Request, key_id: str) -> Response:
    revoked = await _keys(request, lambda ks: ks.revoke(key_id))
    if not revoked:
        raise ApiError("not_found", f"no active key {key_id[:20]!r}", status=404)
    _authenticator(request).forget()
    return JSONResponse({"id": key_id, "revoked": True})
