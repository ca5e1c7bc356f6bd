"""``/v1/voices``: list, show, register, preview, delete and assign character voices.

Registration (``POST /v1/voices``) takes a multipart form (``name``, ``kind``, ``params`` as a
JSON string, ``files``) or, for kinds without files, JSON or a urlencoded form with the same
keys. File parts are streamed to ``<data>/voices/.staging/<pid>-<hex>-upload/`` under the
limits of :mod:`voice_chat.server.api.voice_io`. The voicelab registration (validation, test
synthesis, atomic rename) then runs on a dedicated one-thread pool, so live conversations keep
the TTS pool. Every failure is ``{"error": {"code", "message"}}`` and stores nothing.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from voice_chat.engines.voices import VOICE_ID, VoiceError, VoiceSpec
from voice_chat.runtime.local import Runtime
from voice_chat.server.api.deps import runtime, synthesized
from voice_chat.server.api.voice_io import (
    FORM_FIELDS,
    MAX_PREVIEW_TEXT,
    fail,
    parse_params,
    read_form,
    read_json,
    read_small,
    text_field,
    voice_json,
)
from voice_chat.voicelab import VoiceStore

router = APIRouter(prefix="/v1/voices", tags=["voices"])


# ------------------------------------------------------------------ shared state
@dataclass
class VoiceLab:
    store: VoiceStore
    pool: ThreadPoolExecutor  # registrations: CPU work that must not hold the TTS pool


_LAB_LOCK = threading.Lock()


def lab(request: Request) -> VoiceLab:
    state = request.app.state
    with _LAB_LOCK:
        found = getattr(state, "voicelab", None)
        if found is None:
            settings = runtime(request).settings
            clone = settings.voice_clone_model
            store = VoiceStore(settings.shared, settings.voices_dir, clone_model=clone)
            found = VoiceLab(store, ThreadPoolExecutor(1, thread_name_prefix="voicelab"))
            state.voicelab = found
        return found  # type: ignore[no-any-return]


def _get_spec(request: Request, voice_id: str) -> VoiceSpec:
    if not VOICE_ID.match(voice_id):
        raise VoiceError("unknown_voice", f"no voice {voice_id[:64]!r}")
    return runtime(request).voices.get(voice_id)


@router.get("")
async def list_voices(request: Request) -> dict[str, Any]:
    voices = runtime(request).voices

    def build() -> list[dict[str, Any]]:
        return [voice_json(v, voices.is_shipped(v.id), voices.get) for v in voices.list()]

    return {"voices": await asyncio.to_thread(build)}


@router.get("/{voice_id}", response_model=None)
async def get_voice(request: Request, voice_id: str) -> Response:
    voices = runtime(request).voices
    spec = await asyncio.to_thread(_get_spec, request, voice_id)
    shipped = voices.is_shipped(voice_id)
    return JSONResponse(await asyncio.to_thread(voice_json, spec, shipped, voices.get))


# ------------------------------------------------------------------ writes
def _register(store: VoiceStore, fields: dict[str, Any], files: dict[str, Path]) -> VoiceSpec:
    params = parse_params(fields.get("params"))
    kind, name = text_field(fields, "kind"), text_field(fields, "name")
    data = {key: path.read_bytes() for key, path in files.items()}
    voice_id = text_field(fields, "id", required=False)
    return store.register(kind or "", name or "", data, params, voice_id=voice_id)


@router.post("", response_model=None)
async def create_voice(request: Request) -> Response:
    rt, vl = runtime(request), lab(request)
    folder = vl.store.staging / f"{os.getpid()}-{uuid.uuid4().hex}-upload"
    try:
        ctype = request.headers.get("content-type", "")
        files: dict[str, Path] = {}
        if ctype.startswith("multipart/"):
            form = await read_form(request, folder)
            fields, files = dict(form.fields), form.files
        elif ctype.startswith("application/x-www-form-urlencoded"):
            fields = dict(parse_qsl((await read_small(request)).decode("utf-8", "replace")))
        else:
            fields = await read_json(request)
        extra = sorted(set(fields) - set(FORM_FIELDS))
        if extra:
            raise fail("invalid_upload", f"unexpected field(s): {', '.join(extra)}")
        spec = await synthesized(rt, vl.pool, lambda: _register(vl.store, fields, files))
    finally:
        await asyncio.to_thread(lambda: shutil.rmtree(folder, ignore_errors=True))
    rt.forget_voice(spec.id)  # a cached synthesizer of an earlier voice with this id
    body = await asyncio.to_thread(voice_json, spec, False, rt.voices.get)
    return JSONResponse(body, status_code=201)


def _preview_text(body: dict[str, Any]) -> str:
    text = body.get("text")
    if not isinstance(text, str) or not text.strip():
        raise fail("invalid_text", 'send {"text": "..."} with something to say')
    if len(text) > MAX_PREVIEW_TEXT:
        raise fail("invalid_text", f"preview text is limited to {MAX_PREVIEW_TEXT} characters")
    return text.strip()


@router.post("/{voice_id}/preview", response_model=None)
async def preview(request: Request, voice_id: str) -> Response:
    """``{"text": "..."}`` (1-500 characters) said by the voice, as ``audio/wav``."""
    from voice_chat.audio.pcm import wav_bytes
    from voice_chat.voicelab.synth_check import synthesize_all

    rt = runtime(request)
    text = _preview_text(await read_json(request))
    await asyncio.to_thread(_get_spec, request, voice_id)

    def speak() -> bytes:  # the cached synthesizer sessions use, on the TTS pool
        synth = rt.synthesizer(voice_id)
        audio, _ = synthesize_all(synth, text)
        return wav_bytes(audio, synth.sample_rate)

    return Response(await synthesized(rt, rt.tts_pool, speak), media_type="audio/wav")


def _flag(request: Request, name: str) -> bool:
    value = request.query_params.get(name, "false").lower()
    if value not in ("1", "true", "yes", "0", "false", "no"):
        raise fail("invalid_field", f"{name} must be true or false")
    return value in ("1", "true", "yes")


def _remove(rt: Runtime, store: VoiceStore, voice_id: str, force: bool) -> list[str]:
    """Delete a user voice; returns what used it (characters, ``voice:<id>`` derived voices)."""
    users = [c.id for c in rt.characters.list() if c.voice == voice_id]
    # cast: VoiceStore's ``list`` method shadows the builtin in its annotations (mypy)
    dependents = cast("list[str]", store.dependents(voice_id))
    store.remove(voice_id, in_use_by=users, force=force)
    return users + [f"voice:{d}" for d in dependents]


@router.delete("/{voice_id}", response_model=None)
async def delete_voice(request: Request, voice_id: str) -> Response:
    """409 ``voice_in_use`` while a character or a derived voice uses it, unless ``?force=true``."""
    rt, store = runtime(request), lab(request).store
    force = _flag(request, "force")
    try:
        await asyncio.to_thread(_get_spec, request, voice_id)
    except VoiceError as exc:
        if exc.code != "invalid_voice":  # a damaged voice file can still be deleted
            raise
    users = await asyncio.to_thread(_remove, rt, store, voice_id, force)
    for vid in [voice_id, *(u.removeprefix("voice:") for u in users if u.startswith("voice:"))]:
        rt.forget_voice(vid)
    return JSONResponse({"id": voice_id, "deleted": True, "was_used_by": users})


@router.post("/{voice_id}/assign", response_model=None)
async def assign_voice(request: Request, voice_id: str) -> Response:
    """``{"character": "<id>"}``: the same as ``PUT /v1/characters/{id}`` with ``{"voice"}``."""
    from voice_chat.server.api.characters import character_json

    rt = runtime(request)
    character_id = (await read_json(request)).get("character")
    if not isinstance(character_id, str) or not character_id:
        raise fail("invalid_field", 'send {"character": "<character id>"}')
    await asyncio.to_thread(_get_spec, request, voice_id)
    character = await asyncio.to_thread(rt.characters.set_voice, character_id, voice_id)
    return JSONResponse(character_json(character))
