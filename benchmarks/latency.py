"""Voice-to-voice latency of the real server, against a naive baseline in the same run.

    .venv/bin/python benchmarks/latency.py            # ~10 minutes on 2 cores
    .venv/bin/python benchmarks/latency.py --quick    # a smoke run

Drives `voice-chat serve` over /v1/realtime with espeak-ng speech sent at real-time pace and
measures, per turn, the time from the end of the user's speech to: the `speech_stopped`
event, the completed transcript, the first reply text, and the first reply audio byte.
Also: STT/TTS real-time factors, LLM time to first token and tokens/s, barge-in latency, a
concurrency sweep (1, 2, 4 sessions) with playback stalls, and the same turns through the
naive pipeline (whole utterance, then whole reply, then whole TTS; stock 30 s Whisper window).
Writes docs/benchmarks/latency.json and latency.png.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
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
PROMPTS = [
    "Hi there.",
    "How are you today?",
    "What is your favorite color?",
    "Tell me something about the ocean.",
    "Do you like dogs or cats better?",
    "I had a really long day at work and I am tired.",
    "What should I cook for dinner tonight?",
    "Can you recommend a good book to read this weekend?",
    "Yes.",
    "What do you think about going to the mountains with my two brothers and our dog?",
    "Tell me a joke.",
    "Why is the sky blue?",
    "I just started learning to play the guitar.",
    "What is the best way to fall asleep quickly?",
    "Okay, thanks.",
    "Do you ever get lonely?",
    "My sister is getting married next month and I need to write a speech for her wedding.",
    "What music do you like?",
    "Where would you go if you could travel anywhere?",
    "Good night.",
    "Say something funny.",
    "How do you make friends in a new city?",
]
VOICES = [("en-us", 165), ("en-gb", 150), ("en-us", 180), ("en", 140)]
CHARACTERS = ["nova", "aria", "sage", "pip"]


def pct(values: list[float], q: float) -> float | None:
    vals = sorted(v for v in values if v is not None)
    if not vals:
        return None
    return float(np.percentile(vals, q))


def first_after(rt: RealtimeClient, t0: float, kind: str, rid: str | None = None) -> float | None:
    for r in rt.log:
        if r.t < t0 or r.event is None or r.event["type"] != kind:
            continue
        if rid and (r.event.get("response_id") or r.event.get("response", {}).get("id")) != rid:
            continue
        return r.t
    return None


async def spoken_turn(rt: RealtimeClient, audio: np.ndarray, full: bool) -> dict[str, Any]:
    """One turn's times; a turn with no reply is returned as ``unanswered``, not dropped."""
    start = rt.mark()
    t_end = await rt.send_speech(audio, tail_s=0.8)
    try:
        return await _timed_reply(rt, audio, full, start, t_end)
    except TimeoutError:
        keys = ["speech_stopped_ms", "transcript_ms", "first_text_ms", "first_audio_ms"]
        return {
            "speech_s": len(audio) / 16000,
            "transcript": "",
            "server": {},
            "status": "unanswered",
            **dict.fromkeys(keys),
        }


async def _timed_reply(
    rt: RealtimeClient, audio: np.ndarray, full: bool, start: int, t_end: float
) -> dict[str, Any]:
    created = await rt.wait_for("response.created", timeout=60, since=start)
    rid = created.event["response"]["id"]
    first_audio = next_audio = None
    deadline = time.monotonic() + 60
    while first_audio is None and time.monotonic() < deadline:
        idx = rt.log.index(created)
        first_audio = next((r.t for r in rt.log[idx:] if r.audio), None)
        if first_audio is None:
            await asyncio.sleep(0.005)
    if not full:
        await asyncio.sleep(1.0)
        await rt.send({"type": "response.cancel", "response_id": rid})
    done = await rt.wait_for("response.done", timeout=60, since=start, response_id=rid)
    del next_audio
    m = done.event["response"]["metrics"]
    tr = rt.events("conversation.item.input_audio_transcription.completed")[-1]["transcript"]

    def since_end(t: float | None) -> float | None:
        return None if t is None else (t - t_end) * 1000

    return {
        "speech_s": len(audio) / 16000,
        "transcript": tr,
        "speech_stopped_ms": since_end(
            first_after(rt, t_end - 1, "input_audio_buffer.speech_stopped")
        ),
        "transcript_ms": since_end(
            first_after(rt, t_end - 1, "conversation.item.input_audio_transcription.completed")
        ),
        "first_text_ms": since_end(first_after(rt, t_end - 1, "response.text.delta", rid)),
        "first_audio_ms": since_end(first_audio),
        "server": m,
        "status": done.event["response"]["status"],
    }


async def latency_run(
    server: LiveServer, utterances: list[np.ndarray], full: bool
) -> list[dict[str, Any]]:
    turns: list[dict[str, Any]] = []
    per_char = -(-len(utterances) // len(CHARACTERS))
    for ci, character in enumerate(CHARACTERS):
        batch = utterances[ci * per_char : (ci + 1) * per_char]
        if not batch:
            continue
        async with RealtimeClient.connect(
            server.ws_url, user=uuid.uuid4().hex, character=character
        ) as rt:
            await rt.wait_for("response.done", timeout=90)
            await asyncio.sleep(1.0)  # the history prefill after the greeting
            for audio in batch:
                turns.append(await spoken_turn(rt, audio, full))
                fa = turns[-1]["first_audio_ms"]
                shown = "unanswered" if fa is None else f"{fa:7.0f} ms"
                print(
                    f"  {character:5s} first audio {shown}  {turns[-1]['transcript'][:60]!r}",
                    flush=True,
                )
                await asyncio.sleep(0.8)
    return turns


async def barge_in_run(server: LiveServer, trials: int) -> list[dict[str, float]]:
    speech = trim(espeak("Wait, hold on a second."))
    out = []
    unanswered: list[int] = []
    async with RealtimeClient.connect(server.ws_url, user=uuid.uuid4().hex, character="sage") as rt:
        await rt.wait_for("response.done", timeout=90)
        for _ in range(trials):
            start = rt.mark()
            await rt.send(
                {
                    "type": "conversation.item.create",
                    "item": {"text": "Tell me a long story about a dragon and a knight."},
                }
            )
            started = await rt.wait_for("response.audio.started", timeout=60, since=start)
            rid = started.event["response_id"]
            await asyncio.sleep(0.4)
            t_speech = time.monotonic()
            send = asyncio.create_task(rt.send_speech(speech, tail_s=0.8))
            done = await rt.wait_for("response.done", timeout=30, since=start, response_id=rid)
            idx = rt.log.index(started)
            end_idx = rt.log.index(done)
            last_audio = max((r.t for r in rt.log[idx:end_idx] if r.audio), default=t_speech)
            await send
            try:  # the interruption's own reply
                await rt.wait_for("response.done", timeout=60, since=end_idx + 1)
            except TimeoutError:
                print("  barge-in: the interruption got no reply within 60 s (counted)")
                unanswered.append(1)
            if done.event["response"]["status"] != "cancelled" or done.t < t_speech:
                print("  barge-in: the reply ended before the user spoke; trial not counted")
                await asyncio.sleep(1.0)
                continue
            out.append(
                {
                    "status": done.event["response"]["status"],
                    "last_audio_ms": max(0.0, (last_audio - t_speech) * 1000),
                    "cancelled_ms": (done.t - t_speech) * 1000,
                }
            )
            print(
                f"  barge-in: last audio {out[-1]['last_audio_ms']:.0f} ms, cancelled {out[-1]['cancelled_ms']:.0f} ms",
                flush=True,
            )
            await asyncio.sleep(1.0)
    if unanswered:
        print(f"  barge-in: {len(unanswered)} interruption(s) got no reply")
    return out


def stalls(rt: RealtimeClient, rid_start: int, rate: int) -> tuple[float, float]:
    """Simulated playback from the first audio frame: total stall ms and audio seconds."""
    t0, played, stall = None, 0.0, 0.0
    for r in rt.log[rid_start:]:
        if r.event and r.event["type"] == "response.done":
            break
        if r.audio is None:
            continue
        if t0 is None:
            t0 = r.t
        due = t0 + played + stall / 1000
        if r.t > due:
            stall += (r.t - due) * 1000
        played += len(r.audio) / 2 / rate
    return stall, played


async def session_for_sweep(
    server: LiveServer, character: str, utterances: list[np.ndarray]
) -> list[dict[str, Any]]:
    res = []
    async with RealtimeClient.connect(
        server.ws_url, user=uuid.uuid4().hex, character=character
    ) as rt:
        await rt.wait_for("response.done", timeout=180)
        await asyncio.sleep(1.0)
        for audio in utterances:
            start = rt.mark()
            turn = await spoken_turn(rt, audio, full=True)
            started = await rt.wait_for("response.audio.started", timeout=5, since=start)
            stall, secs = stalls(rt, rt.log.index(started), started.event["sample_rate"])
            m = turn["server"]
            turn["stall_ms"] = stall
            turn["audio_s"] = secs
            turn["tts_rtf"] = m.get("tts_ms", 0) / max(1.0, m.get("tts_audio_ms", 1))
            res.append(turn)
            await asyncio.sleep(0.5)
    return res


async def sweep(
    server: LiveServer, utterances: list[np.ndarray], sizes: list[int], turns: int
) -> dict[int, list[dict[str, Any]]]:
    out: dict[int, list[dict[str, Any]]] = {}
    for n in sizes:
        jobs = [
            session_for_sweep(server, CHARACTERS[i % 4], utterances[i : i + turns])
            for i in range(n)
        ]
        out[n] = [t for res in await asyncio.gather(*jobs) for t in res]
        fa = [t["first_audio_ms"] for t in out[n]]
        print(
            f"  {n} sessions: first audio p50 {pct(fa, 50):.0f} ms, stalls p95 {pct([t['stall_ms'] for t in out[n]], 95):.0f} ms, TTS RTF p50 {pct([t['tts_rtf'] for t in out[n]], 50):.2f}",
            flush=True,
        )
    return out


def git(*args: str) -> str:
    import subprocess

    return subprocess.run(
        ["git", "-C", str(ROOT), *args], check=True, capture_output=True, text=True
    ).stdout.strip()


async def baseline_run(
    ref: str, tmp: Path, utterances: list[np.ndarray], full: bool
) -> dict[str, Any]:
    """The same streaming turns on another revision's code, from a temporary git worktree."""
    tree = tmp / "baseline-tree"
    commit = await asyncio.to_thread(git, "rev-parse", "--short", ref)
    await asyncio.to_thread(git, "worktree", "add", "--detach", str(tree), ref)
    try:
        server = start_server(tmp / "baseline", root=tree)
        try:
            turns = await latency_run(server, utterances, full)
        finally:
            server.stop()
    finally:
        await asyncio.to_thread(git, "worktree", "remove", "--force", str(tree))
    return {"ref": ref, "commit": commit, "summary": summarize(turns), "turns": turns}


def summarize(turns: list[dict[str, Any]]) -> dict[str, Any]:
    keys = ["speech_stopped_ms", "transcript_ms", "first_text_ms", "first_audio_ms"]
    s: dict[str, Any] = {
        k: {"p50": pct([t[k] for t in turns], 50), "p95": pct([t[k] for t in turns], 95)}
        for k in keys
    }
    # A reply whose audio starts before the user's speech ended cut them off: a failure,
    # however fast. A turn with no reply at all is one too.
    s["premature"] = sum(1 for t in turns if (t["first_audio_ms"] or 0) < 0)
    s["unanswered"] = sum(1 for t in turns if t["status"] == "unanswered")
    srv = [t["server"] for t in turns if t["server"]]
    s["stt_rtf_p50"] = pct(
        [
            m["stt_ms"] / 1000 / t["speech_s"]
            for m, t in zip(srv, [t for t in turns if t["server"]], strict=True)
            if "stt_ms" in m
        ],
        50,
    )
    s["tts_rtf_p50"] = pct(
        [m["tts_ms"] / m["tts_audio_ms"] for m in srv if m.get("tts_audio_ms")], 50
    )
    s["llm_first_token_ms_p50"] = pct([m.get("llm_first_token_ms") for m in srv], 50)
    rates = [
        m["llm_tokens"] / max(1e-3, (m["llm_ms"] - m["llm_first_token_ms"]) / 1000)
        for m in srv
        if m.get("llm_tokens", 0) > 3
    ]
    s["llm_tokens_per_s_p50"] = pct(rates, 50)
    s["turns"] = len(turns)
    return s


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4.5))
    stages = ["speech_stopped_ms", "transcript_ms", "first_text_ms", "first_audio_ms"]
    x = np.arange(len(stages))
    for i, mode in enumerate(["streaming", "naive"]):
        vals = [result[mode]["summary"][k]["p50"] or 0 for k in stages]
        a.bar(x + (i - 0.5) * 0.38, vals, 0.38, label=f"{mode} p50")
    a.axhline(700, color="red", ls="--", lw=1, label="target 700 ms")
    a.set_xticks(x, [s.replace("_ms", "") for s in stages], rotation=15)
    a.set_ylabel("ms after end of speech")
    a.set_title("Latency by stage (p50)")
    a.legend()
    sizes = sorted(result["sweep"], key=int)
    fa = [result["sweep"][n]["first_audio_ms_p50"] for n in sizes]
    st = [result["sweep"][n]["stall_ms_p95"] for n in sizes]
    b.plot([int(n) for n in sizes], fa, "o-", label="first audio p50 (ms)")
    b.plot([int(n) for n in sizes], st, "s-", label="playback stall p95 (ms)")
    b.set_xlabel("simultaneous sessions")
    b.set_title("Concurrency sweep")
    b.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--turns", type=int, default=20)
    ap.add_argument("--quick", action="store_true", help="4 turns, sweep 1-2, 2 barge-ins")
    ap.add_argument("--full-replies", action="store_true", help="let every reply finish")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks")
    ap.add_argument(
        "--baseline-ref",
        help="also run the same turns on this git revision's code (e.g. main~5), in this run",
    )
    args = ap.parse_args()
    n = 4 if args.quick else args.turns
    utterances = [
        espeak(PROMPTS[i % len(PROMPTS)], voice=VOICES[i % 4][0], wpm=VOICES[i % 4][1])
        for i in range(n)
    ]
    utterances = [trim(u) for u in utterances]
    result: dict[str, Any] = {
        "machine": f"{platform.node()} {platform.machine()}, {__import__('os').cpu_count()} cores, Python {platform.python_version()}",
        "date": time.strftime("%Y-%m-%d %H:%M"),
    }
    with tempfile.TemporaryDirectory() as tmp:
        print("streaming pipeline:")
        server = start_server(Path(tmp) / "streaming")
        try:
            turns = await latency_run(server, utterances, args.full_replies)
            result["streaming"] = {"summary": summarize(turns), "turns": turns}
            print("barge-in:")
            result["barge_in"] = await barge_in_run(server, 2 if args.quick else 5)
            print("concurrency sweep:")
            sizes = [1, 2] if args.quick else [1, 2, 4]
            sw = await sweep(server, utterances, sizes, 2 if args.quick else 3)
            result["sweep"] = {
                str(k): {
                    "first_audio_ms_p50": pct([t["first_audio_ms"] for t in v], 50),
                    "first_audio_ms_p95": pct([t["first_audio_ms"] for t in v], 95),
                    "stall_ms_p95": pct([t["stall_ms"] for t in v], 95),
                    "tts_rtf_p50": pct([t["tts_rtf"] for t in v], 50),
                    "faster_than_real_time": all(t["stall_ms"] < 100 for t in v),
                }
                for k, v in sw.items()
            }
        finally:
            server.stop()
        print("naive baseline:")
        server = start_server(
            Path(tmp) / "naive",
            env={"VOICE_CHAT_PIPELINE_MODE": "naive", "VOICE_CHAT_STT_WINDOW_S": "30"},
        )
        try:
            turns = await latency_run(server, utterances, args.full_replies)
            result["naive"] = {"summary": summarize(turns), "turns": turns}
        finally:
            server.stop()
        if args.baseline_ref:
            print(f"baseline revision {args.baseline_ref}:")
            result["baseline"] = await baseline_run(
                args.baseline_ref, Path(tmp), utterances, args.full_replies
            )
    s, b = result["streaming"]["summary"], result["naive"]["summary"]
    result["ratio_first_audio_p50"] = s["first_audio_ms"]["p50"] / b["first_audio_ms"]["p50"]
    if "baseline" in result:
        base = result["baseline"]["summary"]["first_audio_ms"]["p50"]
        result["ratio_to_baseline_first_audio_p50"] = s["first_audio_ms"]["p50"] / base
    bi = result["barge_in"]
    result["barge_in_summary"] = {
        "last_audio_ms_p50": pct([x["last_audio_ms"] for x in bi], 50),
        "last_audio_ms_p95": pct([x["last_audio_ms"] for x in bi], 95),
        "cancelled_ms_p50": pct([x["cancelled_ms"] for x in bi], 50),
        "all_cancelled": all(x["status"] == "cancelled" for x in bi),
    }
    print_table(result)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "latency.json").write_text(json.dumps(result, indent=2, default=float))
    plot(result, args.out / "latency.png")
    print(f"\nwrote {args.out / 'latency.json'} and {args.out / 'latency.png'}")
    return 0


def print_table(r: dict[str, Any]) -> None:
    s, b = r["streaming"]["summary"], r["naive"]["summary"]
    print(f"\n{r['machine']} — {r['date']} — {s['turns']} turns per mode (ms after end of speech)")
    print(
        f"{'stage':22s} {'stream p50':>10s} {'p95':>7s} {'naive p50':>10s} {'p95':>7s} {'ratio':>6s}"
    )
    for k in ["speech_stopped_ms", "transcript_ms", "first_text_ms", "first_audio_ms"]:
        sp, bp = s[k]["p50"], b[k]["p50"]
        ratio = f"{sp / bp:.2f}" if sp and bp else "-"
        print(
            f"{k:22s} {sp or 0:10.0f} {s[k]['p95'] or 0:7.0f} {bp or 0:10.0f} {b[k]['p95'] or 0:7.0f} {ratio:>6s}"
        )
    print(
        f"STT RTF p50 {s['stt_rtf_p50']:.3f} (naive {b['stt_rtf_p50']:.3f}); TTS RTF p50 {s['tts_rtf_p50']:.3f}; "
        f"LLM first token p50 {s['llm_first_token_ms_p50']:.0f} ms (naive {b['llm_first_token_ms_p50']:.0f}); {s['llm_tokens_per_s_p50'] or 0:.0f} tok/s"
    )
    print(
        f"failures: premature {s['premature']}, unanswered {s['unanswered']} of {s['turns']} "
        f"(naive: {b['premature']}, {b['unanswered']})"
    )
    if "baseline" in r:
        base = r["baseline"]["summary"]
        print(f"baseline failures: premature {base['premature']}, unanswered {base['unanswered']}")
        bs = base["first_audio_ms"]
        print(
            f"baseline {r['baseline']['ref']} ({r['baseline']['commit']}): first audio p50 {bs['p50']:.0f} / p95 {bs['p95']:.0f} ms; "
            f"this tree / baseline p50 = {r['ratio_to_baseline_first_audio_p50']:.2f}"
        )
    bi = r["barge_in_summary"]
    print(
        f"barge-in: last audio frame p50 {bi['last_audio_ms_p50']:.0f} ms, p95 {bi['last_audio_ms_p95']:.0f} ms; cancelled p50 {bi['cancelled_ms_p50']:.0f} ms"
    )
    for n, v in r["sweep"].items():
        print(
            f"{n} sessions: first audio p50 {v['first_audio_ms_p50']:.0f} / p95 {v['first_audio_ms_p95']:.0f} ms, stall p95 {v['stall_ms_p95']:.0f} ms, TTS RTF {v['tts_rtf_p50']:.2f}, faster than real time: {v['faster_than_real_time']}"
        )


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
