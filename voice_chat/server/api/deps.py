"""Shared helpers for the route modules."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import JSONResponse

from voice_chat.runtime.local import Runtime


def runtime(request: Request) -> Runtime:
    return request.app.state.runtime  # type: ignore[no-any-return]


def error(status: int, code: str, message: str) -> JSONResponse:
    """The one error body of the HTTP API: ``{"error": {"code", "message"}}``."""
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)
