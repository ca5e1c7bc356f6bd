"""Conversation memory: restart, isolation, truncation, migrations, corrupt and locked DBs."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from voice_chat.memory import MIGRATIONS, SCHEMA_VERSION, MemoryStoreError, Store
from voice_chat.memory.migrations import migrate
from voice_chat.memory.store import database_path


def url(path: Path) -> str:
    return f"sqlite:///{path}"  # an absolute path gives sqlite:////abs/...


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "data" / "memory.db"


def test_append_history_and_restart(db: Path) -> None:
    with Store(url(db)) as store:
        first = store.append("alice", "nova", "user", "hello")
        second = store.append("alice", "nova", "assistant", "hi alice")
        assert second > first
    with Store(url(db)) as store:  # a server restart
        history = store.history("alice", "nova")
        assert [(m.role, m.text) for m in history] == [("user", "hello"), ("assistant", "hi alice")]
        assert history[0].id == first and history[0].content == "hello"
        assert store.schema_version == SCHEMA_VERSION


def test_history_limit_returns_newest_in_order(db: Path) -> None:
    with Store(url(db)) as store:
        for i in range(5):
            store.append("u", "c", "user", f"m{i}")
        assert [m.text for m in store.history("u", "c", limit=2)] == ["m3", "m4"]
        assert store.history("u", "c", limit=0) == []
        with pytest.raises(MemoryStoreError):
            store.history("u", "c", limit=-1)


def test_isolation_between_users_and_characters(db: Path) -> None:
    with Store(url(db)) as store:
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


def test_update_text_for_barge_in(db: Path) -> None:
    with Store(url(db)) as store:
        mid = store.append("u", "c", "assistant", "The whole long reply that was cut")
        store.update_text(mid, "The whole long")
    with Store(url(db)) as store:
        (message,) = store.history("u", "c")
        assert message.text == "The whole long" and message.edited_at is not None
        with pytest.raises(MemoryStoreError) as err:
            store.update_text(999, "x")
        assert err.value.code == "not_found"


def test_conversation_view(db: Path) -> None:
    with Store(url(db)) as store:
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
def test_invalid_arguments(db: Path, args: tuple, code: str) -> None:
    with Store(url(db)) as store, pytest.raises(MemoryStoreError) as err:
        store.append(*args)
    assert err.value.code == code


def test_urls() -> None:
    assert database_path("sqlite:////abs/x.db") == "/abs/x.db"
    assert database_path("sqlite:///rel/x.db") == "rel/x.db"
    assert database_path(Path("/p/x.db")) == "/p/x.db"
    for bad in ("postgresql://u@h/db", "mysql://h/db", "x.db", "sqlite://", "sqlite:///"):
        with pytest.raises(MemoryStoreError) as err:
            Store(bad)
        assert err.value.code == "unsupported_url" and "only SQLite" in err.value.message
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


def test_closed_store(db: Path) -> None:
    store = Store(url(db))
    store.close()
    store.close()  # idempotent
    with pytest.raises(MemoryStoreError) as err:
        store.history("u", "c")
    assert err.value.code == "closed"


def test_migrations_upgrade_old_database(db: Path) -> None:
    db.parent.mkdir(parents=True)
    conn = sqlite3.connect(db, isolation_level=None)
    assert migrate(conn, target=1) == [1]
    conn.execute(
        "INSERT INTO messages (user_id, character_id, role, text, created_at)"
        " VALUES ('u', 'c', 'user', 'from v1', 0)"
    )
    conn.close()
    with Store(url(db)) as store:
        assert store.schema_version == SCHEMA_VERSION == len(MIGRATIONS)
        assert [m.text for m in store.history("u", "c")] == ["from v1"]
        assert store.history("u", "c")[0].edited_at is None


def test_failed_migration_rolls_back(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db.parent.mkdir(parents=True)
    conn = sqlite3.connect(db, isolation_level=None)
    migrate(conn, target=1)
    broken = [*MIGRATIONS[:1], ["ALTER TABLE messages ADD COLUMN ok REAL", "NOT SQL"]]
    monkeypatch.setattr("voice_chat.memory.migrations.MIGRATIONS", broken)
    with pytest.raises(sqlite3.Error):
        migrate(conn, target=2)
    columns = [row[1] for row in conn.execute("PRAGMA table_info(messages)")]
    assert "ok" not in columns
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    conn.close()


def test_newer_schema_is_refused(db: Path) -> None:
    Store(url(db)).close()
    conn = sqlite3.connect(db)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()
    with pytest.raises(MemoryStoreError) as err:
        Store(url(db))
    assert err.value.code == "schema_too_new"


def test_thread_safety(db: Path) -> None:
    with Store(url(db)) as store:

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
