"""Shared fixtures: a real server process on a free loopback port, with real models."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent


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


def start_server(data: Path, env: dict[str, str] | None = None, timeout: float = 180) -> LiveServer:
    port = free_port()
    log_path = data / "server.log"
    data.mkdir(parents=True, exist_ok=True)
    full_env = {**os.environ, "VOICE_CHAT_DATA": str(data), **(env or {})}
    log_file = open(log_path, "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "voice_chat", "serve", "--port", str(port)],
        cwd=ROOT,
        env=full_env,
        stdout=log_file,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {log_path.read_text(errors='replace')[-3000:]}")
        try:
            if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                return LiveServer(url, f"ws://127.0.0.1:{port}", data, proc, log_path)
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    proc.terminate()
    raise RuntimeError(f"server not healthy in {timeout} s: {log_path.read_text()[-3000:]}")


def stop_server(server: LiveServer) -> None:
    server.process.terminate()
    try:
        server.process.wait(20)
    except subprocess.TimeoutExpired:
        server.process.kill()


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One real server (real models) shared by the whole test session."""
    server = start_server(tmp_path_factory.mktemp("server-data"))
    yield server
    stop_server(server)
