"""Numbered schema migrations for every backend. Append only: never edit one that has shipped.

``MIGRATIONS[n - 1]`` brings the database from version ``n - 1`` to ``n``. Each migration runs
in one transaction together with the version bump (SQLite and PostgreSQL both have
transactional DDL), so a failure leaves the database at the previous version, and concurrent
servers opening the same database migrate it once.

A statement is a template in the SQL both engines speak, with three column types filled in
per dialect: ``{id}`` (an auto-increment integer primary key), ``{float}`` (a double) and
``{bytes}`` (a binary string). Where the engines really differ, give a dict of
``{"sqlite": ..., "postgresql": ...}`` instead of a string.
"""

from __future__ import annotations

from typing import Any, ClassVar

from .backend import Connection, Dialect

Statement = str | dict[str, str]

MIGRATIONS: list[list[Statement]] = [
    # 1: messages keyed by (user, character)
    [
        """CREATE TABLE messages (
            id {id},
            user_id TEXT NOT NULL,
            character_id TEXT NOT NULL,
            role TEXT NOT NULL CHECK (role IN ('user', 'assistant', 'system')),
            text TEXT NOT NULL,
            created_at {float} NOT NULL
        )""",
        "CREATE INDEX messages_by_conversation ON messages (user_id, character_id, id)",
    ],
    # 2: when a stored reply was cut to what was heard (barge-in truncation)
    ["ALTER TABLE messages ADD COLUMN edited_at {float}"],
    # 3: API keys (memory/keys.py): only a SHA-256 of each key is stored
    [
        """CREATE TABLE api_keys (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            role TEXT NOT NULL CHECK (role IN ('admin', 'user')),
            user_id TEXT NOT NULL,
            key_hash TEXT NOT NULL,
            created_at {float} NOT NULL,
            revoked_at {float}
        )""",
    ],
    # 4: several conversations per (user, character); the messages so far are 'default'
    [
        "ALTER TABLE messages ADD COLUMN conversation_id TEXT NOT NULL DEFAULT 'default'",
        "CREATE INDEX messages_by_conversation_id"
        " ON messages (user_id, character_id, conversation_id, id)",
        "CREATE INDEX messages_by_user ON messages (user_id, id)",
    ],
    # 5: what the user told a character about themselves (name, facts), append-only
    [
        """CREATE TABLE user_memory (
            id {id},
            user_id TEXT NOT NULL,
            character_id TEXT NOT NULL,
            kind TEXT NOT NULL,
            value TEXT NOT NULL,
            created_at {float} NOT NULL
        )""",
        "CREATE INDEX user_memory_by_conversation ON user_memory (user_id, character_id, id)",
    ],
]

SCHEMA_VERSION = len(MIGRATIONS)


def statements(number: int, dialect: Dialect) -> list[str]:
    """Migration ``number``'s SQL for ``dialect``."""
    out = []
    for statement in MIGRATIONS[number - 1]:
        text = statement[dialect.name] if isinstance(statement, dict) else statement
        out.append(text.format_map(dialect.types))
    return out


def current_version(conn: Any, dialect: Dialect | None = None) -> int:
    return (dialect or SQLITE).version(conn)


def migrate(
    conn: Connection, target: int | None = None, dialect: Dialect | None = None
) -> list[int]:
    """Apply pending migrations up to ``target`` (default: all); return the versions applied.

    ``conn`` must be in autocommit mode; ``dialect`` defaults to SQLite (so a plain
    ``sqlite3`` connection with ``isolation_level=None`` works). Raises the engine's error
    (the failing migration is rolled back) or ``ValueError`` when the database is newer than
    this code.
    """
    dialect = dialect or SQLITE
    target = len(MIGRATIONS) if target is None else target
    version = dialect.version(conn)
    if version > len(MIGRATIONS):
        raise ValueError(f"database schema version {version} is newer than {len(MIGRATIONS)}")
    applied = []
    for number in range(version + 1, target + 1):
        dialect.begin(conn)
        try:
            if dialect.version(conn) >= number:  # another server migrated meanwhile
                conn.execute("ROLLBACK")
                continue
            for sql in statements(number, dialect):
                conn.execute(sql)
            dialect.set_version(conn, number)
            conn.execute("COMMIT")
        except BaseException:
            _rollback(conn)
            raise
        applied.append(number)
    return applied


def _rollback(conn: Connection) -> None:
    try:
        conn.execute("ROLLBACK")
    except Exception:  # noqa: BLE001 - no transaction left to roll back (or the link is gone)
        pass


class SQLiteDialect:
    """SQLite's side of the migrations: the version lives in ``PRAGMA user_version``."""

    name = "sqlite"
    types: ClassVar[dict[str, str]] = {
        "id": "INTEGER PRIMARY KEY AUTOINCREMENT",
        "float": "REAL",
        "bytes": "BLOB",
    }

    def version(self, conn: Connection) -> int:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])

    def begin(self, conn: Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")  # the write lock: other migrators wait

    def set_version(self, conn: Connection, version: int) -> None:
        conn.execute(f"PRAGMA user_version = {int(version):d}")


SQLITE = SQLiteDialect()
