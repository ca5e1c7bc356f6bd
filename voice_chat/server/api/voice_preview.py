"""``POST /v1/voices/preview``: hear a derived or blended voice before registering it.

Powers the voice lab's sliders: nothing is stored, the voice is built, speaks, and is gone.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from voice_chat.audio.pcm import wav_bytes
from voice_chat.engines.base import EngineError
from voice_chat.engines.tts import build_synthesizer
from voice_chat.engines.voices import VoiceError
from voice_chat.server.api.deps import error, runtime
from voice_chat.voicelab.errors import status_for
from voice_chat.voicelab.kinds import check_params, make_spec

router = APIRouter(prefix="/v1/voices", tags=["voices"])
ENGINES = {"derived": "derived", "blend": "kokoro", "kokoro": "kokoro"}


class PreviewRequest(BaseModel):
    kind: Literal["derived", "blend", "kokoro"]
    params: dict[str, Any] = Field(default_factory=dict)
    text: str = Field("Hello! This is how I sound.", min_length=1, max_length=500)


@router.post("/preview", response_model=None)
async def preview_unsaved(request: Request, body: PreviewRequest) -> Response | JSONResponse:
    rt = runtime(request)
    try:
        check_params(body.kind, body.params)
        head = {"id": "preview", "name": "Preview", "engine": ENGINES[body.kind]}
        spec = make_spec({**head, **body.params})
    except VoiceError as exc:
        return error(status_for(exc), exc.code, str(exc))

    def speak() -> bytes:
        synth = build_synthesizer(spec, rt.voices.get, rt.settings.tts_threads)
        parts = list(synth.synthesize(body.text))
        audio = np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)
        return wav_bytes(audio, synth.sample_rate)

    try:
        data = await rt.run(rt.tts_pool, speak)
    except (EngineError, VoiceError) as exc:
        return error(422, getattr(exc, "code", "synthesis_failed"), str(exc))
    return Response(data, media_type="audio/wav")
