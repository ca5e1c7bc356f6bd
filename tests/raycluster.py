"""A throwaway local Ray cluster on loopback for the Ray Serve tests.

``ray start --head --block`` in its own process group, every port chosen free, its own temp
folder: it shares nothing with any other Ray on the machine, and ``stop()`` ends exactly the
processes it started. Token authentication is off for it (``RAY_AUTH_MODE=disabled`` in this
process and so in every driver the tests start).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from voice_chat.client.launcher import free_port


class RayCluster:
    def __init__(self, num_cpus: int = 8) -> None:
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.temp = Path(tempfile.mkdtemp(prefix="vcray-", dir="/tmp"))
        self.log_path = self.temp / "head.log"
        self.num_cpus = num_cpus
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 120) -> RayCluster:
        ray_cli = Path(sys.executable).with_name("ray")
        args = [
            str(ray_cli), "start", "--head", "--block", f"--port={self.port}",
            "--node-ip-address=127.0.0.1", f"--num-cpus={self.num_cpus}",
            "--include-dashboard=false", "--disable-usage-stats", "--object-store-memory=300000000",
            f"--temp-dir={self.temp}", f"--ray-client-server-port={free_port()}",
            f"--metrics-export-port={free_port()}", f"--dashboard-agent-listen-port={free_port()}",
            f"--node-manager-port={free_port()}", f"--object-manager-port={free_port()}",
            f"--runtime-env-agent-port={free_port()}", f"--dashboard-agent-grpc-port={free_port()}",
        ]  # fmt: skip
        # A private loopback cluster: no token auth (its drivers get the same variable).
        os.environ["RAY_AUTH_MODE"] = "disabled"
        env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"ray start exited:\n{self.log()[-3000:]}")
            if "Ray runtime started" in self.log():
                return self
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"Ray did not start within {timeout} s:\n{self.log()[-3000:]}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        proc, self.process = self.process, None
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)  # --block tears its Ray processes down
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        shutil.rmtree(self.temp, ignore_errors=True)
