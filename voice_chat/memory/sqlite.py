"""The embedded backend: one SQLite file in WAL mode (the default, for a single server).

``sqlite:///relative.db``, ``sqlite:////absolute/path.db`` (SQLAlchemy-style URLs),
``sqlite:///:memory:`` or a ``pathlib.Path``. The file is checked (``PRAGMA quick_check``) and
migrated on open; a corrupt or foreign file is reported and left untouched, never deleted or
recreated. The schema version lives in ``PRAGMA user_version``.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from .backend import Backend
from .errors import MemoryStoreError
from .migrations import SQLITE, migrate


def database_path(url: str | Path) -> str:
    """The file path (or ``:memory:``) of a ``sqlite:///`` URL or a ``Path``."""
    if isinstance(url, Path):
        return str(url)
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() != "sqlite" or not rest.startswith("/") or rest == "/":
        raise MemoryStoreError(
            "unsupported_url",
            f"unsupported SQLite URL {url!r}: use sqlite:///relative/path.db or "
            "sqlite:////absolute/path.db",
        )
    return rest[1:]


def _error_code(exc: sqlite3.Error) -> str:
    name = getattr(exc, "sqlite_errorname", "") or ""
    text = str(exc).lower()
    if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")) or "not a database" in text:
        return "corrupt"
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "locked" in text:
        return "locked"
    return "io_error"


HINTS = {
    "corrupt": " (the file was left untouched: restore a backup or move it away)",
    "locked": " (another process holds the database; try again)",
}


class SQLiteBackend(Backend):
    dialect = SQLITE

    def __init__(self, url: str | Path, *, timeout: float = 5.0, check: bool = True) -> None:
        self.path = database_path(url)
        self.where = repr(self.path)
        try:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            self._conn: sqlite3.Connection | None = sqlite3.connect(
                self.path, timeout=timeout, isolation_level=None, check_same_thread=False
            )
        except (sqlite3.Error, OSError) as exc:
            raise self._wrap(exc, "open") from exc
        try:
            self._setup(timeout, check)
        except BaseException as exc:
            self._conn.close()
            self._conn = None
            if isinstance(exc, sqlite3.Error):
                raise self._wrap(exc, "open") from exc
            raise

    def _setup(self, timeout: float, check: bool) -> None:
        conn = self.connection()
        conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000):d}")
        if check:
            rows = conn.execute("PRAGMA quick_check").fetchall()
            if rows != [("ok",)]:
                detail = "; ".join(str(r[0]) for r in rows[:3])
                raise sqlite3.DatabaseError(f"database disk image is malformed: {detail}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        try:
            migrate(conn, dialect=SQLITE)
        except ValueError as exc:
            raise MemoryStoreError("schema_too_new", f"{self.path}: {exc}") from None

    def connection(self) -> Any:
        if self._conn is None:
            raise MemoryStoreError("closed", "the conversation store is closed")
        return self._conn

    def _wrap(self, exc: Exception, action: str) -> MemoryStoreError:
        if isinstance(exc, OSError):
            return MemoryStoreError("io_error", f"{self.where}: {action}: {exc}")
        assert isinstance(exc, sqlite3.Error)
        code = _error_code(exc)
        message = f"conversation store {self.where}: {action} failed: {exc}{HINTS.get(code, '')}"
        return MemoryStoreError(code, message)

    def translate(self, exc: Exception, action: str) -> MemoryStoreError | None:
        if isinstance(exc, sqlite3.Error | OSError):
            return self._wrap(exc, action)
        return None

    def close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            conn.close()
