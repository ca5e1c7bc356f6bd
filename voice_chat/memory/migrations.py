"""Numbered schema migrations. Append only: never edit a migration that has shipped.

``MIGRATIONS[n - 1]`` brings the database from version ``n - 1`` to ``n``. The version is kept
in ``PRAGMA user_version``; each migration runs in its own transaction together with the
version bump, so a failure leaves the database at the previous version.
"""

from __future__ import annotations

import sqlite3

MIGRATIONS: list[list[str]] = [
    # 1: messages keyed by (user, character)
    [
        """CREATE TABLE messages (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            user_id TEXT NOT NULL,
            character_id TEXT NOT NULL,
            role TEXT NOT NULL CHECK (role IN ('user', 'assistant', 'system')),
            text TEXT NOT NULL,
            created_at REAL NOT NULL
        )""",
        "CREATE INDEX messages_by_conversation ON messages (user_id, character_id, id)",
    ],
    # 2: when a stored reply was cut to what was heard (barge-in truncation)
    ["ALTER TABLE messages ADD COLUMN edited_at REAL"],
]

SCHEMA_VERSION = len(MIGRATIONS)


def current_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(conn: sqlite3.Connection, target: int = SCHEMA_VERSION) -> list[int]:
    """Apply pending migrations up to ``target``; return the versions applied.

    ``conn`` must be in autocommit mode (``isolation_level=None``). Raises
    ``sqlite3.Error`` (the failing migration is rolled back) or ``ValueError`` when the
    database is newer than this code.
    """
    version = current_version(conn)
    if version > SCHEMA_VERSION:
        raise ValueError(f"database schema version {version} is newer than {SCHEMA_VERSION}")
    applied = []
    for number in range(version + 1, target + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            if current_version(conn) >= number:  # another process migrated meanwhile
                conn.execute("ROLLBACK")
                continue
            for statement in MIGRATIONS[number - 1]:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number:d}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        applied.append(number)
    return applied
