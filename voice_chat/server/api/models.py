"""``/v1/models``: the characters, listed as models in the OpenAI models format.

A Realtime client picks a character the way it picks a model: ``connect(model="sage")``.
Errors use the OpenAI error body (``{"error": {"message", "type", "param", "code"}}``) since
OpenAI clients read them.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from voice_chat.characters.registry import Character, CharacterError
from voice_chat.server.api.deps import runtime

router = APIRouter(prefix="/v1/models", tags=["models"])
OWNER = "voice-chat"


def model_json(c: Character) -> dict[str, Any]:
    """``created`` is the card's V3 ``creation_date`` (Unix seconds), else 0."""
    stamp = c.card.data.get("creation_date")
    created = int(stamp) if isinstance(stamp, int | float) and stamp > 0 else 0
    owner = OWNER if c.shipped else "user"
    return {"id": c.id, "object": "model", "created": created, "owned_by": owner}


def openai_error(status: int, code: str, message: str, param: str | None = None) -> JSONResponse:
    body = {"message": message, "type": "invalid_request_error", "param": param, "code": code}
    return JSONResponse({"error": body}, status_code=status)


@router.get("")
async def list_models(request: Request) -> JSONResponse:
    registry = runtime(request).characters
    characters = await asyncio.to_thread(registry.list)
    models = [model_json(c) for c in characters]
    return JSONResponse({"object": "list", "data": models})


@router.get("/{model_id}")
async def get_model(request: Request, model_id: str) -> JSONResponse:
    registry = runtime(request).characters
    try:
        character = await asyncio.to_thread(registry.get, model_id)
        body = model_json(character)
    except CharacterError as exc:
        message = f"The model {model_id[:64]!r} does not exist: it names no character"
        if exc.code != "unknown_character":
            message = str(exc)
        return openai_error(404, "model_not_found", message, "model")
    return JSONResponse(body)
