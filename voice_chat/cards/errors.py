"""The one exception type of the card library.

Every problem with an uploaded card (broken JSON, wrong spec, oversized field, unsafe PNG or
zip, bad regex, ...) raises :class:`CardError`. Its ``code`` is a short machine-readable string
and ``status`` the HTTP status the server should answer with (always 4xx; see
:data:`voice_chat.errors.HTTP_STATUS`, codes not listed there are 422).
"""

from __future__ import annotations

from voice_chat.errors import VoiceChatError

MAX_MESSAGE_CHARS = 300


class CardError(VoiceChatError, ValueError):
    """A card could not be imported, exported or used. Nothing was partially kept."""

    default_status = 422  # Unprocessable Entity

    def __init__(self, code: str, message: str, *, status: int | None = None) -> None:
        if len(message) > MAX_MESSAGE_CHARS:  # never echo a huge hostile value back
            message = message[: MAX_MESSAGE_CHARS - 3] + "..."
        super().__init__(code, message, status=status)
