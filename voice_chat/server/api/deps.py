"""Shared helpers for the route modules: the runtime, the error body, capped request bodies.

Routes raise errors instead of building error responses: any
:class:`~voice_chat.errors.VoiceChatError` (a card, character, voice, engine or request error)
becomes ``{"error": {"code", "message"}}`` with its status in :func:`api_error`, the one
exception handler, which ``server/app.py`` registers for the whole app.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from fastapi import Request
from fastapi.responses import JSONResponse
from starlette.requests import HTTPConnection

from voice_chat.engines.base import EngineError
from voice_chat.engines.voices import VoiceError
from voice_chat.errors import VoiceChatError
from voice_chat.runtime.local import Runtime

T = TypeVar("T")


class ApiError(VoiceChatError):
    """A bad request (body, form, field, query): 400 unless its code or ``status`` says more."""


def runtime(request: Request) -> Runtime:
    return request.app.state.runtime  # type: ignore[no-any-return]


def error(status: int, code: str, message: str) -> JSONResponse:
    """The one error body of the HTTP API: ``{"error": {"code", "message"}}``."""
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


async def api_error(conn: HTTPConnection, exc: Exception) -> JSONResponse:
    """The HTTP API's exception handler: a VoiceChatError or an OSError to the error body.

    A websocket session handles its own errors, so one reaching here is raised again.
    """
    if conn.scope["type"] != "http":
        raise exc
    if isinstance(exc, VoiceChatError):
        return error(exc.status, exc.code, exc.message)
    if isinstance(exc, OSError):
        return error(500, "storage_error", f"storage failed: {exc.strerror or exc}")
    raise exc


def capped_stream(request: Request, cap: int, message: str) -> AsyncIterator[bytes]:
    """The request body in chunks; 413 ``too_large`` (with ``message``) past ``cap`` bytes.

    A Content-Length over the cap is refused at once, before anything is read.
    """
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > cap):
        raise ApiError("too_large", message)
    return _capped(request, cap, message)


async def _capped(request: Request, cap: int, message: str) -> AsyncIterator[bytes]:
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > cap:
            raise ApiError("too_large", message)
        yield chunk


async def read_capped(request: Request, cap: int, message: str) -> bytes:
    """The whole request body, at most ``cap`` bytes (413 ``too_large`` beyond)."""
    return b"".join([chunk async for chunk in capped_stream(request, cap, message)])


async def synthesized(rt: Runtime, pool: ThreadPoolExecutor, fn: Callable[[], T]) -> T:
    """``fn`` (which speaks) on ``pool``; an engine failure in it is 422 ``synthesis_failed``."""
    try:
        return await rt.run(pool, fn)
    except EngineError as exc:
        raise VoiceError("synthesis_failed", exc.message) from exc
