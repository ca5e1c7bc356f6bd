"""Conversation memory: restart, isolation, truncation, migrations, corrupt and locked DBs.

The store tests run on both backends: embedded SQLite and a real PostgreSQL cluster that the
``postgres`` fixture starts on loopback (tests/pgcluster.py). SQLite-only behaviour (file
corruption, WAL) and PostgreSQL-only behaviour (unreachable server, lost connections, many
servers migrating at once) have their own tests below.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from voice_chat.memory import MIGRATIONS, SCHEMA_VERSION, MemoryStoreError, Store
from voice_chat.memory.migrations import migrate
from voice_chat.memory.sqlite import SQLITE
from voice_chat.memory.store import database_path


def url(path: Path) -> str:
    return f"sqlite:///{path}"  # an absolute path gives sqlite:////abs/...


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "data" / "memory.db"


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, db: Path) -> str:
    """A fresh, empty database of each backend."""
    if request.param == "sqlite":
        return url(db)
    return str(request.getfixturevalue("postgres").create_database())


class Raw:
    """A plain autocommit connection to ``store_url`` with the backend's migration dialect."""

    def __init__(self, store_url: str) -> None:
        if store_url.startswith("sqlite"):
            Path(database_path(store_url)).parent.mkdir(parents=True, exist_ok=True)
            self.conn: Any = sqlite3.connect(database_path(store_url), isolation_level=None)
            self.dialect: Any = SQLITE
            self.close = self.conn.close
        else:
            import psycopg

            from voice_chat.memory.postgres import POSTGRES, QmarkConnection

            raw = psycopg.connect(store_url, autocommit=True)
            self.conn, self.dialect, self.close = QmarkConnection(raw), POSTGRES, raw.close

    def migrate(self, target: int) -> list[int]:
        return migrate(self.conn, target=target, dialect=self.dialect)

    def columns(self) -> list[str]:
        if self.dialect is SQLITE:
            return [row[1] for row in self.conn.execute("PRAGMA table_info(messages)")]
        rows = self.conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'messages'"
        ).fetchall()
        return [row[0] for row in rows]


@pytest.fixture
def raw(store_url: str) -> Iterator[Raw]:
    conn = Raw(store_url)
    yield conn
    conn.close()


def test_append_history_and_restart(store_url: str) -> None:
    with Store(store_url) as store:
        first = store.append("alice", "nova", "user", "hello")
        second = store.append("alice", "nova", "assistant", "hi alice")
        assert second > first
    with Store(store_url) as store:  # a server restart
        history = store.history("alice", "nova")
        assert [(m.role, m.text) for m in history] == [("user", "hello"), ("assistant", "hi alice")]
        assert history[0].id == first and history[0].content == "hello"
        assert store.schema_version == SCHEMA_VERSION


def test_history_limit_returns_newest_in_order(store_url: str) -> None:
    with Store(store_url) as store:
        for i in range(5):
            store.append("u", "c", "user", f"m{i}")
        assert [m.text for m in store.history("u", "c", limit=2)] == ["m3", "m4"]
        assert store.history("u", "c", limit=0) == []
        with pytest.raises(MemoryStoreError):
            store.history("u", "c", limit=-1)


def test_isolation_between_users_and_characters(store_url: str) -> None:
    with Store(store_url) as store:
        store.append("alice", "nova", "user", "alice secret")
        store.append("bob", "nova", "user", "bob secret")
        store.append("alice", "rex", "user", "alice to rex")
        assert [m.text for m in store.history("alice", "nova")] == ["alice secret"]
        assert [m.text for m in store.history("bob", "nova")] == ["bob secret"]
        assert [m.text for m in store.history("alice", "rex")] == ["alice to rex"]
        assert store.history("carol", "nova") == []
        assert store.reset("alice", "nova") == 1
        assert store.history("alice", "nova") == []
        assert [m.text for m in store.history("bob", "nova")] == ["bob secret"]
        assert len(store.history("alice", "rex")) == 1


def test_update_text_for_barge_in(store_url: str) -> None:
    with Store(store_url) as store:
        mid = store.append("u", "c", "assistant", "The whole long reply that was cut")
        store.update_text(mid, "The whole long")
    with Store(store_url) as store:
        (message,) = store.history("u", "c")
        assert message.text == "The whole long" and message.edited_at is not None
        with pytest.raises(MemoryStoreError) as err:
            store.update_text(999, "x")
        assert err.value.code == "not_found"


def test_conversation_view(store_url: str) -> None:
    with Store(store_url) as store:
        store.append("u", "c", "user", "hi")
        view = store.conversation("u", "c")
    assert view["user_id"] == "u" and view["character_id"] == "c"
    assert view["message_count"] == 1
    assert view["messages"][0]["text"] == "hi" and view["messages"][0]["role"] == "user"


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (("", "c", "user", "x"), "invalid_argument"),
        (("u", "", "user", "x"), "invalid_argument"),
        (("u", "c", "narrator", "x"), "invalid_argument"),
        (("u", "c", "user", None), "invalid_argument"),
        (("u" * 300, "c", "user", "x"), "invalid_argument"),
    ],
)
def test_invalid_arguments(store_url: str, args: tuple, code: str) -> None:
    with Store(store_url) as store, pytest.raises(MemoryStoreError) as err:
        store.append(*args)
    assert err.value.code == code


def test_urls() -> None:
    assert database_path("sqlite:////abs/x.db") == "/abs/x.db"
    assert database_path("sqlite:///rel/x.db") == "rel/x.db"
    assert database_path(Path("/p/x.db")) == "/p/x.db"
    for bad in ("mysql://h/db", "x.db", "sqlite://", "sqlite:///", "mongodb://u:s3cret@h/db"):
        with pytest.raises(MemoryStoreError) as err:
            Store(bad)
        assert err.value.code == "unsupported_url" and "sqlite:///" in err.value.message
        assert "s3cret" not in err.value.message  # passwords are never echoed
    assert "postgresql://" in err.value.message
    with Store("sqlite:///:memory:") as store:
        store.append("u", "c", "user", "x")
        assert len(store.history("u", "c")) == 1


def test_wal_mode(db: Path) -> None:
    Store(url(db)).close()
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_corrupt_database_is_reported_and_left_untouched(db: Path) -> None:
    db.parent.mkdir(parents=True)
    garbage = b"this is not a database at all " * 200
    db.write_bytes(garbage)
    with pytest.raises(MemoryStoreError) as err:
        Store(url(db))
    assert err.value.code == "corrupt" and str(db) in err.value.message
    assert db.read_bytes() == garbage  # never deleted or recreated


def test_damaged_pages_are_detected(db: Path) -> None:
    with Store(url(db)) as store:
        for i in range(300):
            store.append("u", "c", "user", f"message {i} " * 20)
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute("PRAGMA journal_mode = DELETE")
    conn.close()
    data = bytearray(db.read_bytes())
    page = 4096
    for offset in range(2 * page, len(data) - page, page):  # keep the header page intact
        data[offset : offset + 100] = b"\xff" * 100
    db.write_bytes(bytes(data))
    with pytest.raises(MemoryStoreError) as err:
        Store(url(db))
    assert err.value.code == "corrupt"
    assert db.read_bytes() == bytes(data)


def test_locked_database(db: Path) -> None:
    store = Store(url(db), timeout=0.1)
    other = sqlite3.connect(db, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process is writing
    try:
        with pytest.raises(MemoryStoreError) as err:
            store.append("u", "c", "user", "x")
        assert err.value.code == "locked" and "locked" in err.value.message
        assert store.history("u", "c") == []  # readers are not blocked in WAL mode
    finally:
        other.execute("ROLLBACK")
        other.close()
    store.append("u", "c", "user", "x")  # works again once the lock is gone
    store.close()


def test_closed_store(store_url: str) -> None:
    store = Store(store_url)
    store.close()
    store.close()  # idempotent
    with pytest.raises(MemoryStoreError) as err:
        store.history("u", "c")
    assert err.value.code == "closed"


def test_migrations_upgrade_old_database(store_url: str, raw: Raw) -> None:
    assert raw.migrate(1) == [1]
    raw.conn.execute(
        "INSERT INTO messages (user_id, character_id, role, text, created_at)"
        " VALUES ('u', 'c', 'user', 'from v1', 0)"
    )
    assert "edited_at" not in raw.columns()
    with Store(store_url) as store:
        assert store.schema_version == SCHEMA_VERSION == len(MIGRATIONS)
        assert [m.text for m in store.history("u", "c")] == ["from v1"]
        assert store.history("u", "c")[0].edited_at is None
    assert "edited_at" in raw.columns()


def test_failed_migration_rolls_back(raw: Raw, monkeypatch: pytest.MonkeyPatch) -> None:
    raw.migrate(1)
    broken = [*MIGRATIONS[:1], ["ALTER TABLE messages ADD COLUMN ok REAL", "NOT SQL"]]
    monkeypatch.setattr("voice_chat.memory.migrations.MIGRATIONS", broken)
    with pytest.raises(Exception) as err:  # the engine's own error type
        raw.migrate(2)
    assert "syntax" in str(err.value).lower()
    assert "ok" not in raw.columns()
    assert raw.dialect.version(raw.conn) == 1


def test_newer_schema_is_refused(store_url: str, raw: Raw) -> None:
    Store(store_url).close()
    raw.dialect.begin(raw.conn)
    raw.dialect.set_version(raw.conn, SCHEMA_VERSION + 1)
    raw.conn.execute("COMMIT")
    with pytest.raises(MemoryStoreError) as err:
        Store(store_url)
    assert err.value.code == "schema_too_new"


def test_text_with_nul_is_stored_without_it(store_url: str) -> None:
    with Store(store_url) as store:
        mid = store.append("u", "c", "user", "a\x00b")
        store.update_text(mid, "c\x00d")
        assert [m.text for m in store.history("u", "c")] == ["cd"]


def test_thread_safety(store_url: str) -> None:
    with Store(store_url) as store:

        def worker(n: int) -> None:
            for i in range(25):
                store.append(f"user{n}", "c", "user", f"{n}-{i}")
                store.history(f"user{n}", "c", limit=3)

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for n in range(4):
            assert [m.text for m in store.history(f"user{n}", "c")] == [
                f"{n}-{i}" for i in range(25)
            ]


# ------------------------------------------------------------------ PostgreSQL only
def test_postgres_many_servers_migrate_once(postgres: Any) -> None:
    target = postgres.create_database()
    stores: list[Store] = []
    errors: list[BaseException] = []

    def open_one() -> None:
        try:
            stores.append(Store(target))
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(stores) == 4
    stores[0].append("u", "c", "user", "from server 0")
    assert [m.text for m in stores[3].history("u", "c")] == ["from server 0"]  # one shared store
    assert all(s.schema_version == SCHEMA_VERSION for s in stores)
    for s in stores:
        s.close()


def test_postgres_lost_connection_fails_one_call_then_reconnects(postgres: Any) -> None:
    target = postgres.create_database()
    with Store(target) as store:
        store.append("u", "c", "user", "before")
        assert postgres.terminate_connections(target.rsplit("/", 1)[1]) >= 1
        with pytest.raises(MemoryStoreError) as err:
            store.append("u", "c", "user", "lost")
        assert err.value.code == "io_error" and "connect" in err.value.message
        assert "vc-test-secret" not in err.value.message
        store.append("u", "c", "user", "after")  # a new connection
        assert [m.text for m in store.history("u", "c")] == ["before", "after"]


@pytest.mark.parametrize(
    ("problem", "hint"),
    [
        ("refused", "reachable at that host and port"),
        ("password", "check the user and password"),
        ("database", "create the database first"),
    ],
)
def test_postgres_unusable_urls_say_why(postgres: Any, problem: str, hint: str) -> None:
    from conftest import free_port

    bad = {
        "refused": f"postgresql://postgres:pw@127.0.0.1:{free_port()}/x",
        "password": postgres.url(password="wrong-password"),
        "database": postgres.url("no_such_database"),
    }[problem]
    with pytest.raises(MemoryStoreError) as err:
        Store(bad, timeout=2)
    assert err.value.code == "io_error" and hint in err.value.message
    assert "wrong-password" not in err.value.message and "***" in err.value.message


def test_postgres_lock_timeout_is_locked(postgres: Any) -> None:
    import psycopg

    target = postgres.create_database()
    with Store(target, timeout=0.2) as store, psycopg.connect(target) as other:
        store.append("u", "c", "user", "x")
        other.execute("LOCK TABLE messages IN EXCLUSIVE MODE")  # another server is writing
        with pytest.raises(MemoryStoreError) as err:
            store.append("u", "c", "user", "y")
        assert err.value.code == "locked"
        assert [m.text for m in store.history("u", "c")] == ["x"]  # readers are not blocked
        other.rollback()
        store.append("u", "c", "user", "y")


def test_postgres_url_spellings(postgres: Any) -> None:
    target = postgres.create_database()
    for spelling in (target, target.replace("postgresql://", "postgres://"),
                     target.replace("postgresql://", "postgresql+psycopg://")):  # fmt: skip
        with Store(spelling) as store:
            assert store.schema_version == SCHEMA_VERSION
            assert "vc-test-secret" not in store.where


def test_shared_dir_setting(tmp_path: Path) -> None:
    from voice_chat.settings import Settings

    assert Settings(data=tmp_path).shared == tmp_path
    assert Settings(data=tmp_path, shared_dir=tmp_path / "nfs").shared == tmp_path / "nfs"
