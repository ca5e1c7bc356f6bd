"""Start a voice_chat server as a child process and wait until it is healthy.

Used by the tests, the benchmarks and anyone scripting a server on loopback.
"""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]  # the repository


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LiveServer:
    url: str
    ws_url: str
    data: Path
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)


def start_server(
    data: Path,
    env: dict[str, str] | None = None,
    timeout: float = 180,
    port: int | None = None,
    root: Path | None = None,
    tls: tuple[Path, Path] | None = None,
) -> LiveServer:
    """``voice-chat serve`` on a free loopback port with ``VOICE_CHAT_DATA=data``.

    ``root`` runs the code of another checkout (a benchmark's baseline revision).
    ``tls``: (certificate, key) PEM files: the server speaks https/wss, and the health check
    trusts that certificate.
    """
    port = port or free_port()
    args = ["--port", str(port)]
    verify: bool | ssl.SSLContext = True
    if tls is not None:
        args += ["--ssl-certfile", str(tls[0]), "--ssl-keyfile", str(tls[1])]
        verify = ssl.create_default_context(cafile=str(tls[0]))
    data.mkdir(parents=True, exist_ok=True)
    log_path = data / f"server-{port}.log"
    full_env = {**os.environ, "VOICE_CHAT_DATA": str(data), **(env or {})}
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "voice_chat", "serve", *args],
            cwd=root or ROOT,
            env=full_env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    scheme = "https" if tls else "http"
    url = f"{scheme}://127.0.0.1:{port}"
    server = LiveServer(url, f"{'wss' if tls else 'ws'}://127.0.0.1:{port}", data, proc, log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited:\n{server.log()[-3000:]}")
        try:
            if httpx.get(url + "/healthz", timeout=2, verify=verify).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    server.stop()
    raise RuntimeError(f"server not healthy within {timeout} s:\n{server.log()[-3000:]}")
