"""``/v1/characters``: list characters and serve their avatars."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse

from voice_chat.api.deps import error, runtime
from voice_chat.characters import Character, CharacterError

router = APIRouter(prefix="/v1/characters", tags=["characters"])


def character_json(c: Character) -> dict[str, Any]:
    return {
        "id": c.id,
        "name": c.name,
        "description": c.description,
        "voice": c.voice,
        "avatar_url": f"/v1/characters/{c.id}/avatar" if c.avatar else None,
        "shipped": c.shipped,
    }


@router.get("")
async def list_characters(request: Request) -> dict[str, Any]:
    return {"characters": [character_json(c) for c in runtime(request).characters.list()]}


@router.get("/{character_id}/avatar", response_model=None)
async def avatar(request: Request, character_id: str) -> FileResponse | JSONResponse:
    try:
        character = runtime(request).characters.get(character_id)
    except CharacterError as exc:
        return error(404, exc.code, str(exc))
    if character.avatar is None:
        return error(404, "no_avatar", f"character {character_id!r} has no avatar")
    return FileResponse(character.avatar, media_type="image/png")
