"""The one exception type of the conversation store."""

from __future__ import annotations


class MemoryStoreError(RuntimeError):
    """The conversation store cannot do what was asked. Nothing was silently lost.

    ``code`` is one of: ``unsupported_url`` (not ``sqlite:///...``), ``corrupt`` (the file is
    not a valid SQLite database; it is left untouched), ``locked`` (another process holds the
    database past the busy timeout), ``schema_too_new`` (written by a newer version),
    ``migration_failed``, ``invalid_argument``, ``not_found``, ``closed``, ``io_error``.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __repr__(self) -> str:
        return f"MemoryStoreError({self.code!r}, {self.message!r})"
