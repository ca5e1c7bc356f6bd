"""``/v1/characters``: list, import, create, edit, delete and export characters; avatars, samples.

POST (create) and PUT (edit) take a card file, or the page's form: a ``fields`` part (JSON:
name, description, personality, scenario, greetings, mes_example, voice) and an optional
``picture`` (an image, checked and stored as a PNG).

Uploads are capped at ``MAX_CHARX_BYTES`` while they are read (413). Every bad card is a 4xx
with ``{"error": {"code", "message"}}`` (the app's one exception handler) and nothing is stored.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from voice_chat.cards import FILE_EXTENSIONS, MEDIA_TYPES
from voice_chat.cards.limits import MAX_CHARX_BYTES
from voice_chat.characters.editing import parse_fields
from voice_chat.characters.pictures import MAX_PICTURE_BYTES, picture_png
from voice_chat.characters.registry import Character
from voice_chat.engines.voices import VoiceError
from voice_chat.memory import MemoryStoreError
from voice_chat.server.api.deps import ApiError, capped_stream, read_capped, runtime

router = APIRouter(prefix="/v1/characters", tags=["characters"])
FORM_OVERHEAD = 64 * 1024  # multipart boundaries and small fields on top of the file
FIELDS_BYTES = 256 * 1024  # the editor's fields as JSON (all text fields at their limits fit)
UNSET: Any = object()


def character_json(c: Character) -> dict[str, Any]:
    sample = c.voice_sample
    return {
        "id": c.id,
        "name": c.name,
        "description": c.description,
        "voice": c.voice,
        "avatar_url": f"/v1/characters/{c.id}/avatar" if c.avatar else None,
        "avatar_type": c.avatar_type if c.avatar else None,
        "shipped": c.shipped,
        "customized": c.customized,
        "spec": c.card.spec,
        "greetings": c.greeting_count,
        "tags": c.card.tags,
        "voice_sample": {
            "name": sample.name,
            "media_type": sample.media_type,
            "url": f"/v1/characters/{c.id}/voice-sample",
        }
        if sample
        else None,
    }


@dataclass
class Upload:
    """A POST/PUT body: a card file, or the page's ``fields`` (JSON) and ``picture``."""

    data: bytes = b""
    voice: Any = UNSET
    fields: Any = UNSET  # the decoded JSON object of the ``fields`` part
    picture: bytes | None = None


async def read_upload(request: Request) -> Upload:
    """The card bytes, ``voice`` (UNSET when absent), and the editor's fields and picture."""
    cap = MAX_CHARX_BYTES + FORM_OVERHEAD
    too_large = f"uploads are limited to {MAX_CHARX_BYTES} bytes"
    up = Upload(voice=request.query_params.get("voice", UNSET))
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        up.data = await read_capped(request, cap, too_large)
        return up
    stream = capped_stream(request, cap, too_large)
    parser = MultiPartParser(
        request.headers, stream, max_files=2, max_fields=8, max_part_size=FIELDS_BYTES
    )
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise ApiError("invalid_upload", f"bad multipart body: {exc.message}") from None
    try:
        field = form.get("file")
        if isinstance(field, UploadFile):
            up.data = await field.read(MAX_CHARX_BYTES + 1)
        else:
            up.data = field.encode() if isinstance(field, str) else b""
        if isinstance(form.get("voice"), str):
            up.voice = form["voice"]
        picture = form.get("picture")
        if isinstance(picture, UploadFile):
            up.picture = await picture.read(MAX_PICTURE_BYTES + 1)
        fields = form.get("fields")
        if fields is not None:
            raw = fields if isinstance(fields, str) else (await fields.read(FIELDS_BYTES)).decode()
            try:
                up.fields = json.loads(raw)
            except ValueError as exc:
                raise ApiError("invalid_fields", f"the fields are not JSON: {exc}") from None
    finally:
        await form.close()
    return up


def _check_voice(request: Request, voice: Any) -> str | None:
    """``""``/None clear the voice (the server default); anything else must exist."""
    if voice is None or voice == "":
        return None
    if not isinstance(voice, str):
        raise ApiError("invalid_field", "voice must be a voice id (a string) or null", status=422)
    try:
        runtime(request).voices.get(voice)
    except VoiceError as exc:  # the upload names a voice: a bad field of it, not a missing page
        raise VoiceError(exc.code, exc.message, status=422) from exc
    return voice


@router.get("")
async def list_characters(request: Request) -> dict[str, Any]:
    characters = await asyncio.to_thread(runtime(request).characters.list)
    return {"characters": [character_json(c) for c in characters]}


@router.post("", response_model=None)
async def create_character(request: Request) -> Response:
    up = await read_upload(request)
    if up.fields is not UNSET:
        character = await _compose(request, up, None)
        return JSONResponse(character_json(character), status_code=201)
    data, voice = up.data, up.voice
    if not data.strip():
        raise ApiError("empty_upload", "send a card file as 'file' or in the body")
    chosen = None if voice is UNSET else await asyncio.to_thread(_check_voice, request, voice)
    registry = runtime(request).characters
    character = await asyncio.to_thread(registry.add, data, voice=chosen)
    return JSONResponse(character_json(character), status_code=201)


@router.get("/{character_id}", response_model=None)
async def get_character(request: Request, character_id: str) -> Response:
    card = (await asyncio.to_thread(runtime(request).characters.get, character_id)).card
    return JSONResponse(card.to_v3() if card.spec == "v3" else card.to_v2())


@router.put("/{character_id}", response_model=None)
async def update_character(request: Request, character_id: str) -> Response:
    """A card file or card JSON replaces the card; ``{"voice": id | null}`` only sets the voice."""
    registry = runtime(request).characters
    await asyncio.to_thread(registry.get, character_id)
    up = await read_upload(request)
    if up.fields is not UNSET:
        return JSONResponse(character_json(await _compose(request, up, character_id)))
    data, voice = up.data, up.voice
    patch = _patch(data)
    if patch is not None:
        voice = patch.get("voice", UNSET)
    if patch is not None or not data.strip():
        if voice is UNSET:
            raise ApiError("empty_upload", 'send a card, or {"voice": ...}')
        chosen = await asyncio.to_thread(_check_voice, request, voice)
        character = await asyncio.to_thread(registry.set_voice, character_id, chosen)
    else:
        chosen = None if voice is UNSET else await asyncio.to_thread(_check_voice, request, voice)
        replace = registry.replace
        character = await asyncio.to_thread(replace, character_id, data, voice=chosen)
    return JSONResponse(character_json(character))


async def _compose(request: Request, up: Upload, character_id: str | None) -> Character:
    """Create or edit from the page's fields; the picture is checked before anything is kept."""
    fields = parse_fields(up.fields, creating=character_id is None)
    if fields.voice is not ...:
        fields.voice = _check_voice(request, fields.voice)
    picture = await asyncio.to_thread(picture_png, up.picture) if up.picture else None
    registry = runtime(request).characters
    return await asyncio.to_thread(registry.compose, fields, picture, character_id=character_id)


def _patch(data: bytes) -> dict[str, Any] | None:
    """A JSON object whose keys are all patchable fields (``voice``), else None."""
    if not data.lstrip().startswith(b"{") or len(data) > 4096:
        return None
    try:
        obj = json.loads(data)
    except ValueError:
        return None
    return obj if isinstance(obj, dict) and obj and set(obj) <= {"voice"} else None


@router.delete("/{character_id}", response_model=None)
async def delete_character(request: Request, character_id: str) -> Response:
    rt = runtime(request)
    restored = await asyncio.to_thread(rt.characters.delete, character_id)
    forgotten: int | None = 0
    if restored is None:  # the character is gone: so are its conversations
        try:
            forgotten = await rt.store.forget_character(character_id)
        except MemoryStoreError:
            forgotten = None
    body: dict[str, Any] = {"id": character_id, "deleted": True}
    body["conversations_deleted"] = forgotten
    body["restored"] = character_json(restored) if restored else None
    return JSONResponse(body)


@router.get("/{character_id}/avatar", response_model=None)
async def avatar(request: Request, character_id: str) -> Response:
    c = await asyncio.to_thread(runtime(request).characters.get, character_id)
    if c.avatar is None or not c.avatar.is_file():
        raise ApiError("no_avatar", f"character {character_id!r} has no avatar")
    return FileResponse(c.avatar, media_type=c.avatar_type)


@router.get("/{character_id}/voice-sample", response_model=None)
async def voice_sample(request: Request, character_id: str) -> Response:
    sample = (await asyncio.to_thread(runtime(request).characters.get, character_id)).voice_sample
    if sample is None or not sample.path.is_file():
        raise ApiError("no_voice_sample", f"character {character_id!r} has no voice sample")
    return FileResponse(sample.path, media_type=sample.media_type, filename=sample.name)


@router.get("/{character_id}/export", response_model=None)
async def export(request: Request, character_id: str, format: str = "png") -> Response:
    if format not in MEDIA_TYPES:
        raise ApiError("invalid_format", "format must be one of v2, v3, png, charx")
    registry = runtime(request).characters
    data = await asyncio.to_thread(registry.export, character_id, format)
    name = f"{character_id}{'.v3' if format == 'v3' else ''}{FILE_EXTENSIONS[format]}"
    headers = {"Content-Disposition": f'attachment; filename="{name}"'}
    return Response(data, media_type=MEDIA_TYPES[format], headers=headers)
