"""Auth on: every route enforces its role, the user comes from the key, tokens work for the
websocket, a revoked key stops working, and a public bind without auth refuses to start.

One real server (real models) with ``VOICE_CHAT_AUTH=on``; keys made with the real CLI.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import websockets
from websockets.exceptions import InvalidStatus

from voice_chat.client.launcher import ROOT, LiveServer, free_port, start_server
from voice_chat.client.rtclient import RealtimeClient

pytestmark = pytest.mark.slow


def cli(data: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "voice_chat", *args],
        cwd=ROOT,
        env={**os.environ, "VOICE_CHAT_DATA": str(data), **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


def create_key(data: Path, role: str, user: str | None = None) -> str:
    args = ["keys", "create", "--role", role] + (["--user", user] if user else [])
    done = cli(data, *args)
    assert done.returncode == 0, done.stderr
    key = done.stdout.strip()
    assert key.startswith("vc_") and "shown only now" in done.stderr
    return key


@dataclass
class AuthServer:
    server: LiveServer
    admin: str
    alice: str
    bob: str

    @property
    def url(self) -> str:
        return self.server.url


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture(scope="module")
def auth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthServer]:
    data = tmp_path_factory.mktemp("auth")
    keys = (
        create_key(data, "admin"),
        create_key(data, "user", "alice"),
        create_key(data, "user", "bob"),
    )
    srv = start_server(
        data, env={"VOICE_CHAT_AUTH": "on", "VOICE_CHAT_MAX_AUTH_FAILURES_PER_MIN": "100000"}
    )
    yield AuthServer(srv, *keys)
    srv.stop()


# ------------------------------------------------------------------ no key, bad key
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/characters"),
        ("GET", "/v1/characters/nova"),
        ("GET", "/v1/characters/nova/export"),
        ("POST", "/v1/characters"),
        ("PUT", "/v1/characters/nova"),
        ("DELETE", "/v1/characters/nova"),
        ("GET", "/v1/voices"),
        ("POST", "/v1/voices"),
        ("POST", "/v1/voices/joe/preview"),
        ("POST", "/v1/voices/joe/assign"),
        ("DELETE", "/v1/voices/joe"),
        ("GET", "/v1/conversations?user=alice&character=nova"),
        ("DELETE", "/v1/conversations?user=alice&character=nova"),
        ("GET", "/v1/keys"),
        ("POST", "/v1/auth/token"),
        ("GET", "/metrics"),
        ("GET", "/openapi.json"),
    ],
)
def test_every_route_needs_a_key(auth: AuthServer, method: str, path: str) -> None:
    r = httpx.request(method, auth.url + path)
    assert r.status_code == 401, r.text
    err = r.json()["error"]
    assert err["code"] == "auth_required"
    assert "Authorization: Bearer" in err["message"]
    assert r.headers["www-authenticate"].startswith("Bearer")
    bad = httpx.request(method, auth.url + path, headers=bearer("vc_0123456789_" + "x" * 43))
    assert bad.status_code == 401 and bad.json()["error"]["code"] == "invalid_key"
    junk = httpx.request(method, auth.url + path, headers=bearer("hunter2"))
    assert junk.status_code == 401 and junk.json()["error"]["code"] == "invalid_key"


def test_public_routes_stay_open(auth: AuthServer) -> None:
    for path in ("/healthz", "/", "/static/app.js"):
        assert httpx.get(auth.url + path).status_code == 200, path
    info = httpx.get(auth.url + "/v1/auth").json()
    assert info == {"auth": "on", "identity": None}
    me = httpx.get(auth.url + "/v1/auth", headers=bearer(auth.alice)).json()
    assert me["identity"]["user_id"] == "alice" and me["identity"]["role"] == "user"


async def test_websocket_needs_a_key(auth: AuthServer) -> None:
    url = auth.server.ws_url + "/v1/realtime?character=nova"
    with pytest.raises(InvalidStatus) as info:
        async with websockets.connect(url, open_timeout=10):
            pass
    assert info.value.response.status_code == 401
    assert "Authorization: Bearer" in json.loads(info.value.response.body)["error"]["message"]


# ------------------------------------------------------------------ roles
@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/v1/characters", b'{"name": "X"}'),
        ("PUT", "/v1/characters/nova", b'{"voice": "pip"}'),
        ("DELETE", "/v1/characters/nova", b""),
        ("POST", "/v1/voices", b'{"name": "x", "kind": "derived"}'),
        ("POST", "/v1/voices/joe/assign", b'{"character": "nova"}'),
        ("DELETE", "/v1/voices/aria", b""),
        ("GET", "/v1/keys", b""),
        ("POST", "/v1/keys", b'{"role": "admin"}'),
    ],
)
def test_user_key_cannot_administer(auth: AuthServer, method: str, path: str, body: bytes) -> None:
    r = httpx.request(method, auth.url + path, headers=bearer(auth.alice), content=body)
    assert r.status_code == 403, r.text
    err = r.json()["error"]
    assert err["code"] == "forbidden" and "admin key" in err["message"]


def test_user_key_can_read_and_talk_routes(auth: AuthServer) -> None:
    h = bearer(auth.alice)
    assert httpx.get(auth.url + "/v1/characters", headers=h).status_code == 200
    assert httpx.get(auth.url + "/v1/voices", headers=h).status_code == 200
    assert httpx.get(auth.url + "/metrics", headers=h).status_code == 200


def test_admin_manages_keys_over_http(auth: AuthServer) -> None:
    h = bearer(auth.admin)
    made = httpx.post(auth.url + "/v1/keys", headers=h, json={"role": "user", "user": "carol"})
    assert made.status_code == 201, made.text
    carol = made.json()["key"]
    assert httpx.get(auth.url + "/v1/characters", headers=bearer(carol)).status_code == 200
    listed = httpx.get(auth.url + "/v1/keys", headers=h).json()["keys"]
    assert {k["user_id"] for k in listed} >= {"alice", "bob", "carol"}
    assert all("key_hash" not in k and "key" not in k for k in listed)
    gone = httpx.delete(auth.url + f"/v1/keys/{made.json()['id']}", headers=h)
    assert gone.status_code == 200
    r = httpx.get(auth.url + "/v1/characters", headers=bearer(carol))
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_key"
    bad = httpx.post(auth.url + "/v1/keys", headers=h, json={"role": "root"})
    assert bad.status_code == 422


# ------------------------------------------------------------------ private conversations
async def _say(auth: AuthServer, key: str, text: str, **params: str) -> dict:
    async with RealtimeClient.connect(
        auth.server.ws_url, headers=bearer(key), character="nova", **params
    ) as rt:
        created = await rt.wait_for("session.created", timeout=30)
        await rt.send({"type": "conversation.item.create", "item": {"text": text}})
        await rt.wait_for("response.done", timeout=120)
        return created.event["session"]


async def test_users_see_only_their_own_conversations(auth: AuthServer) -> None:
    secret = "my locker code is " + uuid.uuid4().hex[:6]
    session = await _say(auth, auth.alice, secret)
    assert session["user"]["id"] == "alice"
    mine = httpx.get(auth.url + "/v1/conversations?character=nova", headers=bearer(auth.alice))
    assert mine.status_code == 200 and secret in mine.text
    assert mine.json()["user_id"] == "alice"
    # bob cannot read or delete alice's conversation
    for method in ("GET", "DELETE"):
        r = httpx.request(
            method,
            auth.url + "/v1/conversations?user=alice&character=nova",
            headers=bearer(auth.bob),
        )
        assert r.status_code == 403, r.text
        assert r.json()["error"]["code"] == "forbidden"
    theirs = httpx.get(auth.url + "/v1/conversations?character=nova", headers=bearer(auth.bob))
    assert theirs.json()["user_id"] == "bob" and secret not in theirs.text
    # an admin may read anyone's
    r = httpx.get(
        auth.url + "/v1/conversations?user=alice&character=nova", headers=bearer(auth.admin)
    )
    assert secret in r.text
    # bob's websocket cannot become alice with ?user=
    url = auth.server.ws_url + "/v1/realtime?character=nova&user=alice"
    async with websockets.connect(url, additional_headers=bearer(auth.bob)) as ws:
        first = json.loads(await ws.recv())
        assert first["type"] == "error" and first["error"]["code"] == "forbidden"
        assert "leave out ?user=" in first["error"]["message"]


async def test_token_for_the_websocket(auth: AuthServer) -> None:
    r = httpx.post(auth.url + "/v1/auth/token", headers=bearer(auth.bob))
    assert r.status_code == 200, r.text
    body = r.json()
    token = body["token"]
    assert body["user_id"] == "bob" and body["expires_in"] > 0
    cookie = r.headers["set-cookie"]
    assert "voice_chat_token=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    url = auth.server.ws_url + f"/v1/realtime?character=nova&token={token}"
    async with websockets.connect(url) as ws:
        first = json.loads(await ws.recv())
        assert first["type"] == "session.created" and first["session"]["user"]["id"] == "bob"
    # as a bearer token on HTTP, and as the page's cookie
    assert httpx.get(auth.url + "/v1/characters", headers=bearer(token)).status_code == 200
    cookies = {"voice_chat_token": token}
    assert httpx.get(auth.url + "/v1/characters", cookies=cookies).status_code == 200
    # a token cannot mint tokens, and a forged one is refused
    again = httpx.post(auth.url + "/v1/auth/token", headers=bearer(token))
    assert again.status_code == 403 and again.json()["error"]["code"] == "key_required"
    forged = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    r = httpx.get(auth.url + "/v1/characters", headers=bearer(forged))
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_token"


def test_key_revoked_with_the_cli_stops_working(auth: AuthServer) -> None:
    data = auth.server.data
    key = create_key(data, "user", "dave")
    token = httpx.post(auth.url + "/v1/auth/token", headers=bearer(key)).json()["token"]
    assert httpx.get(auth.url + "/v1/characters", headers=bearer(key)).status_code == 200
    key_id = key.split("_")[1]
    listed = cli(data, "keys", "list")
    assert key_id in listed.stdout and key not in listed.stdout
    done = cli(data, "keys", "revoke", key_id)
    assert done.returncode == 0, done.stderr
    assert cli(data, "keys", "revoke", key_id).returncode == 2
    time.sleep(5.5)  # the server's key cache holds a verdict for 5 s
    for credential in (key, token):
        r = httpx.get(auth.url + "/v1/characters", headers=bearer(credential))
        assert r.status_code == 401, r.text


def test_keys_cli_bad_input(tmp_path: Path) -> None:
    done = cli(tmp_path, "keys", "create", "--role", "root")
    assert done.returncode == 2 and "invalid choice" in done.stderr
    done = cli(tmp_path, "keys", "create", "--role", "user", "--user", "bad user!")
    assert done.returncode == 2 and "user:" in done.stderr
    assert cli(tmp_path, "keys", "list").returncode == 0


# ------------------------------------------------------------------ exposure
def test_public_bind_without_auth_refuses_to_start(tmp_path: Path) -> None:
    port = str(free_port())
    done = cli(tmp_path, "serve", "--host", "0.0.0.0", "--port", port)
    assert done.returncode == 2
    assert "refusing to listen on 0.0.0.0" in done.stderr
    assert "--auth on" in done.stderr and "--allow-insecure-public" in done.stderr


def test_insecure_public_bind_warns_loudly(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "voice_chat", "serve", "--host", "0.0.0.0", "--port", str(port)],
            cwd=ROOT,
            env={
                **os.environ,
                "VOICE_CHAT_DATA": str(tmp_path),
                "VOICE_CHAT_ALLOW_INSECURE_PUBLIC": "1",
            },
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while "INSECURE" not in log.read_text() and time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text()
            time.sleep(0.2)
        assert "INSECURE" in log.read_text()
    finally:
        proc.terminate()
        proc.wait(20)


async def test_openai_sdk_authenticates_with_its_bearer_key(auth: AuthServer) -> None:
    """The OpenAI Realtime dialect: the SDK's api_key is the server's API key."""
    import openai
    from openai import AsyncOpenAI

    good = AsyncOpenAI(base_url=auth.url + "/v1", api_key=auth.alice)
    assert "nova" in {m.id for m in (await good.models.list()).data}
    async with good.realtime.connect(model="nova") as conn:
        first = json.loads(await conn.recv_bytes())
        assert first["type"] == "session.created" and first["session"]["model"] == "nova"
    bad = AsyncOpenAI(base_url=auth.url + "/v1", api_key="vc_not-a-real-key", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        await bad.models.list()
    with pytest.raises(Exception) as refused:
        async with bad.realtime.connect(model="nova") as conn:
            await conn.recv_bytes()
    assert "401" in str(refused.value), refused.value


def test_terminal_client_with_and_without_a_key(auth: AuthServer) -> None:
    def talk(*extra: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "voice_chat",
                "talk",
                "--server",
                auth.server.ws_url,
                "--character",
                "nova",
                "--say",
                "Hello!",
                "--text",
                *extra,
            ],
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            capture_output=True,
            text=True,
            timeout=150,
        )

    refused = talk()
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    assert "401" in refused.stderr and "API key" in refused.stderr, refused.stderr
    ok = talk("--api-key", auth.bob)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip()
    by_env = talk(env={"VOICE_CHAT_API_KEY": auth.bob})
    assert by_env.returncode == 0, by_env.stderr


def test_wrong_keys_are_rate_limited(tmp_path: Path) -> None:
    key = create_key(tmp_path, "user")
    srv = start_server(
        tmp_path, env={"VOICE_CHAT_AUTH": "on", "VOICE_CHAT_MAX_AUTH_FAILURES_PER_MIN": "5"}
    )
    try:
        assert httpx.get(srv.url + "/v1/characters", headers=bearer(key)).status_code == 200
        statuses = []
        for i in range(8):
            wrong = bearer(f"vc_{i:010x}_" + "x" * 43)
            statuses.append(httpx.get(srv.url + "/v1/characters", headers=wrong).status_code)
        assert statuses == [401] * 5 + [429] * 3, statuses
        r = httpx.get(srv.url + "/v1/characters", headers=bearer("nope"))
        assert r.status_code == 429 and r.json()["error"]["code"] == "rate_limited"
        assert "VOICE_CHAT_MAX_AUTH_FAILURES_PER_MIN" in r.json()["error"]["message"]
        assert int(r.headers["retry-after"]) >= 1
        # a key verified a moment ago still works (wrong keys cannot lock its owner out)...
        assert httpx.get(srv.url + "/v1/characters", headers=bearer(key)).status_code == 200
        assert httpx.get(srv.url + "/healthz").status_code == 200  # public routes stay open
        time.sleep(5.5)  # ...but after the 5 s cache, anything unverified waits for the bucket
        assert httpx.get(srv.url + "/v1/characters", headers=bearer(key)).status_code == 429
        time.sleep(7.5)  # 5 a minute: one every 12 s
        assert httpx.get(srv.url + "/v1/characters", headers=bearer(key)).status_code == 200
    finally:
        srv.stop()
