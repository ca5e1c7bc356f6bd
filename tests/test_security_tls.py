"""TLS: ``voice-chat serve --ssl-certfile/--ssl-keyfile`` serves https and wss (uvicorn's TLS),
with a throw-away self-signed certificate made by ``openssl``."""

from __future__ import annotations

import json
import os
import shutil
import ssl
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from websockets.sync.client import connect

from voice_chat.client.launcher import ROOT, free_port, start_server

pytestmark = pytest.mark.slow


def self_signed(folder: Path) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def test_https_and_wss(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    server = start_server(tmp_path / "data", tls=(cert, key))
    try:
        assert server.url.startswith("https://")
        trust = ssl.create_default_context(cafile=str(cert))
        r = httpx.get(server.url + "/v1/characters", verify=trust)
        assert r.status_code == 200 and r.json()["characters"]
        with pytest.raises(httpx.HTTPError):  # not trusted without the certificate
            httpx.get(server.url + "/healthz")
        plain = server.url.replace("https://", "http://")
        with pytest.raises(httpx.HTTPError):  # no plain-text fallback
            httpx.get(plain + "/healthz")
        # A shared CI machine can be slow to answer right after start-up: a generous opening
        # timeout, and the server's log in the failure when even that is not met.
        try:
            with connect(
                server.ws_url + "/v1/realtime?character=nova", ssl=trust, open_timeout=30
            ) as ws:
                first = json.loads(ws.recv(timeout=30))
        except TimeoutError as exc:
            raise AssertionError(f"no wss handshake:\n{server.log()[-4000:]}") from exc
        assert first["type"] == "session.created"
    finally:
        server.stop()


def test_tls_needs_both_files(tmp_path: Path) -> None:
    cert, _ = self_signed(tmp_path)
    for args in (
        ["--ssl-certfile", str(cert)],
        ["--ssl-certfile", str(cert), "--ssl-keyfile", str(tmp_path / "none.pem")],
    ):
        done = subprocess.run(
            [sys.executable, "-m", "voice_chat", "serve", "--port", str(free_port()), *args],
            cwd=ROOT,
            env={**os.environ, "VOICE_CHAT_DATA": str(tmp_path / "d")},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 2
        assert "--ssl-keyfile" in done.stderr
