"""API keys, stored hashed in the conversation database (table ``api_keys``, migration 3).

A key looks like ``vc_<id>_<secret>``: ``id`` (10 hex digits) names the row, ``secret`` is
32 random bytes. Only the SHA-256 of the whole key is stored, so a copy of the database
gives no usable key; a key is shown once, when it is created. Verification looks the row up
by its id and compares the hashes in constant time (:func:`hmac.compare_digest`).

Roles: ``admin`` (everything: import characters, register voices, manage keys) and ``user``
(talk; read and delete only the conversations of the key's own user id).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import asdict, dataclass
from typing import Any

from .errors import MemoryStoreError
from .store import Store

ROLES = ("admin", "user")
KEY_RE = re.compile(r"^vc_([0-9a-f]{10})_([A-Za-z0-9_-]{43})$")
KEY_ID = re.compile(r"^[0-9a-f]{10}$")
NAME_RE = re.compile(r"^[\w .@-]{1,64}$")
USER_RE = re.compile(r"^[\w.@-]{1,128}$")
_COLUMNS = "id, name, role, user_id, created_at, revoked_at"


@dataclass(frozen=True)
class ApiKey:
    """One key's record (never the key itself)."""

    id: str
    name: str
    role: str
    user_id: str  # whose conversations this key reads and writes
    created_at: float
    revoked_at: float | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def looks_like_key(text: str) -> bool:
    return KEY_RE.match(text) is not None


class KeyStore:
    """Create, list, revoke and verify keys in a :class:`Store`'s database."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def create(self, role: str, name: str | None = None, user_id: str | None = None) -> str:
        """A new key (returned once, in full). ``user_id`` defaults to ``key-<id>``."""
        if role not in ROLES:
            raise MemoryStoreError("invalid_argument", f"role must be one of {', '.join(ROLES)}")
        key_id = secrets.token_hex(5)
        name = name or f"{role} key {key_id}"
        if not NAME_RE.match(name):
            raise MemoryStoreError(
                "invalid_argument", "name: 1-64 letters, digits, spaces or . _ @ -"
            )
        user_id = user_id or f"key-{key_id}"
        if not USER_RE.match(user_id):
            raise MemoryStoreError("invalid_argument", "user: 1-128 letters, digits or . _ @ -")
        key = f"vc_{key_id}_{secrets.token_urlsafe(32)}"
        with self.store.connection("create key") as conn:
            conn.execute(
                "INSERT INTO api_keys (id, name, role, user_id, key_hash, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (key_id, name, role, user_id, hash_key(key), time.time()),
            )
        return key

    def list(self, *, include_revoked: bool = True) -> list[ApiKey]:
        where = "" if include_revoked else " WHERE revoked_at IS NULL"
        with self.store.connection("list keys") as conn:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM api_keys{where} ORDER BY created_at"
            ).fetchall()
        return [ApiKey(*row) for row in rows]

    def get(self, key_id: str) -> ApiKey | None:
        if not KEY_ID.match(key_id):
            return None
        with self.store.connection("read key") as conn:
            row = conn.execute(
                f"SELECT {_COLUMNS} FROM api_keys WHERE id = ?", (key_id,)
            ).fetchone()
        return ApiKey(*row) if row else None

    def revoke(self, key_id: str) -> bool:
        """Revoke a key (it stops working at once); False when there is no such active key."""
        if not KEY_ID.match(key_id):
            return False
        with self.store.connection("revoke key") as conn:
            cursor = conn.execute(
                "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                (time.time(), key_id),
            )
            return cursor.rowcount > 0

    def active_count(self) -> int:
        with self.store.connection("count keys") as conn:
            row = conn.execute("SELECT COUNT(*) FROM api_keys WHERE revoked_at IS NULL").fetchone()
        return int(row[0])

    def verify(self, key: str) -> ApiKey | None:
        """The active key record for ``key``, else None (unknown, revoked or malformed)."""
        match = KEY_RE.match(key)
        if match is None:
            return None
        with self.store.connection("verify key") as conn:
            row = conn.execute(
                f"SELECT {_COLUMNS}, key_hash FROM api_keys WHERE id = ?", (match.group(1),)
            ).fetchone()
        if row is None:
            hmac.compare_digest(hash_key(key), hash_key(key))  # same work either way
            return None
        record, stored = ApiKey(*row[:-1]), str(row[-1])
        if not hmac.compare_digest(hash_key(key), stored) or not record.active:
            return None
        return record


__all__ = ["ROLES", "ApiKey", "KeyStore", "hash_key", "looks_like_key"]
