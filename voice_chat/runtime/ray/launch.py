"""``voice-chat serve --backend ray``: the server as a Ray Serve application.

Without ``--ray-address`` a local Ray is started for this process (on loopback) and stops
with it. With an address (``host:port`` of a cluster's head, ``ray://host:10001``, or
``auto``) the application is deployed onto that cluster. Either way Serve's HTTP proxy
listens on ``--host``/``--port``, and this process waits until the application is running,
then until Ctrl-C.

Failures say what to do: an address with nothing listening is refused at once (Ray itself
would retry for minutes); a deployment that cannot start (a missing model, say) stops the
launch with that deployment's own error, which ``/healthz`` of a running ingress reports too.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from voice_chat.runtime.ray.status import APP_NAME, summary
from voice_chat.settings import Settings

DEPLOY_TIMEOUT_S = 900.0


def _fail(message: str, code: int = 1) -> int:
    print(f"voice-chat: {message}", file=sys.stderr, flush=True)
    return code


def unreachable(address: str, timeout: float = 3.0) -> str | None:
    """Why nothing answers at a ``host:port`` Ray address (None if something listens)."""
    if address == "auto":
        return None
    hostport = address.removeprefix("ray://")
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit():
        return f"not a Ray address: {address!r} (use host:port, ray://host:port or auto)"
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            return None
    except OSError as exc:
        return f"nothing answers at {hostport} ({exc.strerror or exc})"


def _connect(settings: Settings) -> Any:
    import ray

    address = settings.ray_address
    quiet: dict[str, Any] = {"log_to_driver": False, "configure_logging": False}
    if address:
        return ray.init(address=address, **quiet)
    # Logical CPUs for placement: the default deployments ask for 2.25 (ingress 0.25, STT 1,
    # LLM 0.5, TTS 0.5), plus room for a replacement replica while one restarts.
    return ray.init(
        num_cpus=max(4, os.cpu_count() or 1),
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        **quiet,
    )


def serve_on_ray(settings: Settings, application: Callable[[Settings], Any]) -> int:
    """Run ``application(settings)`` (a Serve application) until Ctrl-C; the exit code."""
    try:
        import ray
        from ray import serve
    except ImportError:
        return _fail("--backend ray needs Ray Serve: pip install 'voice-chat[ray]'", 2)
    address = settings.ray_address
    if address and (why := unreachable(address)):
        return _fail(
            f"cannot reach the Ray cluster at {address!r}: {why}. Start one with "
            "`ray start --head`, or leave out --ray-address for a local Ray.",
            2,
        )
    try:
        _connect(settings)
    except Exception as exc:  # noqa: BLE001 - reported to the operator, then exit
        return _fail(f"cannot connect to Ray at {address or 'a new local cluster'}: {exc}", 2)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        http: dict[str, Any] = {"host": settings.host, "port": settings.port}
        if settings.ssl_certfile and settings.ssl_keyfile:  # Serve's proxy terminates TLS
            http |= {"ssl_certfile": str(settings.ssl_certfile),
                     "ssl_keyfile": str(settings.ssl_keyfile)}  # fmt: skip
        serve.start(http_options=http)
        print(f"voice-chat: deploying to Ray ({ray.get_runtime_context().gcs_address})", flush=True)
        problem = _deploy(serve, application(settings))
    except Exception as exc:  # noqa: BLE001 - Serve itself could not start
        problem = " ".join(str(exc).split())
    if problem:
        _shutdown(serve, ray, own_cluster=not address)
        return _fail(f"the Ray Serve application failed to start: {problem[:2000]}")
    print(f"voice-chat: serving on http://{settings.host}:{settings.port} (Ray Serve)", flush=True)
    try:
        while not stop.wait(1.0):
            pass
    finally:
        _shutdown(serve, ray, own_cluster=not address)
    return 0


def _deploy(serve: Any, app: Any, timeout: float = DEPLOY_TIMEOUT_S) -> str | None:
    """Deploy and wait until the application runs; why not, if it does not."""
    errors: list[str] = []

    def run() -> None:
        try:
            serve.run(app, name=APP_NAME, route_prefix="/", blocking=False)
        except Exception as exc:  # noqa: BLE001 - reported by the loop below
            errors.append(" ".join(str(exc).split()))

    runner = threading.Thread(target=run, daemon=True)
    runner.start()
    deadline, last_note = time.monotonic() + timeout, time.monotonic()
    while True:
        runner.join(1.0)
        status = serve.status().applications.get(APP_NAME)
        state = str(getattr(status.status, "value", status.status)) if status else "NOT_STARTED"
        if state == "RUNNING" and not runner.is_alive():
            return None
        if errors or state == "DEPLOY_FAILED":
            status = serve.status().applications.get(APP_NAME)
            return "; ".join([*errors[:1], _explain(status)])
        if time.monotonic() > deadline:
            return f"not running after {timeout:.0f} s: {_explain(status)}"
        if time.monotonic() - last_note > 30:
            last_note = time.monotonic()
            print(f"voice-chat: still deploying: {_explain(status)}", flush=True)


def _explain(status: Any) -> str:
    if status is None:
        return "the application was not created"
    parts = []
    for name, dep in status.deployments.items():
        state = str(getattr(dep.status, "value", dep.status))
        if state != "HEALTHY":
            parts.append(f"{name} {state}: {summary(dep.message)}".strip(": "))
    return "; ".join(parts) or summary(status.message) or "no details"


def _shutdown(serve: Any, ray: Any, *, own_cluster: bool) -> None:
    try:
        if own_cluster:
            serve.shutdown()
        else:
            serve.delete(APP_NAME)
    except Exception:  # noqa: BLE001 - shutting down anyway
        pass
    time.sleep(0.2)
    ray.shutdown()
