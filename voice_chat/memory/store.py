"""Conversation memory: messages keyed by (user, character, conversation), in SQLite or PostgreSQL.

A user has any number of conversations with a character, each named by a conversation id
(:data:`CONVERSATION_ID`); :data:`DEFAULT_CONVERSATION` is the one used when none is named, and
holds every message stored before conversations had ids.

``Store(url)`` picks the backend by the URL's scheme (:data:`voice_chat.memory.backend.BACKENDS`):
``sqlite:///relative.db``, ``sqlite:////absolute/path.db``, ``sqlite:///:memory:`` or a
``pathlib.Path`` for the embedded file (:mod:`.sqlite`), ``postgresql://user:pw@host/db`` for
a database that several servers share (:mod:`.postgres`). Schema migrations
(:mod:`.migrations`) are applied on open. Calls are serialised behind a lock, so a ``Store``
may be used from any thread (the server calls it through a worker thread). Every write is one
statement (or one transaction) and so atomic.

Failures raise :class:`MemoryStoreError`; a corrupt or foreign file is reported and left
untouched, never deleted or recreated.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .backend import Backend, Connection, open_backend
from .errors import MemoryStoreError
from .migrations import SCHEMA_VERSION
from .sqlite import SQLiteBackend, database_path

ROLES = ("user", "assistant", "system")
MEMORY_KINDS = ("name", "fact")
MAX_ID_CHARS = 256
MAX_MESSAGE_CHARS = 100_000
_COLUMNS = "id, user_id, character_id, role, text, created_at, edited_at, conversation_id"
DEFAULT_CONVERSATION = "default"
CONVERSATION_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
MAX_LISTED = 200


@dataclass(frozen=True)
class Message:
    id: int
    user_id: str
    character_id: str
    role: str
    text: str
    created_at: float  # unix seconds
    edited_at: float | None = None  # set by update_text (barge-in truncation)
    conversation_id: str = DEFAULT_CONVERSATION

    @property
    def content(self) -> str:
        return self.text

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Store:
    """Thread-safe conversation store. Use as a context manager or call :meth:`close`."""

    def __init__(self, url: str | Path, *, timeout: float = 5.0, check: bool = True) -> None:
        self._lock = threading.RLock()
        self.backend: Backend = (
            SQLiteBackend(url, timeout=timeout, check=check)
            if isinstance(url, Path)
            else open_backend(url, timeout=timeout, check=check)
        )
        self.where = self.backend.where
        self.error: MemoryStoreError | None = None  # the last call's failure, None once one works

    @contextmanager
    def _db(self, action: str) -> Iterator[Connection]:
        with self._errors(action):
            yield self.backend.connection()

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        with self._lock:
            try:
                yield
            except MemoryStoreError as exc:
                self._failed(exc)
                raise
            except Exception as exc:
                mapped = self.backend.translate(exc, action)
                if mapped is None:
                    raise
                self._failed(mapped)
                raise mapped from exc
            self.error = None

    def _failed(self, exc: MemoryStoreError) -> None:
        if exc.code not in ("invalid_argument", "not_found"):  # not the database's fault
            self.error = exc

    def connection(self, action: str) -> AbstractContextManager[Connection]:
        """The locked connection, errors mapped to :class:`MemoryStoreError` (for
        :mod:`.keys`, which shares this database). SQL uses ``?`` placeholders."""
        return self._db(action)

    @property
    def schema_version(self) -> int:
        with self._db("read version") as conn:
            return self.backend.dialect.version(conn)

    def append(
        self,
        user_id: str,
        character_id: str,
        role: str,
        text: str,
        conversation: str = DEFAULT_CONVERSATION,
    ) -> int:
        """Store one message; return its id."""
        _check_ids(user_id, character_id, conversation)
        if role not in ROLES:
            raise MemoryStoreError("invalid_argument", f"role must be one of {ROLES}")
        text = _check_text(text)
        with self._db("append") as conn:
            row = conn.execute(
                "INSERT INTO messages"
                " (user_id, character_id, conversation_id, role, text, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                (user_id, character_id, conversation, role, text, time.time()),
            ).fetchone()
            return int(row[0])

    def history(
        self,
        user_id: str,
        character_id: str,
        limit: int | None = None,
        conversation: str = DEFAULT_CONVERSATION,
    ) -> list[Message]:
        """The conversation, oldest first; with ``limit``, only the newest ``limit``."""
        _check_ids(user_id, character_id, conversation)
        if limit is not None and limit < 0:
            raise MemoryStoreError("invalid_argument", "limit must be >= 0")
        query = (
            f"SELECT {_COLUMNS} FROM messages"
            " WHERE user_id = ? AND character_id = ? AND conversation_id = ?"
        )
        params: tuple[object, ...] = (user_id, character_id, conversation)
        if limit is not None:
            query, params = query + " ORDER BY id DESC LIMIT ?", (*params, limit)
        else:
            query += " ORDER BY id DESC"
        with self._db("read history") as conn:
            rows = conn.execute(query, params).fetchall()
        return [Message(*row) for row in reversed(rows)]

    def remember(self, user_id: str, character_id: str, kind: str, value: str) -> int:
        """Keep one fact about the user (``kind`` ``name`` or ``fact``); return its id."""
        _check_ids(user_id, character_id)
        if kind not in MEMORY_KINDS or not isinstance(value, str) or not value.strip():
            raise MemoryStoreError("invalid_argument", f"memory kinds: {MEMORY_KINDS}, with text")
        value = _check_text(value)
        with self._db("remember") as conn:
            row = conn.execute(
                "INSERT INTO user_memory (user_id, character_id, kind, value, created_at)"
                " VALUES (?, ?, ?, ?, ?) RETURNING id",
                (user_id, character_id, kind, value, time.time()),
            ).fetchone()
            return int(row[0])

    def memory(self, user_id: str, character_id: str) -> tuple[list[tuple[str, str]], list[str]]:
        """The facts kept about a user, oldest first, and a note for each corrupt row.

        A row that cannot be read as a fact (unknown kind, empty or non-text value) is left
        as it is, skipped and reported: never overwritten, never fatal.
        """
        _check_ids(user_id, character_id)
        with self._db("read memory") as conn:
            rows = conn.execute(
                "SELECT id, kind, value FROM user_memory WHERE user_id = ? AND character_id = ?"
                " ORDER BY id",
                (user_id, character_id),
            ).fetchall()
        facts, corrupt = [], []
        for row_id, kind, value in rows:
            if kind in MEMORY_KINDS and isinstance(value, str) and value.strip():
                if len(value) <= MAX_MESSAGE_CHARS:
                    facts.append((kind, value))
                    continue
            corrupt.append(f"memory row {row_id} is corrupt ({kind!r}: {str(value)[:40]!r})")
        return facts, corrupt

    def update_text(self, message_id: int, text: str) -> None:
        """Replace a message's text (e.g. a reply cut to what the user heard)."""
        text = _check_text(text)
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
        with self._db("reset") as conn, _transaction(conn):
            conn.execute("DELETE FROM user_memory WHERE character_id = ?", (character_id,))
            return conn.execute(
                "DELETE FROM messages WHERE character_id = ?", (character_id,)
            ).rowcount

    def reset(
        self, user_id: str, character_id: str, conversation: str = DEFAULT_CONVERSATION
    ) -> int:
        """Forget one conversation; return how many messages were deleted."""
        _check_ids(user_id, character_id, conversation)
        with self._db("reset") as conn, _transaction(conn):
            deleted = conn.execute(
                "DELETE FROM messages"
                " WHERE user_id = ? AND character_id = ? AND conversation_id = ?",
                (user_id, character_id, conversation),
            ).rowcount
            left = conn.execute(
                "SELECT COUNT(*) FROM messages WHERE user_id = ? AND character_id = ?",
                (user_id, character_id),
            ).fetchone()[0]
            if not left:  # the memory belongs to the user's talks with the character
                conn.execute(
                    "DELETE FROM user_memory WHERE user_id = ? AND character_id = ?",
                    (user_id, character_id),
                )
            return deleted

    def conversation(
        self, user_id: str, character_id: str, conversation: str = DEFAULT_CONVERSATION
    ) -> dict[str, Any]:
        """JSON-ready view of one conversation for the HTTP API."""
        messages = self.history(user_id, character_id, conversation=conversation)
        facts, _ = self.memory(user_id, character_id)
        return {
            "user_id": user_id,
            "character_id": character_id,
            "conversation_id": conversation,
            "message_count": len(messages),
            "messages": [m.to_dict() for m in messages],
            "memory": [{"kind": k, "value": v} for k, v in facts],
        }

    def conversations(self, user_id: str, limit: int = MAX_LISTED) -> list[dict[str, Any]]:
        """A user's conversations, the most recent first, each with its last message."""
        _check_ids(user_id, "-")
        with self._db("list conversations") as conn:
            rows = conn.execute(
                "SELECT character_id, conversation_id, COUNT(*), MAX(id), MIN(created_at),"
                " MAX(created_at) FROM messages WHERE user_id = ?"
                " GROUP BY character_id, conversation_id ORDER BY MAX(id) DESC LIMIT ?",
                (user_id, max(0, min(limit, MAX_LISTED))),
            ).fetchall()
            last: dict[int, tuple[str, str]] = {}
            if rows:
                marks = ", ".join("?" for _ in rows)
                found = conn.execute(
                    f"SELECT id, role, text FROM messages WHERE id IN ({marks})",
                    tuple(int(r[3]) for r in rows),
                ).fetchall()
                last = {int(i): (role, text) for i, role, text in found}
        out = []
        for character_id, conversation_id, count, last_id, started, updated in rows:
            role, text = last.get(int(last_id), ("assistant", ""))
            out.append(
                {
                    "character_id": character_id,
                    "conversation_id": conversation_id,
                    "message_count": int(count),
                    "started_at": float(started),
                    "updated_at": float(updated),
                    "last_message": {"role": role, "text": text[:500]},
                }
            )
        return out

    def close(self) -> None:
        """Close the database (idempotent)."""
        with self._errors("close"):
            self.backend.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextmanager
def _transaction(conn: Connection) -> Iterator[None]:
    """Several statements as one write (forgetting a conversation and its memory)."""
    conn.execute("BEGIN")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _check_ids(user_id: str, character_id: str, conversation: str = DEFAULT_CONVERSATION) -> None:
    for name, value in (("user_id", user_id), ("character_id", character_id)):
        if not isinstance(value, str) or not value or len(value) > MAX_ID_CHARS:
            raise MemoryStoreError(
                "invalid_argument", f"{name} must be a non-empty string <= {MAX_ID_CHARS}"
            )
    if not isinstance(conversation, str) or not CONVERSATION_ID.match(conversation):
        raise MemoryStoreError(
            "invalid_argument", "conversation: 1-64 lower-case letters, digits, _ or -"
        )


def _check_text(text: str) -> str:
    if not isinstance(text, str) or len(text) > MAX_MESSAGE_CHARS:
        raise MemoryStoreError(
            "invalid_argument", f"text must be a string of <= {MAX_MESSAGE_CHARS} chars"
        )
    return text.replace("\x00", "")  # PostgreSQL text cannot hold NUL; speech never has one


__all__ = [
    "CONVERSATION_ID",
    "DEFAULT_CONVERSATION",
    "SCHEMA_VERSION",
    "Message",
    "Store",
    "database_path",
]
