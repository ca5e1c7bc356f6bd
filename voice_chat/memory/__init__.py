"""Conversation memory: per (user, character) message history in SQLite or PostgreSQL."""

from __future__ import annotations

from .errors import MemoryStoreError
from .migrations import MIGRATIONS, SCHEMA_VERSION
from .store import Message, Store, database_path

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "MemoryStoreError", "Message", "Store", "database_path"]
