"""The one exception type of the conversation store."""

from __future__ import annotations

from voice_chat.errors import VoiceChatError


class MemoryStoreError(VoiceChatError, RuntimeError):
    """The conversation store cannot do what was asked. Nothing was silently lost.

    ``code`` is one of: ``unsupported_url`` (not ``sqlite:///...``), ``corrupt`` (the file is
    not a valid SQLite database; it is left untouched), ``locked`` (another process holds the
    database past the busy timeout), ``schema_too_new`` (written by a newer version),
    ``migration_failed``, ``invalid_argument``, ``not_found``, ``closed``, ``io_error``.
    """
