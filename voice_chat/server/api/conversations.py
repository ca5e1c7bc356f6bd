"""``/v1/conversations``: a user's conversations; read or delete one of them.

``GET ?user=U`` lists U's conversations, the most recent first, each with its last message and
time. ``GET ?user=&character=[&conversation=]`` reads one conversation and ``DELETE`` with the
same parameters forgets it. ``conversation`` defaults to ``default``, the conversation used
when a client names none. With auth on, the user is always the API key's own.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from voice_chat.characters.registry import CHARACTER_ID
from voice_chat.memory import MemoryStoreError
from voice_chat.memory.conversations import USER_ID
from voice_chat.memory.store import CONVERSATION_ID, DEFAULT_CONVERSATION
from voice_chat.server.api.deps import ApiError, runtime
from voice_chat.server.auth import owner

router = APIRouter(prefix="/v1/conversations", tags=["conversations"])


def _user(request: Request, user: str | None) -> str:
    """The user asked for; with auth on, the key's own."""
    try:
        user = owner(request.scope, user or None, runtime(request).settings.auth == "on")
    except PermissionError as exc:
        code, message = exc.args
        raise ApiError(code, message, status=403 if code == "forbidden" else 401) from None
    if not user or not USER_ID.match(user):
        raise ApiError("invalid_request", "user: 1-128 letters, digits or . _ @ -")
    return user


def _ids(
    request: Request, user: str | None, character: str | None, conversation: str | None
) -> tuple[str, str, str]:
    user = _user(request, user)
    if not character or not CHARACTER_ID.match(character):
        raise ApiError("invalid_request", "character: a character id")
    conversation = conversation or DEFAULT_CONVERSATION
    if not CONVERSATION_ID.match(conversation):
        raise ApiError("invalid_request", "conversation: 1-64 lower-case letters, digits, _ or -")
    return user, character, conversation


def _unavailable(exc: MemoryStoreError) -> ApiError:
    return ApiError("memory_unavailable", f"conversation memory is unavailable: {exc}")


@router.get("", response_model=None)
async def get_conversation(
    request: Request,
    user: str | None = None,
    character: str | None = None,
    conversation: str | None = None,
) -> Response:
    store = runtime(request).store
    try:
        if character is None and conversation is None:
            who = _user(request, user)
            return JSONResponse({"user_id": who, "conversations": await store.conversations(who)})
        ids = _ids(request, user, character, conversation)
        body: dict[str, Any] = await store.conversation(*ids)
    except MemoryStoreError as exc:
        raise _unavailable(exc) from exc
    return JSONResponse(body)


@router.delete("", response_model=None)
async def reset_conversation(
    request: Request,
    user: str | None = None,
    character: str | None = None,
    conversation: str | None = None,
) -> Response:
    ids = _ids(request, user, character, conversation)
    try:
        deleted = await runtime(request).store.reset(*ids)
    except MemoryStoreError as exc:
        raise _unavailable(exc) from exc
    body = {"user_id": ids[0], "character_id": ids[1], "conversation_id": ids[2]}
    return JSONResponse({**body, "deleted": deleted})
