"""What the security layers cost per HTTP request: Host/Origin checks, API keys, limits.

    .venv/bin/python benchmarks/security_overhead.py              # ~1 minute on 2 cores
    .venv/bin/python benchmarks/security_overhead.py --requests 300

The server's FastAPI app runs in-process (httpx's ASGI transport, no sockets, so the layers
are not hidden behind network noise), in four set-ups measured in one run, interleaved in
rounds: the app with its security middleware removed (the baseline), the default (Host and
Origin checks, auth off), auth on with an API key (``Authorization: Bearer``), and auth on
with a short-lived token. Each request is ``GET /v1/characters``. Reports the median and p95
per request and the ratio to the baseline; writes docs/benchmarks/security_overhead.json and
.png. Models are not loaded: the route reads the character registry only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from voice_chat.memory import Store
from voice_chat.memory.keys import KeyStore
from voice_chat.server.app import create_app
from voice_chat.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "benchmarks"
BASE = "http://127.0.0.1:8000"
SETUPS = ("no security layers", "default (auth off)", "auth on, key", "auth on, token")


def _app(data: Path, auth: str, bare: bool) -> Any:
    app = create_app(Settings(data=data, auth=auth, port=8000))  # type: ignore[call-arg]
    if bare:
        app.user_middleware = []  # before the first request builds the middleware stack
    return app


async def _client(app: Any, headers: dict[str, str]) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app)
    return httpx.AsyncClient(transport=transport, base_url=BASE, headers=headers)


async def _time(client: httpx.AsyncClient, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        r = await client.get("/v1/characters")
        out.append((time.perf_counter() - t) * 1e6)
        assert r.status_code == 200, r.text
    return out


async def run(requests: int, rounds: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        with Store(data / "voice_chat.db") as store:
            key = KeyStore(store).create("user", user_id="bench")
        off, on = _app(data, "off", False), _app(data, "on", False)
        bare = _app(data, "off", True)
        keyed = await _client(on, {"Authorization": f"Bearer {key}"})
        token = (await keyed.post("/v1/auth/token")).json()["token"]
        clients = {
            SETUPS[0]: await _client(bare, {}),
            SETUPS[1]: await _client(off, {}),
            SETUPS[2]: keyed,
            SETUPS[3]: await _client(on, {"Authorization": f"Bearer {token}"}),
        }
        samples: dict[str, list[float]] = {name: [] for name in SETUPS}
        for client in clients.values():
            await _time(client, 20)  # warm-up
        for _ in range(rounds):
            for name, client in clients.items():
                samples[name] += await _time(client, requests // rounds)
        for client in clients.values():
            await client.aclose()
        for app in (off, on, bare):
            await asyncio.to_thread(app.state.runtime.store.close)
    base = statistics.median(samples[SETUPS[0]])
    rows = []
    for name in SETUPS:
        values = sorted(samples[name])
        median = statistics.median(values)
        rows.append(
            {
                "setup": name,
                "requests": len(values),
                "median_us": round(median, 1),
                "p95_us": round(values[int(0.95 * (len(values) - 1))], 1),
                "ratio_to_baseline": round(median / base, 3),
                "added_us": round(median - base, 1),
            }
        )
    return {
        "machine": f"{platform.machine()}, {platform.system()}, Python {platform.python_version()}",
        "note": "in-process ASGI, GET /v1/characters; a busy shared 2-core machine",
        "results": rows,
    }


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["results"]
    fig, ax = plt.subplots(figsize=(7, 3.2))
    names = [r["setup"] for r in rows]
    ax.barh(names, [r["median_us"] for r in rows], color="#5b8def")
    ax.errorbar(
        [r["median_us"] for r in rows],
        names,
        xerr=[[0] * len(rows), [r["p95_us"] - r["median_us"] for r in rows]],
        fmt="none",
        ecolor="#333",
        capsize=3,
    )
    for i, r in enumerate(rows):
        ax.text(r["median_us"], i, f"  {r['ratio_to_baseline']:.2f}x", va="center")
    ax.invert_yaxis()
    ax.set_xlabel("µs per request (median; whisker: p95)")
    ax.set_title("Security layers per HTTP request")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="per set-up (default 2000)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    args = parser.parse_args(argv)
    result = asyncio.run(run(args.requests, args.rounds))
    print(f"{'set-up':<22} {'n':>6} {'median µs':>10} {'p95 µs':>8} {'ratio':>6} {'added µs':>9}")
    for r in result["results"]:
        print(
            f"{r['setup']:<22} {r['requests']:>6} {r['median_us']:>10} {r['p95_us']:>8} "
            f"{r['ratio_to_baseline']:>6} {r['added_us']:>9}"
        )
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "security_overhead.json").write_text(json.dumps(result, indent=2) + "\n")
    plot(result, OUT / "security_overhead.png")
    print(f"wrote {OUT / 'security_overhead.json'} and .png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
