"""In-process against through Ray Serve, in the same run, and a capacity model for N talkers.

    .venv/bin/python benchmarks/scale.py            # about 8 minutes on 2 cores
    .venv/bin/python benchmarks/scale.py --quick    # a smoke run

Starts two servers with the same models: `voice-chat serve` (engines in the process) and
`voice-chat serve --backend ray` on a local Ray cluster on loopback (engines in their own
replica processes). Then:

1. the same spoken turns (espeak-ng speech at real-time pace) alternate between the two, and
   voice-to-voice latency (end of the user's speech to the first reply audio byte) is compared:
   the difference is the cost of the hop through deployment handles;
2. 1, 2 and 4 concurrent talkers on each server: first-audio latency against sessions;
3. the CPU-seconds each stage costs per turn, read from the Ray replica processes themselves
   (STT, LLM, TTS, and the ingress: websocket, listening, pipeline), and the whole process's
   CPU per turn of the in-process server;
4. from those, the CPUs (CPU-only) and the CPUs + GPUs (STT and the LLM on GPUs, with the
   stated assumptions) that N concurrent talkers need, N = 1 .. 10,000.

Writes docs/benchmarks/scale.json and scale.png. Run it alone: it measures speed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "benchmarks"), str(ROOT / "tests")]

from latency import CHARACTERS, PROMPTS, VOICES, pct, spoken_turn  # noqa: E402
from raycluster import RayCluster  # noqa: E402

from voice_chat.audio.synthspeech import espeak, trim  # noqa: E402
from voice_chat.client.launcher import LiveServer, start_server  # noqa: E402
from voice_chat.client.rtclient import RealtimeClient  # noqa: E402

STAGES = ("STT", "LLM", "TTS", "Ingress")
TALKERS = [1, 10, 100, 1_000, 10_000]
# Stated assumptions of the capacity model (not measured here: no GPU on this machine).
ASSUME = {
    "turn_every_s": 15.0,  # a talker's turn cycle: ~3 s speech, ~5 s reply audio, pauses
    "cpu_utilisation": 0.6,  # headroom so queues stay short at the p95
    "gpu_utilisation": 0.6,
    "stt_gpu_s_per_turn": 0.05,  # faster-whisper base, FP16, one short turn on an L4-class GPU
    "llm_tokens_per_reply": 60,
    "llm_gpu_tokens_per_s": 1500.0,  # vLLM, 7B model, prefix caching, aggregate per L4-class GPU
}


def proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads) from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def usage() -> dict[str, float]:
    """CPU seconds so far of each deployment's (single) replica process."""
    from ray import serve

    out = {}
    for name in STAGES:
        handle = serve.get_deployment_handle(name, app_name="voice_chat")
        out[name] = float((await handle.usage.remote())["cpu_s"])
    return out


async def alternate(
    servers: dict[str, LiveServer], utterances: list[Any]
) -> tuple[dict[str, list[dict[str, Any]]], dict[str, float], float]:
    """The same turns on both servers, one after the other; CPU per turn of each stage."""
    turns: dict[str, list[dict[str, Any]]] = {k: [] for k in servers}
    ray_cpu: dict[str, float] = dict.fromkeys(STAGES, 0.0)
    local_cpu = 0.0
    clients = {}
    async with contextlib.AsyncExitStack() as stack:
        for name, server in servers.items():
            connect = RealtimeClient.connect(server.ws_url, user=uuid.uuid4().hex, character="nova")
            rt = await stack.enter_async_context(connect)
            await rt.wait_for("response.done", timeout=120)
            clients[name] = rt
        await asyncio.sleep(1.5)
        for i, audio in enumerate(utterances):
            for name, rt in clients.items():
                before = await usage() if name == "ray" else proc_cpu_s(servers[name].process.pid)
                try:
                    turn = await spoken_turn(rt, audio, full=True)
                except TimeoutError:  # no turn detected: counted, and the CPU still measured
                    turn = {"first_audio_ms": None, "status": "no_reply", "transcript": ""}
                await asyncio.sleep(0.6)  # the reply's prefill of the next prompt is part of it
                if name == "ray":
                    after = await usage()
                    for stage in STAGES:
                        ray_cpu[stage] += after[stage] - before[stage]  # type: ignore[index]
                else:
                    local_cpu += proc_cpu_s(servers[name].process.pid) - before  # type: ignore[operator]
                turns[name].append(turn)
                print(
                    f"  {i:2d} {name:6s} first audio {turn['first_audio_ms'] or float('nan'):6.0f} ms  {turn['transcript'][:50]!r}",
                    flush=True,
                )
    n = len(utterances)
    return turns, {k: v / n for k, v in ray_cpu.items()}, local_cpu / n


async def talker(server: LiveServer, character: str, utterances: list[Any]) -> list[dict[str, Any]]:
    """One session's turns; a turn that gets no reply is counted, not fatal."""
    res = []
    async with RealtimeClient.connect(
        server.ws_url, user=uuid.uuid4().hex, character=character
    ) as rt:
        await rt.wait_for("response.done", timeout=180)
        await asyncio.sleep(1.0)
        for audio in utterances:
            try:
                res.append(await spoken_turn(rt, audio, full=True))
            except TimeoutError:
                res.append({"first_audio_ms": None, "status": "no_reply"})
                await rt.send({"type": "response.cancel"})
            await asyncio.sleep(0.5)
    return res


async def sweep(
    server: LiveServer, utterances: list[Any], sizes: list[int], per: int
) -> dict[str, Any]:
    out = {}
    for n in sizes:
        jobs = [talker(server, CHARACTERS[i % 4], utterances[i : i + per]) for i in range(n)]
        got = [t for res in await asyncio.gather(*jobs) for t in res]
        fa = [t["first_audio_ms"] for t in got]
        out[str(n)] = {
            "first_audio_ms_p50": pct(fa, 50),
            "first_audio_ms_p95": pct(fa, 95),
            "failed": sum(t["status"] != "completed" for t in got),
            "turns": len(got),
        }
        print(
            f"  {n} talkers: first audio p50 {out[str(n)]['first_audio_ms_p50']:.0f} ms, p95 {out[str(n)]['first_audio_ms_p95']:.0f} ms",
            flush=True,
        )
    return out


def capacity(cpu_per_turn: dict[str, float]) -> dict[str, Any]:
    """Resources for N concurrent talkers from the measured per-turn CPU cost."""
    rate = 1.0 / ASSUME["turn_every_s"]  # turns per second per talker
    u_cpu, u_gpu = ASSUME["cpu_utilisation"], ASSUME["gpu_utilisation"]
    llm_gpu_s = ASSUME["llm_tokens_per_reply"] / ASSUME["llm_gpu_tokens_per_s"]
    rows = []
    for n in TALKERS:
        cpu_only = {s: n * rate * cpu_per_turn[s] / u_cpu for s in STAGES}
        rows.append(
            {
                "talkers": n,
                "cpu_only": {s: round(v, 2) for s, v in cpu_only.items()},
                "cpu_only_total_cpus": math.ceil(sum(cpu_only.values())),
                "gpu": {
                    "stt_gpus": round(n * rate * ASSUME["stt_gpu_s_per_turn"] / u_gpu, 3),
                    "llm_gpus": round(n * rate * llm_gpu_s / u_gpu, 3),
                    "cpus": math.ceil(cpu_only["TTS"] + cpu_only["Ingress"]),
                },
            }
        )
    for row in rows:
        g = row["gpu"]
        g["gpus_total"] = math.ceil(g["stt_gpus"] + g["llm_gpus"])
    return {"assumptions": ASSUME, "cpu_s_per_turn": cpu_per_turn, "rows": rows}


def summary(turns: list[dict[str, Any]]) -> dict[str, Any]:
    fa = [t["first_audio_ms"] for t in turns]
    return {"first_audio_ms": {"p50": pct(fa, 50), "p95": pct(fa, 95)}, "turns": len(turns),
            "failed": sum(t["status"] != "completed" for t in turns)}  # fmt: skip


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b, c) = plt.subplots(1, 3, figsize=(15, 4.2))
    names = ["local", "ray"]
    for q, off in (("p50", -0.2), ("p95", 0.2)):
        a.bar(
            [i + off for i in range(2)],
            [result[n]["summary"]["first_audio_ms"][q] for n in names],
            0.4,
            label=q,
        )
    a.set_xticks(range(2), ["in-process", "through Ray"])
    a.set_ylabel("first reply audio after speech end (ms)")
    a.set_title("the hop through Ray Serve")
    a.legend()
    for n in names:
        sw = result[n]["sweep"]
        xs = [int(k) for k in sw]
        b.plot(xs, [sw[k]["first_audio_ms_p50"] for k in sw], "o-", label=f"{n} p50")
        b.plot(xs, [sw[k]["first_audio_ms_p95"] for k in sw], "s--", label=f"{n} p95")
    b.set_xlabel("concurrent talkers")
    b.set_ylabel("first audio (ms)")
    b.set_title("sessions against latency (2 cores)")
    b.legend()
    rows = result["capacity"]["rows"]
    xs = [r["talkers"] for r in rows]
    c.loglog(xs, [max(r["cpu_only_total_cpus"], 1) for r in rows], "o-", label="CPUs, CPU-only")
    c.loglog(xs, [max(r["gpu"]["cpus"], 1) for r in rows], "s-", label="CPUs, with GPUs")
    c.loglog(xs, [max(r["gpu"]["gpus_total"], 1) for r in rows], "^-", label="GPUs (STT + LLM)")
    c.set_xlabel("concurrent talkers")
    c.set_title("capacity model")
    c.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def table(r: dict[str, Any]) -> None:
    print("\nvoice-to-voice (first reply audio after the end of speech), same turns, same run:")
    for n in ("local", "ray"):
        s = r[n]["summary"]["first_audio_ms"]
        print(f"  {n:6s} p50 {s['p50']:6.0f} ms   p95 {s['p95']:6.0f} ms")
    print(f"  hop cost p50 {r['hop_ms_p50']:+.0f} ms ({r['ratio_p50']:.2f}x)")
    print("\nconcurrent talkers: first audio p50 / p95 (ms)")
    for n in ("local", "ray"):
        print(
            "  "
            + n.ljust(6)
            + "  ".join(
                f"{k}: {v['first_audio_ms_p50']:.0f}/{v['first_audio_ms_p95']:.0f}"
                for k, v in r[n]["sweep"].items()
            )
        )
    cap = r["capacity"]
    print(
        "\nCPU-seconds per turn: "
        + ", ".join(f"{k} {v:.3f}" for k, v in cap["cpu_s_per_turn"].items())
    )
    print(f"  in-process server, whole process: {r['local_cpu_s_per_turn']:.3f}")
    print("\ntalkers  CPUs (CPU-only)  CPUs + GPUs (STT, LLM on GPU)")
    for row in cap["rows"]:
        g = row["gpu"]
        print(
            f"  {row['talkers']:6d}  {row['cpu_only_total_cpus']:8d}        {g['cpus']:6d} + {g['gpus_total']} GPUs"
        )


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--turns", type=int, default=10)
    ap.add_argument("--quick", action="store_true", help="3 turns, 1-2 talkers")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks")
    args = ap.parse_args()
    n = 3 if args.quick else args.turns
    utterances = [
        trim(espeak(PROMPTS[i % len(PROMPTS)], voice=VOICES[i % 4][0], wpm=VOICES[i % 4][1]))
        for i in range(max(n, 8))
    ]
    sizes = [1, 2] if args.quick else [1, 2, 4]
    result: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores (shared with other work), Python {platform.python_version()}",
        "date": time.strftime("%Y-%m-%d %H:%M"),
    }
    cluster = RayCluster().start()
    import ray

    with tempfile.TemporaryDirectory() as tmp:
        # Plain silence endpointing on both: the comparison is about where the engines run.
        env = {"VOICE_CHAT_TURN_DETECTION": "server_vad"}
        local = start_server(Path(tmp) / "local", env=env)
        ray_env = {**env, "VOICE_CHAT_BACKEND": "ray", "VOICE_CHAT_RAY_ADDRESS": cluster.address}
        remote = start_server(Path(tmp) / "ray", env=ray_env, timeout=600)
        ray.init(address=cluster.address, log_to_driver=False)
        try:
            print("alternating turns, in-process and through Ray:")
            turns, ray_cpu, local_cpu = await alternate(
                {"local": local, "ray": remote}, utterances[:n]
            )
            for name in ("local", "ray"):
                result[name] = {"summary": summary(turns[name]), "turns": turns[name]}
            result["local_cpu_s_per_turn"] = local_cpu
            for name, server in (("local", local), ("ray", remote)):
                print(f"concurrency sweep, {name}:")
                result[name]["sweep"] = await sweep(server, utterances, sizes, 2)
        finally:
            ray.shutdown()
            remote.stop()
            local.stop()
            cluster.stop()
    lp, rp = (
        result["local"]["summary"]["first_audio_ms"]["p50"],
        result["ray"]["summary"]["first_audio_ms"]["p50"],
    )
    result["hop_ms_p50"] = rp - lp
    result["ratio_p50"] = rp / lp
    result["capacity"] = capacity(ray_cpu)
    table(result)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "scale.json").write_text(json.dumps(result, indent=2, default=float))
    plot(result, args.out / "scale.png")
    print(f"\nwrote {args.out / 'scale.json'} and {args.out / 'scale.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
