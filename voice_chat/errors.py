"""The one error tree of voice_chat, and the one map from error codes to HTTP statuses.

Every expected failure is a :class:`VoiceChatError` subclass: ``code`` is a short
machine-readable string, ``message`` says what was wrong and what to do. Each package keeps its
own subclass (``CardError``, ``CharacterError``, ``VoiceError``, ``EngineError``,
``MemoryStoreError``, the HTTP API's ``ApiError``), so callers can catch just one kind. The HTTP
API has one exception handler (``voice_chat.server.api.deps.api_error``) that answers any of them
with ``{"error": {"code", "message"}}`` and :attr:`VoiceChatError.status`.

This module imports nothing from voice_chat, so every layer can use it.
"""

from __future__ import annotations

#: code -> HTTP status, for every code the HTTP API can answer with. A code not listed gets the
#: class's ``default_status`` (a card: 422, everything else: 400), e.g. ``invalid_field`` is 422
#: for a card field and 400 for a field of a voice request.
HTTP_STATUS: dict[str, int] = {
    # requests (any resource)
    "invalid_request": 400,  # a bad query parameter
    "invalid_upload": 400,  # a malformed body or multipart form, an unexpected field
    "empty_upload": 400,  # no card in the body
    "missing_field": 400,
    "invalid_text": 400,  # preview text empty or too long
    "invalid_format": 400,  # export format not one of v2, v3, png, charx
    "too_large": 413,  # a body or an upload over its size limit (refused before it is read)
    "unsupported_file": 415,
    "storage_error": 500,  # the disk failed; nothing was kept
    "internal_error": 500,  # an unexpected failure; nothing was kept
    # cards (CardError; other card codes are 422)
    "invalid_json": 400,
    "image_too_large": 413,
    "zip_too_many_files": 413,
    "zip_bomb": 413,
    "unknown_format": 415,
    # characters (CharacterError)
    "unknown_character": 404,
    "no_avatar": 404,
    "no_voice_sample": 404,
    "shipped_character": 403,
    "broken_character": 500,
    "invalid_fields": 400,  # the page's character fields: not an object, unknown key, not text
    "missing_name": 422,
    "field_too_long": 422,
    "greeting_too_long": 422,
    "too_many_greetings": 422,
    "invalid_picture": 415,  # not an image, or one that cannot be decoded
    "picture_too_large": 413,
    "picture_bomb": 413,  # a header claiming far more pixels than a picture needs
    # voices (VoiceError)
    "invalid_name": 400,  # empty name, path characters, nothing left after sanitising
    "invalid_params": 400,  # unknown parameter, out of range, missing base/blend
    "unknown_kind": 400,  # kind not in KINDS
    "missing_file": 400,  # a required upload is absent
    "invalid_model": 422,  # ONNX/JSON/checkpoint unreadable or not matching each other
    "invalid_audio": 422,  # not a WAV, too short/long, silence, no speech
    "synthesis_failed": 422,  # test synthesis produced an error, silence or NaNs
    "unknown_voice": 404,  # no such voice (also an unknown base voice)
    "voice_exists": 409,  # the id is taken (or being registered right now)
    "voice_in_use": 409,  # delete refused: characters or derived voices use it
    "voice_shipped": 403,  # shipped voices cannot be deleted or replaced
    "engine_unavailable": 501,  # the engine (e.g. Coqui) is not installed here
    "invalid_voice": 500,  # a stored voice file that no longer parses
    # engines (EngineError)
    "engine_failed": 422,
    # conversation memory (MemoryStoreError, reported by the API as memory_unavailable)
    "memory_unavailable": 503,
    # security (server/security.py, server/auth.py, server/limits.py; docs/security.md)
    "host_not_allowed": 421,
    "origin_not_allowed": 403,
    "auth_required": 401,
    "invalid_key": 401,
    "invalid_token": 401,
    "token_expired": 401,
    "forbidden": 403,
    "key_required": 403,
    "auth_off": 400,
    "auth_unavailable": 503,
    "rate_limited": 429,
    "too_many_sessions": 429,
    "not_found": 404,
}


class VoiceChatError(Exception):
    """An expected failure with a ``code`` and a ``message`` for people.

    ``status`` overrides the HTTP status of :data:`HTTP_STATUS` where one request gives a code
    another meaning (an unknown voice named in a character upload is 422, not 404).
    """

    default_status = 400

    def __init__(self, code: str, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self._status = status

    @property
    def status(self) -> int:
        """The HTTP status the API answers this error with."""
        if self._status is not None:
            return self._status
        return HTTP_STATUS.get(self.code, self.default_status)

    def to_dict(self) -> dict[str, str]:
        """``{"code": ..., "message": ...}`` for an API error body."""
        return {"code": self.code, "message": self.message}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code!r}, {self.message!r})"


def status_for(error: VoiceChatError) -> int:
    return error.status


__all__ = ["HTTP_STATUS", "VoiceChatError", "status_for"]
