"""``/v1/presets``: the LLM presets (the model ladder), and switching the model at run time.

``GET /v1/presets`` lists every preset with whether it is installed, and the model in use.
``PUT /v1/presets/current`` with ``{"preset": "quality"}`` (or ``{"model": "/path/x.gguf"}``)
loads the new model in a worker thread while the old one keeps serving; only a model that
loaded replaces it. Unknown presets, missing packages and GGUF files that do not load are
answered with a 4xx saying why, and nothing changes.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError

from voice_chat.engines.base import EngineError
from voice_chat.engines.presets import PRESETS, preset_for_model, unknown_preset
from voice_chat.runtime.local import load_llm
from voice_chat.server.api.deps import error, runtime

router = APIRouter(prefix="/v1/presets", tags=["presets"])
_switching = asyncio.Lock()


def _state(request: Request) -> dict[str, Any]:
    rt = runtime(request)
    s = rt.settings
    model = s.llm_model if s.llm_engine == "llama" else f"{s.llm_engine}:{s.llm_model}"
    return {
        "current": preset_for_model(s.llm_model) if s.llm_engine == "llama" else None,
        "model": model,
        "threads": s.llm_threads,
        "presets": [p.describe() for p in PRESETS.values()],
    }


@router.get("")
async def list_presets(request: Request) -> dict[str, Any]:
    return await asyncio.to_thread(_state, request)  # find_spec reads the file system


@router.put("/current", response_model=None)
async def switch(request: Request) -> Response:
    rt = runtime(request)
    try:
        body = json.loads(await request.body() or b"{}")
    except (ValueError, RecursionError):
        return error(400, "invalid_json", 'send {"preset": "fast"} or {"model": "/path.gguf"}')
    if not isinstance(body, dict) or not ({"preset", "model"} & body.keys()):
        return error(422, "invalid_field", 'send {"preset": "fast"} or {"model": "/path.gguf"}')
    preset, model = body.get("preset"), body.get("model")
    if preset is not None and (not isinstance(preset, str) or preset not in PRESETS):
        return error(422, "unknown_preset", unknown_preset(str(preset)))
    if model is not None and not isinstance(model, str):
        return error(422, "invalid_field", "model must be a string: a .gguf path")
    if preset is not None and PRESETS[preset].missing():
        how = PRESETS[preset].install
        return error(409, "preset_not_installed", f"preset {preset} is not installed: {how}")
    changes: dict[str, Any] = {"llm_engine": "llama"}
    if preset is not None:
        changes |= {"llm_preset": preset, "llm_model": PRESETS[preset].model}
        changes["llm_threads"] = PRESETS[preset].threads
    if model is not None:
        changes["llm_model"] = model
    try:
        settings = type(rt.settings)(**{**rt.settings.model_dump(), **changes})
    except ValidationError as exc:
        return error(422, "invalid_field", str(exc.errors()[0]["msg"]))
    if _switching.locked():
        return error(409, "switch_in_progress", "another model is loading; try again shortly")
    async with _switching:
        try:
            llm = await asyncio.to_thread(load_llm, settings)
        except EngineError as exc:
            return error(422, "model_failed", f"{exc}; still serving {rt.settings.llm_model}")
        except Exception as exc:  # noqa: BLE001 - any load failure leaves the old model serving
            return error(422, "model_failed", f"{exc}; still serving {rt.settings.llm_model}")
        rt.llm, rt.settings = llm, settings
    return JSONResponse(await asyncio.to_thread(_state, request))
