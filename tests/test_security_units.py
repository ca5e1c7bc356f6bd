"""Fast checks of the security building blocks: host parsing, origin rules, tokens, the key
store and its migration, route roles, rate buckets, and the crash-hygiene fixes."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import sqlite3
import subprocess
import sys
import time
import warnings
import zipfile
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest

from voice_chat.cards import CardError, load_card
from voice_chat.cards.library import CardLibrary
from voice_chat.memory import MIGRATIONS, Store
from voice_chat.memory.keys import KeyStore, hash_key
from voice_chat.memory.migrations import statements
from voice_chat.memory.sqlite import SQLITE
from voice_chat.server.auth import TokenSigner, credential_of, required_role
from voice_chat.server.limits import TokenBucket
from voice_chat.server.protocol import ProtocolError, parse_client_event
from voice_chat.server.security import HostPolicy, is_loopback, split_host
from voice_chat.settings import Settings, load_settings


def policy(**kw: object) -> HostPolicy:
    return HostPolicy(Settings(port=8000, **kw))  # type: ignore[arg-type]


# ------------------------------------------------------------------ hosts and origins
@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        ("Example.COM:8000", ("example.com", 8000)),
        ("localhost", ("localhost", None)),
        ("[::1]:8000", ("[::1]", 8000)),
        ("::1", ("[::1]", None)),
    ],
)
def test_split_host(value: str, parsed: tuple[str, int | None]) -> None:
    assert split_host(value) == parsed


@pytest.mark.parametrize("bad", ["", "a b", "x:99999", "x:port", "[::1", "u@host", "h/x", "x:0"])
def test_split_host_rejects(bad: str) -> None:
    with pytest.raises(ValueError):
        split_host(bad)


def test_default_hosts_are_loopback_on_the_port() -> None:
    p = policy()
    for ok in ("127.0.0.1:8000", "localhost:8000", "[::1]:8000"):
        assert p.host_allowed(ok), ok
    for bad in ("evil.example:8000", "127.0.0.1:8001", "localhost", None, "", "a b"):
        assert not p.host_allowed(bad), bad


def test_configured_hosts() -> None:
    p = policy(allowed_hosts=["chat.example.com", "*.lan:8000"])
    assert p.host_allowed("chat.example.com") and p.host_allowed("chat.example.com:443")
    assert p.host_allowed("box.lan:8000") and not p.host_allowed("box.lan:9000")
    assert not p.host_allowed("evil.example")
    assert policy(allowed_hosts=["*"]).host_allowed("anything:1")
    with pytest.raises(ValueError, match="allowed_hosts"):
        policy(allowed_hosts=["bad host"])


def test_origins() -> None:
    p = policy(allowed_origins=["https://game.example"])
    host = "127.0.0.1:8000"
    assert p.origin_allowed("http://127.0.0.1:8000", host, "http")
    assert p.origin_allowed("http://localhost:8000", host, "http")  # the same server
    assert p.origin_allowed("https://game.example", host, "http")
    assert p.origin_allowed("https://game.example:443", host, "http")  # default port
    assert p.origin_allowed("https://chat.example", "chat.example", "http")  # behind TLS proxy
    for bad in ("null", "http://evil.example", "http://127.0.0.1:8001", "file://", "garbage"):
        assert not p.origin_allowed(bad, host, "http"), bad
    assert not p.origin_allowed("http://evil.example", None, "http")
    with pytest.raises(ValueError, match="allowed_origins"):
        policy(allowed_origins=["not an origin"])


def test_loopback() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.2") and not is_loopback("::")


def test_settings_lists_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOICE_CHAT_ALLOWED_ORIGINS", "https://a.example, https://b.example")
    monkeypatch.setenv("VOICE_CHAT_ALLOWED_HOSTS", '["chat.example"]')
    s = load_settings()
    assert s.allowed_origins == ["https://a.example", "https://b.example"]
    assert s.allowed_hosts == ["chat.example"]


# ------------------------------------------------------------------ keys and tokens
def test_key_store_hashes_and_verifies(tmp_path: Path) -> None:
    with Store(tmp_path / "db.sqlite") as store:
        keys = KeyStore(store)
        key = keys.create("user", name="phone", user_id="alice")
        record = keys.verify(key)
        assert record is not None and record.user_id == "alice" and record.role == "user"
        assert keys.verify(key[:-1] + ("A" if key[-1] != "A" else "B")) is None
        assert keys.verify("vc_0000000000_" + "x" * 43) is None
        assert keys.verify("") is None
        admin = keys.create("admin")
        assert keys.verify(admin).user_id == f"key-{admin.split('_')[1]}"  # type: ignore[union-attr]
        assert keys.revoke(record.id) and not keys.revoke(record.id)
        assert keys.verify(key) is None
        assert keys.active_count() == 1
        with pytest.raises(Exception, match="role"):
            keys.create("root")
    # only the hash is on disk
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir())  # the database and its WAL
    assert key.encode() not in raw and key.split("_")[2].encode() not in raw
    conn = sqlite3.connect(tmp_path / "db.sqlite")
    hashes = [r[0] for r in conn.execute("SELECT key_hash FROM api_keys")]
    assert hash_key(key) in hashes and all(len(h) == 64 for h in hashes)


def test_key_store_on_postgresql(postgres: Any) -> None:
    with Store(str(postgres.create_database())) as store:  # type: ignore[attr-defined]
        keys = KeyStore(store)
        key = keys.create("admin", user_id="root")
        assert keys.verify(key).role == "admin"  # type: ignore[union-attr]
        assert keys.revoke(key.split("_")[1]) and keys.verify(key) is None
        assert [k.user_id for k in keys.list()] == ["root"]


def test_migration_from_version_2_keeps_messages(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    for number in (1, 2):
        for statement in statements(number, SQLITE):
            conn.execute(statement)
    conn.execute("PRAGMA user_version = 2")
    conn.execute(
        "INSERT INTO messages (user_id, character_id, role, text, created_at)"
        " VALUES ('u', 'nova', 'user', 'hi', 0)"
    )
    conn.close()
    with Store(path) as store:
        assert store.schema_version == len(MIGRATIONS) >= 3
        assert [m.text for m in store.history("u", "nova")] == ["hi"]
        assert KeyStore(store).list() == []


def test_tokens() -> None:
    signer = TokenSigner(60, secret=b"s" * 32)
    token, expiry = signer.issue("abcdef0123", now=1000.0)
    assert expiry == 1060
    assert signer.check(token, now=1001.0) == "abcdef0123"
    with pytest.raises(ValueError, match="expired"):
        signer.check(token, now=1061.0)
    with pytest.raises(ValueError, match="invalid"):
        signer.check(token[:-2] + "xx", now=1001.0)
    with pytest.raises(ValueError, match="invalid"):
        TokenSigner(60, secret=b"t" * 32).check(token, now=1001.0)  # another server's
    forged = token.replace("abcdef0123", "0123456789")
    with pytest.raises(ValueError, match="invalid"):
        signer.check(forged, now=1001.0)


def test_credentials_from_header_query_cookie() -> None:
    def scope(headers: dict[str, str], query: str = "") -> dict:
        return {
            "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
            "query_string": query.encode(),
        }

    assert credential_of(scope({"Authorization": "Bearer vc_x"})) == "vc_x"
    assert credential_of(scope({"Authorization": "bearer  vc_y "})) == "vc_y"
    assert credential_of(scope({}, "a=1&token=vct_t")) == "vct_t"
    assert credential_of(scope({"Cookie": "a=b; voice_chat_token=vct_c"})) == "vct_c"
    assert credential_of(scope({})) is None


@pytest.mark.parametrize(
    ("method", "path", "role"),
    [
        ("GET", "/", None),
        ("GET", "/static/app.js", None),
        ("GET", "/healthz", None),
        ("GET", "/v1/auth", None),
        ("GET", "/metrics", "user"),
        ("GET", "/openapi.json", "user"),
        ("GET", "/v1/realtime", "user"),
        ("GET", "/v1/conversations", "user"),
        ("DELETE", "/v1/conversations", "user"),
        ("GET", "/v1/characters", "user"),
        ("GET", "/v1/characters/nova/avatar", "user"),
        ("POST", "/v1/characters", "admin"),
        ("PUT", "/v1/characters/nova", "admin"),
        ("DELETE", "/v1/characters/nova", "admin"),
        ("GET", "/v1/voices", "user"),
        ("POST", "/v1/voices/preview", "user"),
        ("POST", "/v1/voices/joe/preview", "user"),
        ("POST", "/v1/voices", "admin"),
        ("DELETE", "/v1/voices/x", "admin"),
        ("POST", "/v1/voices/joe/assign", "admin"),
        ("GET", "/v1/keys", "admin"),
        ("GET", "/v1/presets", "user"),
        ("PUT", "/v1/presets/current", "admin"),
        ("POST", "/v1/auth/token", "user"),
        ("POST", "/", "user"),
    ],
)
def test_route_roles(method: str, path: str, role: str | None) -> None:
    assert required_role(method, path) == role


def test_token_bucket() -> None:
    bucket = TokenBucket(rate=2.0, burst=3.0, now=0.0)
    assert [bucket.take(now=0.0) for _ in range(4)] == [True, True, True, False]
    assert bucket.take(now=0.5) and not bucket.take(now=0.5)
    assert bucket.wait_s() == pytest.approx(0.5)


# ------------------------------------------------------------------ crash hygiene
def test_nested_json_is_invalid_json() -> None:
    for text in ("[" * 60000, '{"a":' * 60000, "[" * 60000 + "]" * 60000):
        with pytest.raises(ProtocolError) as info:
            parse_client_event(text)
        assert info.value.code == "invalid_json"


def test_unsafe_charx_asset_uri_refused() -> None:
    for uri in (
        "embeded://../../../x",
        "embedded:///etc/passwd",
        "embeded://a/../../b",
        "embeded://",
    ):
        card = {
            "spec": "chara_card_v3",
            "spec_version": "3.0",
            "data": {
                "name": "X",
                "assets": [{"type": "icon", "uri": uri, "name": "main", "ext": "png"}],
            },
        }
        buf = BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            z.writestr("card.json", json.dumps(card))
        with pytest.raises(CardError) as info:
            load_card(buf.getvalue())
        assert info.value.code == "unsafe_asset_uri" and info.value.status == 422, uri
        with pytest.raises(CardError):
            load_card(json.dumps(card).encode())


def test_card_staging_of_a_dead_process_cleaned(tmp_path: Path) -> None:
    lib = CardLibrary(tmp_path)
    lib.staging.mkdir(parents=True)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    gone = lib.staging / f"{dead.stdout.strip()}-abc"
    gone.mkdir()
    (gone / "card.json").write_text("{}")
    legacy = lib.staging / "0123456789abcdef"  # no pid: written before pids were recorded
    legacy.mkdir()
    mine = lib.staging / f"{os.getpid()}-def"  # a live import: kept
    mine.mkdir()
    assert lib.clean_staging() == 2
    assert [p.name for p in lib.staging.iterdir()] == [mine.name]
    os.utime(mine, (time.time() - 7200, time.time() - 7200))
    assert lib.clean_staging() == 1


async def test_prefill_cancelled_before_it_starts_leaves_no_coroutine() -> None:
    """The 'coroutine LlamaChat.warm was never awaited' warning: a session closed at once
    cancels its prefill task before it runs. The job is now made inside the task."""
    from voice_chat.pipeline.reply import quietly as _quietly

    ran: list[int] = []

    async def warm() -> None:
        ran.append(1)

    async def cancelled_at_once(task_arg: object) -> list[warnings.WarningMessage]:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            task = asyncio.create_task(_quietly(task_arg))  # type: ignore[arg-type]
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            del task
            gc.collect()
        return [w for w in caught if "never awaited" in str(w.message)]

    assert await cancelled_at_once(lambda: warm()) == [] and ran == []
    await _quietly(lambda: warm())  # not cancelled: the job runs
    assert ran == [1]
