"""Soak: several sessions talking for minutes; failed replies, latency early vs late, and RSS.

    .venv/bin/python benchmarks/soak.py                      # 4 sessions x 10 minutes
    .venv/bin/python benchmarks/soak.py --sessions 2 --minutes 2

Each session alternates spoken turns (espeak-ng speech at real-time pace) and typed turns,
listening to every reply to the end, like a person. The server's resident memory is sampled
every 2 s. Reported: replies by status, first-audio p50 in the first and the last quarter of
the run (the ratio shows whether long calls slow down), and RSS after warm-up against RSS at
the end (it must level off, not grow with turns). Writes docs/benchmarks/soak.json and .png.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from voice_chat.audio.synthspeech import espeak, trim
from voice_chat.client.launcher import LiveServer, start_server
from voice_chat.client.rtclient import RealtimeClient

ROOT = Path(__file__).resolve().parent.parent
LINES = [
    "Hi, how are you doing today?",
    "My name is Robin and I live near the sea.",
    "What do you like to do on a rainy afternoon?",
    "I cooked pasta with mushrooms for dinner.",
    "Tell me a short story about a lighthouse.",
    "Do you remember what my name is?",
    "What would you do with a free week?",
    "I think I will go for a walk later.",
    "What is your favorite season and why?",
    "Okay, that sounds nice.",
]
CHARACTERS = ["nova", "aria", "sage", "pip"]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def talker(
    server: LiveServer, index: int, until: float, speech: list[np.ndarray], t0: float
) -> list[dict[str, Any]]:
    turns: list[dict[str, Any]] = []
    character = CHARACTERS[index % len(CHARACTERS)]
    async with RealtimeClient.connect(
        server.ws_url, user=uuid.uuid4().hex, character=character
    ) as rt:
        await rt.wait_for("response.done", timeout=120)
        n = 0
        while time.monotonic() < until:
            start = rt.mark()
            spoken = n % 2 == 0
            line = LINES[(n + index) % len(LINES)]
            if spoken:
                t_end = await rt.send_speech(speech[(n + index) % len(speech)], tail_s=0.8)
            else:
                t_end = time.monotonic()
                await rt.send({"type": "conversation.item.create", "item": {"text": line}})
            status, audio_at, merged, metrics = await await_reply(rt, start)
            errors = [
                e for e in rt.events("error")[-5:] if e["error"]["code"] != "audio_rate_exceeded"
            ]
            turns.append(
                {
                    "session": index,
                    "t_s": time.monotonic() - t0,
                    "spoken": spoken,
                    "status": status,
                    "first_audio_ms": None if audio_at is None else (audio_at - t_end) * 1000,
                    "errors": [e["error"]["code"] for e in errors],
                    "merged": merged,
                    "metrics": metrics,  # the server's own per-stage times for this reply
                }
            )
            n += 1
            await asyncio.sleep(1.0)
    return turns


async def await_reply(
    rt: RealtimeClient, start: int
) -> tuple[str, float | None, int, dict[str, Any]]:
    """Wait for the reply to this turn to complete; a reply begun during a pause and dropped
    because the user went on (``cancelled`` before any audio) is counted, not the answer."""
    merged = 0
    since = start
    deadline = time.monotonic() + 120
    while True:
        try:
            done = await rt.wait_for(
                "response.done", timeout=deadline - time.monotonic(), since=since
            )
        except (TimeoutError, ConnectionError) as exc:
            seen = sorted({e["type"] for e in rt.events()[-40:]})
            return f"error: {exc} (recent events: {', '.join(seen)})", None, merged, {}
        since = rt.log.index(done) + 1
        response = done.event["response"]
        audio = [r.t for r in rt.log[start:since] if r.audio is not None]
        if response["status"] == "cancelled" and not response.get("text"):
            merged += 1
            continue
        metrics = response.get("metrics") or {}
        return response["status"], (audio[0] if audio else None), merged, metrics


async def sample_rss(
    pid: int, stop: asyncio.Event, t0: float, out: list[tuple[float, float]]
) -> None:
    while not stop.is_set():
        out.append((time.monotonic() - t0, rss_mb(pid)))
        await asyncio.sleep(2.0)


def p50(values: list[float]) -> float | None:
    return float(np.median(values)) if values else None


async def run(args: argparse.Namespace) -> dict[str, Any]:
    speech = [trim(espeak(line)) for line in LINES]
    with tempfile.TemporaryDirectory() as tmp:
        server = start_server(Path(tmp), env={"VOICE_CHAT_MAX_SESSIONS": "64"})
        try:
            t0 = time.monotonic()
            until = t0 + args.minutes * 60
            rss: list[tuple[float, float]] = []
            stop = asyncio.Event()
            sampler = asyncio.create_task(sample_rss(server.process.pid, stop, t0, rss))
            results = await asyncio.gather(
                *(talker(server, i, until, speech, t0) for i in range(args.sessions))
            )
            stop.set()
            await sampler
            tracebacks = server.log().count("Traceback")
            if args.server_log is not None:
                args.server_log.write_text(server.log())
        finally:
            server.stop()
    turns = [t for r in results for t in r]
    total = args.minutes * 60
    early = [t["first_audio_ms"] for t in turns if t["t_s"] < total / 4 and t["first_audio_ms"]]
    late = [t["first_audio_ms"] for t in turns if t["t_s"] > total * 3 / 4 and t["first_audio_ms"]]
    warm = [m for s, m in rss if s >= min(60.0, total / 4)]
    statuses: dict[str, int] = {}
    for t in turns:
        statuses[t["status"]] = statuses.get(t["status"], 0) + 1
    return {
        "sessions": args.sessions,
        "minutes": args.minutes,
        "replies": len(turns),
        "statuses": statuses,
        "failed": sum(1 for t in turns if t["status"] != "completed"),
        "first_audio_p50_early_ms": p50(early),
        "first_audio_p50_late_ms": p50(late),
        "late_over_early": (p50(late) / p50(early)) if early and late else None,
        "rss_after_warmup_mb": warm[0] if warm else None,
        "rss_end_mb": rss[-1][1] if rss else None,
        "rss_max_mb": max(m for _, m in rss) if rss else None,
        "tracebacks": tracebacks,
        "rss": rss,
        "turns": turns,
    }


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
    xs, ys = zip(*result["rss"], strict=True) if result["rss"] else ((), ())
    a.plot(xs, ys)
    a.set_ylabel("server RSS (MB)")
    a.set_title(f"soak: {result['sessions']} sessions, {result['minutes']} min")
    for s in range(result["sessions"]):
        pts = [
            (t["t_s"], t["first_audio_ms"])
            for t in result["turns"]
            if t["session"] == s and t["first_audio_ms"]
        ]
        if pts:
            b.plot(*zip(*pts, strict=True), ".", label=f"session {s}")
    b.set_xlabel("seconds")
    b.set_ylabel("first reply audio (ms)")
    b.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=4)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks")
    parser.add_argument("--server-log", type=Path, help="keep the server's log here")
    args = parser.parse_args()
    if args.sessions < 1 or args.minutes <= 0:
        parser.error("--sessions must be >= 1 and --minutes > 0")
    result = asyncio.run(run(args))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "soak.json").write_text(json.dumps(result, indent=1))
    plot(result, args.out / "soak.png")
    print(f"{'replies':28s} {result['replies']}  {result['statuses']}")
    print(f"{'failed replies':28s} {result['failed']}")
    print(
        f"{'first audio p50 early / late':28s} {result['first_audio_p50_early_ms']} / {result['first_audio_p50_late_ms']} ms  (x{result['late_over_early']})"
    )
    print(
        f"{'RSS after warm-up / end / max':28s} {result['rss_after_warmup_mb']} / {result['rss_end_mb']} / {result['rss_max_mb']} MB"
    )
    print(f"{'tracebacks in the server log':28s} {result['tracebacks']}")
    return 0 if result["failed"] == 0 and result["tracebacks"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
