"""The one exception type of the card library.

Every problem with an uploaded card (broken JSON, wrong spec, oversized field, unsafe PNG or
zip, bad regex, ...) raises :class:`CardError`. Its ``code`` is a short machine-readable string
and ``status`` the HTTP status the server should answer with (always 4xx).
"""

from __future__ import annotations

MAX_MESSAGE_CHARS = 300

#: code -> HTTP status. Codes not listed map to 422 (Unprocessable Entity).
STATUS_BY_CODE: dict[str, int] = {
    "invalid_json": 400,
    "too_large": 413,
    "image_too_large": 413,
    "zip_too_many_files": 413,
    "zip_bomb": 413,
    "unknown_format": 415,
}


class CardError(ValueError):
    """A card could not be imported, exported or used. Nothing was partially kept."""

    def __init__(self, code: str, message: str) -> None:
        if len(message) > MAX_MESSAGE_CHARS:  # never echo a huge hostile value back
            message = message[: MAX_MESSAGE_CHARS - 3] + "..."
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def status(self) -> int:
        """HTTP status for this error (400, 413, 415 or 422)."""
        return STATUS_BY_CODE.get(self.code, 422)

    def to_dict(self) -> dict[str, str]:
        """``{"code": ..., "message": ...}`` for an API error body."""
        return {"code": self.code, "message": self.message}

    def __repr__(self) -> str:
        return f"CardError({self.code!r}, {self.message!r})"
