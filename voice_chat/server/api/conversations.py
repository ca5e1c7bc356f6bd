"""``/v1/conversations?user=&character=``: read or reset one stored conversation."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from voice_chat.characters.registry import CHARACTER_ID
from voice_chat.memory import MemoryStoreError
from voice_chat.memory.conversations import USER_ID
from voice_chat.server.api.deps import ApiError, runtime
from voice_chat.server.auth import owner

router = APIRouter(prefix="/v1/conversations", tags=["conversations"])


def _ids(request: Request, user: str | None, character: str | None) -> tuple[str, str]:
    """The (user, character) asked for; with auth on, the user is the key's own."""
    try:
        user = owner(request.scope, user or None, runtime(request).settings.auth == "on")
    except PermissionError as exc:
        code, message = exc.args
        raise ApiError(code, message, status=403 if code == "forbidden" else 401) from None
    if not user or not USER_ID.match(user):
        raise ApiError("invalid_request", "user: 1-128 letters, digits or . _ @ -")
    if not character or not CHARACTER_ID.match(character):
        raise ApiError("invalid_request", "character: a character id")
    return user, character


def _unavailable(exc: MemoryStoreError) -> ApiError:
    return ApiError("memory_unavailable", f"conversation memory is unavailable: {exc}")


@router.get("", response_model=None)
async def get_conversation(
    request: Request, user: str | None = None, character: str | None = None
) -> Response:
    ids = _ids(request, user, character)
    try:
        body: dict[str, Any] = await runtime(request).store.conversation(*ids)
    except MemoryStoreError as exc:
        raise _unavailable(exc) from exc
    return JSONResponse(body)


@router.delete("", response_model=None)
async def reset_conversation(
    request: Request, user: str | None = None, character: str | None = None
) -> Response:
    ids = _ids(request, user, character)
    try:
        deleted = await runtime(request).store.reset(*ids)
    except MemoryStoreError as exc:
        raise _unavailable(exc) from exc
    return JSONResponse({"user_id": ids[0], "character_id": ids[1], "deleted": deleted})
