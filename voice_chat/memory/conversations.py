"""Conversation memory for realtime sessions, backed by :class:`voice_chat.memory.Store`.

A session's :class:`StoredConversation` keeps its turns in memory (the pipeline reads them on
the event loop) and writes every change through to SQLite on one writer thread, in order, so
the event loop never waits for the database. Reads for the HTTP API go through the same thread
and so see every write queued before them. When the database cannot be used (corrupt, locked,
unwritable, unreachable, the connection lost mid-call) the session gets a
``memory_unavailable`` error and goes on in memory; a SQLite file is never touched. New
sessions try the database again. :meth:`ConversationMemory.health` says how it is for /healthz.
"""

from __future__ import annotations

import asyncio
import atexit
import itertools
import re
import time
import weakref
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

import structlog

from voice_chat.memory.backend import redact, scheme_of
from voice_chat.memory.errors import MemoryStoreError
from voice_chat.memory.facts import UserMemory
from voice_chat.memory.store import DEFAULT_CONVERSATION, Message, Store
from voice_chat.memory.turns import Turn

log = structlog.get_logger(__name__)
T = TypeVar("T")
Reporter = Callable[[str, str], Awaitable[None]]
USER_ID = re.compile(r"^[\w.@-]{1,128}$")
CACHED_TURNS = 200  # turns a session keeps in memory (far more than an LLM context holds)
LOAD_TIMEOUT_S = 3.0
RETRY_OPEN_S = 5.0
UNAVAILABLE = "memory_unavailable"
CORRUPT = "memory_corrupt"


class StoredConversation:
    """The :class:`voice_chat.pipeline.conversation.Conversation` of one (user, character,
    conversation id)."""

    _ids = itertools.count(1)

    def __init__(
        self,
        memory: ConversationMemory,
        user_id: str,
        character_id: str,
        conversation_id: str = DEFAULT_CONVERSATION,
    ) -> None:
        self.memory, self.user_id, self.character_id = memory, user_id, character_id
        self.id = conversation_id
        self._turns: list[Turn] = []
        self.user_memory = UserMemory()  # what the user told about themselves
        self._db_ids: dict[int, int] = {}  # local turn id -> message id (set by the writer)
        self.saving = False
        self.resumed = False
        self.pending: list[tuple[str, str]] = []  # errors to send once the session is up
        self.report: Callable[[str, str], None] = lambda code, message: None

    def load(
        self,
        messages: list[Message],
        facts: Sequence[tuple[str, str]] = (),
        corrupt: Sequence[str] = (),
    ) -> None:
        for kind, value in facts:
            self.user_memory.add(kind, value)
        for note in corrupt:  # left as it is in the database, skipped, reported
            log.warning("corrupt memory row skipped", detail=note)
            self.pending.append((CORRUPT, f"{note}; it was skipped and left untouched"))
        for m in messages:
            if m.role in ("user", "assistant"):
                turn = Turn(next(self._ids), m.role, m.text)
                self._db_ids[turn.id] = m.id
                self._turns.append(turn)
        self.resumed = bool(self._turns)
        self.saving = True

    def _write(self, fn: Callable[[Store], object]) -> None:
        if not self.saving:
            return

        def run(store: Store) -> None:
            if not self.saving:
                return
            try:
                fn(store)
            except MemoryStoreError as exc:
                log.warning("conversation not saved", error=str(exc), code=exc.code)
                self.saving = False
                self.report(UNAVAILABLE, f"conversation memory failed ({exc.code}): {exc}")

        try:
            self.memory.submit(run)
        except RuntimeError:  # the server is shutting down: the writer is gone
            self.saving = False

    # --- the Conversation protocol (called on the event loop: no waiting)
    def turns(self) -> list[Turn]:
        return list(self._turns)

    def add(self, role: str, text: str) -> int:
        turn = Turn(next(self._ids), role, text)
        self._turns.append(turn)
        if len(self._turns) > 2 * CACHED_TURNS:
            del self._turns[:CACHED_TURNS]
        u, c, k = self.user_id, self.character_id, self.id
        self._write(lambda s: self._db_ids.__setitem__(turn.id, s.append(u, c, role, text, k)))
        if role == "user":
            for kind, value in self.user_memory.learn(text):
                self._write(lambda s, k=kind, v=value: s.remember(u, c, k, v))
        return turn.id

    def update(self, turn_id: int, text: str) -> None:
        for turn in self._turns:
            if turn.id == turn_id:
                turn.text = text
        self._write(lambda s: self._on_db(turn_id, lambda mid: s.update_text(mid, text)))

    def remove(self, turn_id: int) -> None:
        self._turns = [t for t in self._turns if t.id != turn_id]
        self._write(lambda s: self._on_db(turn_id, s.delete))

    def _on_db(self, turn_id: int, fn: Callable[[int], object]) -> None:
        message_id = self._db_ids.get(turn_id)
        if message_id is None:
            return
        try:
            fn(message_id)
        except MemoryStoreError as exc:
            if exc.code != "not_found":  # gone: the conversation was reset meanwhile
                raise

    def clear(self) -> None:
        """The conversation was reset from outside (the HTTP API)."""
        self._turns, self._db_ids = [], {}
        self.user_memory = UserMemory()


class ConversationMemory:
    """The server's conversation store: opened in the background, one writer thread."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._store: Store | None = None
        self.error: MemoryStoreError | None = None
        self._retry_at = 0.0
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="memory")
        self._live: dict[tuple[str, str, str], weakref.WeakSet[StoredConversation]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._pool.submit(self._try_open)
        atexit.register(self.close)

    # --- the writer thread
    def _open(self) -> Store:
        if self._store is None:
            if self.error is not None and time.monotonic() < self._retry_at:
                raise self.error
            try:
                self._store = Store(self.url)
            except MemoryStoreError as exc:
                self.error, self._retry_at = exc, time.monotonic() + RETRY_OPEN_S
                log.error(
                    "conversation memory unavailable: sessions go on without saving "
                    "(check VOICE_CHAT_DATABASE_URL); retrying as sessions start",
                    error=str(exc),
                    code=exc.code,
                )
                raise
            self.error = None
            log.info("conversation memory open", database=self._store.where)
        return self._store

    def _try_open(self) -> None:
        try:
            self._open()
        except MemoryStoreError:
            pass

    def submit(self, fn: Callable[[Store], T]) -> Future[T]:
        return self._pool.submit(lambda: fn(self._open()))

    def health(self) -> dict[str, Any]:
        """``{"status": "ok"|"unavailable"|"opening", "backend", "database", "error"}``.

        ``unavailable`` when the database could not be opened or its last call failed.
        """
        try:
            backend = scheme_of(self.url)
        except MemoryStoreError:
            backend = "unknown"
        store = self._store
        error = self.error or (store.error if store is not None else None)
        status = "unavailable" if error else "ok" if store is not None else "opening"
        return {
            "status": status,
            "backend": "postgresql" if backend == "postgres" else backend,
            "database": redact(self.url),
            "error": None if error is None else f"{error.code}: {error.message}",
        }

    async def call(self, fn: Callable[[Store], T]) -> T:
        """Run ``fn(store)`` on the writer thread (after every write queued before it)."""
        return await asyncio.wrap_future(self.submit(fn))

    # --- sessions
    async def open_conversation(
        self,
        user_id: str,
        character_id: str,
        report: Reporter,
        conversation_id: str = DEFAULT_CONVERSATION,
    ) -> StoredConversation:
        """Load the conversation: normally a few ms, at most LOAD_TIMEOUT_S, never blocking.

        ``report(code, message)`` is awaited on the event loop when a later write fails.
        """
        conv = StoredConversation(self, user_id, character_id, conversation_id)
        conv.report = self._reporter(report)
        if not USER_ID.match(user_id):
            conv.pending.append(
                ("invalid_event", "user id: 1-128 letters, digits or . _ @ -; not saved")
            )
            return conv
        try:
            loading = self.submit(
                lambda s: (
                    s.history(
                        user_id, character_id, limit=CACHED_TURNS, conversation=conversation_id
                    ),
                    *s.memory(user_id, character_id),
                )
            )
            conv.load(*await asyncio.wait_for(asyncio.wrap_future(loading), LOAD_TIMEOUT_S))
        except MemoryStoreError as exc:
            conv.pending.append((UNAVAILABLE, f"conversation memory is unavailable: {exc}"))
        except TimeoutError:
            conv.pending.append((UNAVAILABLE, "conversation memory did not answer in time"))
        key = (user_id, character_id, conversation_id)
        self._live.setdefault(key, weakref.WeakSet()).add(conv)
        return conv

    def _reporter(self, report_async: Reporter) -> Callable[[str, str], None]:
        loop = asyncio.get_running_loop()

        def send(code: str, message: str) -> None:
            task = loop.create_task(report_async(code, message))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        def report(code: str, message: str) -> None:
            loop.call_soon_threadsafe(send, code, message)

        return report

    # --- the HTTP API
    async def conversation(
        self, user_id: str, character_id: str, conversation_id: str = DEFAULT_CONVERSATION
    ) -> dict[str, Any]:
        return await self.call(lambda s: s.conversation(user_id, character_id, conversation_id))

    async def conversations(self, user_id: str) -> list[dict[str, Any]]:
        """The user's conversations, most recent first, each with its last message."""
        return await self.call(lambda s: s.conversations(user_id))

    async def reset(
        self, user_id: str, character_id: str, conversation_id: str = DEFAULT_CONVERSATION
    ) -> int:
        for conv in list(self._live.get((user_id, character_id, conversation_id), ())):
            conv.clear()
        return await self.call(lambda s: s.reset(user_id, character_id, conversation_id))

    async def forget_character(self, character_id: str) -> int:
        for (_, cid, _), convs in self._live.items():
            if cid == character_id:
                for conv in list(convs):
                    conv.clear()
        return await self.call(lambda s: s.reset_character(character_id))

    def close(self) -> None:
        """Finish queued writes, then close the database (idempotent)."""
        self._pool.shutdown(wait=True)
        if self._store is not None:
            try:
                self._store.close()
            except MemoryStoreError as exc:
                log.warning("closing conversation memory failed", error=str(exc))
            self._store = None
