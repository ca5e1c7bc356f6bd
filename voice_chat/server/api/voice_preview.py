"""``POST /v1/voices/preview``: hear a derived or blended voice before registering it.

Powers the voice lab's sliders: nothing is stored, the voice is built, speaks, and is gone.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from voice_chat.audio.pcm import wav_bytes
from voice_chat.engines.tts import build_synthesizer
from voice_chat.engines.voices import VoiceError
from voice_chat.server.api.deps import runtime, synthesized
from voice_chat.voicelab.kinds import check_params, make_spec

router = APIRouter(prefix="/v1/voices", tags=["voices"])
ENGINES = {"derived": "derived", "blend": "kokoro", "kokoro": "kokoro"}


class PreviewRequest(BaseModel):
    kind: Literal["derived", "blend", "kokoro"]
    params: dict[str, Any] = Field(default_factory=dict)
    text: str = Field("Hello! This is how I sound.", min_length=1, max_length=500)


@router.post("/preview", response_model=None)
async def preview_unsaved(request: Request, body: PreviewRequest) -> Response:
    rt = runtime(request)
    check_params(body.kind, body.params)
    head = {"id": "preview", "name": "Preview", "engine": ENGINES[body.kind]}
    spec = make_spec({**head, **body.params})

    def speak() -> bytes:
        synth = build_synthesizer(spec, rt.voices.get, rt.settings.tts_threads)
        parts = list(synth.synthesize(body.text))
        audio = np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)
        return wav_bytes(audio, synth.sample_rate)

    try:
        data = await synthesized(rt, rt.tts_pool, speak)
    except VoiceError as exc:  # e.g. an unknown base voice: the parameters cannot be spoken
        raise VoiceError(exc.code, exc.message, status=422) from exc
    return Response(data, media_type="audio/wav")
