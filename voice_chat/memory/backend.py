"""What a database engine provides to :class:`voice_chat.memory.store.Store`.

The store's SQL is written once, in the ``?`` parameter style, in the SQL both engines speak
(``INSERT ... RETURNING``, plain ``SELECT``/``UPDATE``/``DELETE``). A backend supplies the
connection, a :class:`Dialect` for the migrations (column types, where the schema version is
kept, how migrators are serialised) and the mapping of its native errors onto
:class:`MemoryStoreError` codes. Backends are chosen by URL scheme in :data:`BACKENDS`.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Protocol

from .errors import MemoryStoreError


class Cursor(Protocol):
    rowcount: int

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class Connection(Protocol):
    """A DB-API connection in autocommit mode that takes ``?`` parameters."""

    def execute(self, sql: str, params: Sequence[object] = ()) -> Cursor: ...


class Dialect(Protocol):
    """How the migrations run on one engine (see :mod:`voice_chat.memory.migrations`)."""

    name: str
    types: Mapping[str, str]  # the ``{id}``, ``{float}``, ``{bytes}`` of migration templates

    def version(self, conn: Connection) -> int: ...

    def begin(self, conn: Connection) -> None:
        """Start a migration's transaction, holding off other migrators until it ends."""

    def set_version(self, conn: Connection, version: int) -> None: ...


class Backend(ABC):
    """One open database. Not thread-safe by itself: the store serialises calls."""

    dialect: ClassVar[Dialect]
    where: str  # names the database in messages (never includes a password)

    @abstractmethod
    def connection(self) -> Connection:
        """The open connection (a backend may reconnect here after a lost connection)."""

    @abstractmethod
    def translate(self, exc: Exception, action: str) -> MemoryStoreError | None:
        """Our error for one of the engine's native exceptions; None if it is not the engine's."""

    @abstractmethod
    def close(self) -> None: ...


# scheme -> "module:factory"; the factory takes (url, timeout=, check=) and returns a Backend.
BACKENDS: dict[str, str] = {
    "sqlite": "voice_chat.memory.sqlite:SQLiteBackend",
    "postgresql": "voice_chat.memory.postgres:PostgresBackend",
    "postgres": "voice_chat.memory.postgres:PostgresBackend",
}
SUPPORTED = (
    "sqlite:///relative/path.db, sqlite:////absolute/path.db or postgresql://user:pw@host/db"
)


def scheme_of(url: str) -> str:
    """The URL's scheme; :class:`MemoryStoreError` ``unsupported_url`` if no backend takes it."""
    scheme, sep, _ = url.partition("://")
    scheme = scheme.lower().split("+", 1)[0]  # postgresql+psycopg:// as SQLAlchemy writes it
    if not sep or scheme not in BACKENDS:
        raise MemoryStoreError(
            "unsupported_url", f"unsupported database URL {redact(url)!r}: use {SUPPORTED}"
        )
    return scheme


def open_backend(url: str, *, timeout: float, check: bool) -> Backend:
    module, _, name = BACKENDS[scheme_of(url)].partition(":")
    factory = getattr(importlib.import_module(module), name)
    backend: Backend = factory(url, timeout=timeout, check=check)
    return backend


def redact(url: str) -> str:
    """``url`` with any password replaced by ``***``."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    netloc, slash, path = rest.partition("/")
    userinfo, at, host = netloc.rpartition("@")
    if at and ":" in userinfo:
        netloc = userinfo.split(":", 1)[0] + ":***@" + host
    return f"{scheme}{sep}{netloc}{slash}{path}"
