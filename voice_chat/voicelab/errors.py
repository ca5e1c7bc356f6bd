"""Error codes of voice registration and the HTTP status each maps to.

Every failure is a ``voice_chat.engines.voices.VoiceError(code, message)``; the message says
what was wrong and what to do. The server maps ``code`` to a status with :data:`HTTP_STATUS`.
"""

from __future__ import annotations

from voice_chat.engines.voices import VoiceError

HTTP_STATUS: dict[str, int] = {
    "invalid_name": 400,  # empty name, path characters, nothing left after sanitising
    "invalid_params": 400,  # unknown parameter, out of range, missing base/blend
    "unknown_kind": 400,  # kind not in KINDS
    "missing_file": 400,  # a required upload is absent
    "too_large": 413,  # an upload over its size limit
    "invalid_model": 422,  # ONNX/JSON/checkpoint unreadable or not matching each other
    "invalid_audio": 422,  # not a WAV, too short/long, silence, no speech
    "synthesis_failed": 422,  # test synthesis produced an error, silence or NaNs
    "unknown_voice": 404,  # no such voice (also an unknown base voice)
    "voice_exists": 409,  # the id is taken (or being registered right now)
    "voice_in_use": 409,  # delete refused: characters or derived voices use it
    "voice_shipped": 403,  # shipped voices cannot be deleted or replaced
    "engine_unavailable": 501,  # the engine (e.g. Coqui) is not installed here
    "internal_error": 500,  # an unexpected failure; nothing was kept
}


def status_for(error: VoiceError) -> int:
    return HTTP_STATUS.get(error.code, 400)


__all__ = ["HTTP_STATUS", "VoiceError", "status_for"]
