"""Conversation memory in SQLite: messages keyed by (user id, character id).

``Store("sqlite:///relative.db")``, ``Store("sqlite:////absolute/path.db")`` (SQLAlchemy-style
URLs), ``Store("sqlite:///:memory:")`` or a ``pathlib.Path``. Other schemes are refused: only
SQLite is built in. The database runs in WAL mode with a busy timeout; schema migrations
(:mod:`.migrations`) are applied on open. One connection is shared behind a lock, so a
``Store`` may be used from any thread (the server calls it through a worker thread).

Failures raise :class:`MemoryStoreError`; a corrupt or foreign file is reported and left
untouched, never deleted or recreated.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .errors import MemoryStoreError
from .migrations import SCHEMA_VERSION, current_version, migrate

ROLES = ("user", "assistant", "system")
MAX_ID_CHARS = 256
MAX_MESSAGE_CHARS = 100_000
_COLUMNS = "id, user_id, character_id, role, text, created_at, edited_at"


@dataclass(frozen=True)
class Message:
    id: int
    user_id: str
    character_id: str
    role: str
    text: str
    created_at: float  # unix seconds
    edited_at: float | None = None  # set by update_text (barge-in truncation)

    @property
    def content(self) -> str:
        return self.text

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def database_path(url: str | Path) -> str:
    """The file path (or ``:memory:``) of a ``sqlite:///`` URL or a ``Path``."""
    if isinstance(url, Path):
        return str(url)
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() != "sqlite" or not rest.startswith("/") or rest == "/":
        raise MemoryStoreError(
            "unsupported_url",
            f"unsupported database URL {url!r}: only SQLite is built in; use "
            "sqlite:///relative/path.db or sqlite:////absolute/path.db",
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


class Store:
    """Thread-safe conversation store. Use as a context manager or call :meth:`close`."""

    def __init__(self, url: str | Path, *, timeout: float = 5.0, check: bool = True) -> None:
        self.path = database_path(url)
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        with self._errors("open"):
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(
                self.path, timeout=timeout, isolation_level=None, check_same_thread=False
            )
            try:
                self._setup(timeout, check)
            except BaseException:
                self._conn.close()
                self._conn = None
                raise

    def _setup(self, timeout: float, check: bool) -> None:
        conn = self._conn
        assert conn is not None
        conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000):d}")
        if check:
            rows = conn.execute("PRAGMA quick_check").fetchall()
            if rows != [("ok",)]:
                detail = "; ".join(str(r[0]) for r in rows[:3])
                raise sqlite3.DatabaseError(f"database disk image is malformed: {detail}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        try:
            migrate(conn)
        except ValueError as exc:
            raise MemoryStoreError("schema_too_new", f"{self.path}: {exc}") from None

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            code = _error_code(exc)
            hint = {
                "corrupt": " (the file was left untouched: restore a backup or move it away)",
                "locked": " (another process holds the database; try again)",
            }.get(code, "")
            message = f"conversation store {self.path!r}: {action} failed: {exc}{hint}"
            raise MemoryStoreError(code, message) from exc
        except OSError as exc:
            raise MemoryStoreError("io_error", f"{self.path!r}: {action}: {exc}") from exc

    @contextmanager
    def _db(self, action: str) -> Iterator[sqlite3.Connection]:
        with self._lock, self._errors(action):
            if self._conn is None:
                raise MemoryStoreError("closed", "the conversation store is closed")
            yield self._conn

    @property
    def schema_version(self) -> int:
        with self._db("read version") as conn:
            return current_version(conn)

    def append(self, user_id: str, character_id: str, role: str, text: str) -> int:
        """Store one message; return its id."""
        _check_ids(user_id, character_id)
        if role not in ROLES:
            raise MemoryStoreError("invalid_argument", f"role must be one of {ROLES}")
        _check_text(text)
        with self._db("append") as conn:
            cursor = conn.execute(
                "INSERT INTO messages (user_id, character_id, role, text, created_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (user_id, character_id, role, text, time.time()),
            )
            return int(cursor.lastrowid or 0)

    def history(self, user_id: str, character_id: str, limit: int | None = None) -> list[Message]:
        """The conversation, oldest first; with ``limit``, only the newest ``limit``."""
        _check_ids(user_id, character_id)
        if limit is not None and limit < 0:
            raise MemoryStoreError("invalid_argument", "limit must be >= 0")
        with self._db("read history") as conn:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM messages WHERE user_id = ? AND character_id = ?"
                " ORDER BY id DESC LIMIT ?",
                (user_id, character_id, -1 if limit is None else limit),
            ).fetchall()
        return [Message(*row) for row in reversed(rows)]

    def update_text(self, message_id: int, text: str) -> None:
        """Replace a message's text (e.g. a reply cut to what the user heard)."""
        _check_text(text)
        with self._db("update") as conn:
            cursor = conn.execute(
                "UPDATE messages SET text = ?, edited_at = ? WHERE id = ?",
                (text, time.time(), message_id),
            )
            if cursor.rowcount == 0:
                raise MemoryStoreError("not_found", f"no message with id {message_id}")

    def delete(self, message_id: int) -> bool:
        """Remove one message (e.g. a user turn that was transcribed again); False if absent."""
        with self._db("delete") as conn:
            return conn.execute("DELETE FROM messages WHERE id = ?", (message_id,)).rowcount > 0

    def reset_character(self, character_id: str) -> int:
        """Forget every user's conversation with a character (it was deleted)."""
        _check_ids("-", character_id)
        with self._db("reset") as conn:
            return conn.execute(
                "DELETE FROM messages WHERE character_id = ?", (character_id,)
            ).rowcount

    def reset(self, user_id: str, character_id: str) -> int:
        """Forget one conversation; return how many messages were deleted."""
        _check_ids(user_id, character_id)
        with self._db("reset") as conn:
            return conn.execute(
                "DELETE FROM messages WHERE user_id = ? AND character_id = ?",
                (user_id, character_id),
            ).rowcount

    def conversation(self, user_id: str, character_id: str) -> dict[str, Any]:
        """JSON-ready view of one conversation for the HTTP API."""
        messages = self.history(user_id, character_id)
        return {
            "user_id": user_id,
            "character_id": character_id,
            "message_count": len(messages),
            "messages": [m.to_dict() for m in messages],
        }

    def close(self) -> None:
        """Close the database (idempotent)."""
        with self._lock:
            if self._conn is not None:
                conn, self._conn = self._conn, None
                with self._errors("close"):
                    conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _check_ids(user_id: str, character_id: str) -> None:
    for name, value in (("user_id", user_id), ("character_id", character_id)):
        if not isinstance(value, str) or not value or len(value) > MAX_ID_CHARS:
            raise MemoryStoreError(
                "invalid_argument", f"{name} must be a non-empty string <= {MAX_ID_CHARS}"
            )


def _check_text(text: str) -> None:
    if not isinstance(text, str) or len(text) > MAX_MESSAGE_CHARS:
        raise MemoryStoreError(
            "invalid_argument", f"text must be a string of <= {MAX_MESSAGE_CHARS} chars"
        )


__all__ = ["SCHEMA_VERSION", "Message", "Store", "database_path"]
