"""``/v1/voices``: list voices."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from voice_chat.api.deps import runtime

router = APIRouter(prefix="/v1/voices", tags=["voices"])


@router.get("")
async def list_voices(request: Request) -> dict[str, Any]:
    return {"voices": [v.model_dump() for v in runtime(request).voices.list()]}
