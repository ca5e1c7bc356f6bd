"""Cross-site and DNS-rebinding attempts against a real server (auth off, on loopback).

Every request goes over a real socket: httpx for HTTP, the websockets library (or a raw
socket, to forge a ``Host``) for the handshake.
"""

from __future__ import annotations

import asyncio
import json
import socket
import uuid
from pathlib import Path

import httpx
import pytest
import websockets
from websockets.exceptions import InvalidStatus

from voice_chat.client.launcher import LiveServer, start_server
from voice_chat.client.rtclient import RealtimeClient

pytestmark = pytest.mark.slow
EVIL = "http://evil.example"


@pytest.fixture
def server(live_server: LiveServer) -> LiveServer:
    """The shared test server (default settings: loopback, auth off)."""
    return live_server


def _port(server: LiveServer) -> int:
    return int(server.url.rsplit(":", 1)[1])


def raw_handshake(server: LiveServer, path: str, headers: dict[str, str]) -> str:
    """A websocket handshake with exactly these headers (e.g. a forged Host); the reply head."""
    lines = [f"GET {path} HTTP/1.1"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    lines += [
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version: 13",
    ]
    with socket.create_connection(("127.0.0.1", _port(server)), timeout=10) as s:
        s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        reply = b""
        while b"\r\n\r\n" not in reply and (part := s.recv(4096)):
            reply += part
        # the body of a refusal follows the head
        s.settimeout(2)
        try:
            while part := s.recv(4096):
                reply += part
        except OSError:
            pass
    return reply.decode(errors="replace")


# ------------------------------------------------------------------ DNS rebinding: Host
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/conversations?user=victim&character=nova"),
        ("DELETE", "/v1/conversations?user=victim&character=nova"),
        ("GET", "/v1/characters"),
        ("DELETE", "/v1/characters/nova"),
        ("GET", "/healthz"),
        ("GET", "/"),
        ("POST", "/v1/voices/joe/assign"),
    ],
)
def test_foreign_host_refused_on_every_route(server: LiveServer, method: str, path: str) -> None:
    port = _port(server)
    r = httpx.request(method, server.url + path, headers={"Host": f"evil.example:{port}"})
    assert r.status_code == 421, r.text
    err = r.json()["error"]
    assert err["code"] == "host_not_allowed"
    assert "VOICE_CHAT_ALLOWED_HOSTS" in err["message"]


def test_own_names_allowed(server: LiveServer) -> None:
    port = _port(server)
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"LOCALHOST:{port}"):
        assert httpx.get(server.url + "/healthz", headers={"Host": host}).status_code == 200
    # the right name on another port is another server (another origin): refused
    assert httpx.get(server.url + "/healthz", headers={"Host": "localhost:1"}).status_code == 421


def test_websocket_with_foreign_host_refused(server: LiveServer) -> None:
    reply = raw_handshake(
        server, "/v1/realtime?user=victim", {"Host": f"evil.example:{_port(server)}"}
    )
    assert reply.startswith("HTTP/1.1 421"), reply[:200]
    assert "host_not_allowed" in reply
    ok = raw_handshake(server, "/v1/realtime", {"Host": f"127.0.0.1:{_port(server)}"})
    assert ok.startswith("HTTP/1.1 101"), ok[:200]


# ------------------------------------------------------------------ CSRF: Origin
@pytest.mark.parametrize("origin", [EVIL, "null", "http://127.0.0.1:1", "https://evil.example"])
@pytest.mark.parametrize(
    ("method", "path", "content_type", "body"),
    [
        ("POST", "/v1/characters", "text/plain", '{"spec": "chara_card_v2"}'),
        ("POST", "/v1/characters", "multipart/form-data; boundary=x", "--x--\r\n"),
        ("POST", "/v1/voices", "text/plain", '{"name": "x", "kind": "derived"}'),
        ("POST", "/v1/voices/joe/assign", "text/plain", '{"character": "nova"}'),
        ("PUT", "/v1/characters/nova", "application/json", '{"voice": "pip"}'),
        ("DELETE", "/v1/characters/nova", None, ""),
        ("DELETE", "/v1/conversations?user=victim&character=nova", None, ""),
        ("PATCH", "/v1/characters/nova", "text/plain", "{}"),
    ],
)
def test_cross_origin_writes_refused(
    server: LiveServer, origin: str, method: str, path: str, content_type: str | None, body: str
) -> None:
    headers = {"Origin": origin}
    if content_type:
        headers["Content-Type"] = content_type
    r = httpx.request(method, server.url + path, headers=headers, content=body.encode())
    assert r.status_code == 403, r.text
    err = r.json()["error"]
    assert err["code"] == "origin_not_allowed"
    assert origin in err["message"] and "VOICE_CHAT_ALLOWED_ORIGINS" in err["message"]


def test_cross_site_fetch_metadata_without_origin_refused(server: LiveServer) -> None:
    r = httpx.post(
        server.url + "/v1/voices/joe/assign",
        headers={"Sec-Fetch-Site": "cross-site", "Content-Type": "text/plain"},
        content=b'{"character": "nova"}',
    )
    assert r.status_code == 403 and r.json()["error"]["code"] == "origin_not_allowed"


def test_nothing_changed_by_refused_writes(server: LiveServer) -> None:
    nova = httpx.get(server.url + "/v1/characters").json()["characters"]
    assert {c["id"]: c["voice"] for c in nova}["nova"] == "joe"


def test_same_origin_and_originless_writes_pass(server: LiveServer) -> None:
    # the page the server served (its own origin), and a CLI without any Origin
    for headers in ({"Origin": server.url}, {}):
        r = httpx.delete(
            server.url + "/v1/conversations?user=nobody&character=nova", headers=headers
        )
        assert r.status_code == 200, r.text
    localhost = f"http://localhost:{_port(server)}"
    r = httpx.delete(
        server.url + "/v1/conversations?user=nobody&character=nova", headers={"Origin": localhost}
    )
    assert r.status_code == 200


def test_cross_origin_reads_get_no_cors(server: LiveServer) -> None:
    """CORS stays closed: a foreign page gets no Access-Control-Allow-Origin to read with."""
    r = httpx.get(server.url + "/v1/characters", headers={"Origin": EVIL})
    assert "access-control-allow-origin" not in r.headers
    pre = httpx.options(
        server.url + "/v1/characters",
        headers={"Origin": EVIL, "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in pre.headers


@pytest.mark.parametrize("origin", [EVIL, "null"])
async def test_websocket_with_foreign_origin_refused_before_accept(
    server: LiveServer, origin: str
) -> None:
    user = "victim-" + uuid.uuid4().hex[:8]
    # the victim has a conversation
    async with RealtimeClient.connect(server.ws_url, user=user, character="nova") as rt:
        await rt.wait_for("session.created", timeout=30)
    url = f"{server.ws_url}/v1/realtime?user={user}&character=nova"
    with pytest.raises(InvalidStatus) as info:
        async with websockets.connect(url, origin=origin, open_timeout=10):  # type: ignore[arg-type]
            pass
    response = info.value.response
    assert response.status_code == 403
    body = json.loads(response.body)
    assert body["error"]["code"] == "origin_not_allowed"
    assert "VOICE_CHAT_ALLOWED_ORIGINS" in body["error"]["message"]


async def test_websocket_from_own_page_accepted(server: LiveServer) -> None:
    url = f"{server.ws_url}/v1/realtime?character=nova"
    async with websockets.connect(url, origin=server.url, open_timeout=10) as ws:  # type: ignore[arg-type]
        first = json.loads(await asyncio.wait_for(ws.recv(), 30))
        assert first["type"] == "session.created"


# ------------------------------------------------------------------ configured origins: CORS
def test_configured_origin_gets_cors(tmp_path: Path) -> None:
    srv = start_server(
        tmp_path,
        env={
            "VOICE_CHAT_ALLOWED_ORIGINS": "https://game.example, http://tool.example:3000",
            "VOICE_CHAT_ALLOWED_HOSTS": "chat.example",
        },
    )
    try:
        allowed = "https://game.example"
        r = httpx.get(srv.url + "/v1/characters", headers={"Origin": allowed})
        assert r.headers.get("access-control-allow-origin") == allowed
        pre = httpx.options(
            srv.url + "/v1/characters",
            headers={"Origin": allowed, "Access-Control-Request-Method": "DELETE"},
        )
        assert pre.status_code == 200 and "DELETE" in pre.headers["access-control-allow-methods"]
        r = httpx.delete(
            srv.url + "/v1/conversations?user=u1&character=nova",
            headers={"Origin": "http://tool.example:3000"},
        )
        assert r.status_code == 200
        r = httpx.delete(
            srv.url + "/v1/conversations?user=u1&character=nova", headers={"Origin": EVIL}
        )
        assert r.status_code == 403
        assert "access-control-allow-origin" not in r.headers
        # an allowed host name without a port: any port (a reverse proxy's public name)
        assert httpx.get(srv.url + "/healthz", headers={"Host": "chat.example"}).status_code == 200
        assert httpx.get(srv.url + "/healthz", headers={"Host": "evil.example"}).status_code == 421
    finally:
        srv.stop()
