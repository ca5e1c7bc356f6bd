"""Voice-to-voice latency of the real server, against a naive baseline in the same run.

    .venv/bin/python benchmarks/latency.py            # ~10 minutes on 2 cores
    .venv/bin/python benchmarks/latency.py --quick    # a smoke run

Drives `voice-chat serve` over /v1/realtime with espeak-ng speech sent at real-time pace and
measures, per turn, the time from the end of the user's speech to: the `speech_stopped`
event, the completed transcript, the first reply text, and the first reply audio byte.
Also: STT/TTS real-time factors, LLM time to first token and tokens/s, barge-in latency, a
concurrency sweep (1, 2, 4 sessions) with playback stalls, and the same turns through the
naive pipeline (whole utterance, then whole reply, then whole TTS; stock 30 s Whisper window).
With ``--baseline-ref REV`` the streaming turns also run on REV's code, on a second server
beside this one, turn by turn in alternating order, so the noise of a shared VM falls on both.
Writes docs/benchmarks/latency.json and latency.png.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import platform
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
from latency_report import pct, plot, print_table, summarize

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


@contextlib.asynccontextmanager
async def baseline_server(ref: str, tmp: Path) -> AsyncIterator[tuple[LiveServer, str]]:
    """A server running another revision's code, from a temporary git worktree."""
    tree = tmp / "baseline-tree"
    commit = await asyncio.to_thread(git, "rev-parse", "--short", ref)
    await asyncio.to_thread(git, "worktree", "add", "--detach", str(tree), ref)
    try:
        server = start_server(tmp / "baseline", root=tree)
        try:
            yield server, commit
        finally:
            server.stop()
    finally:
        await asyncio.to_thread(git, "worktree", "remove", "--force", str(tree))


async def paired_run(
    this: LiveServer, base: LiveServer, utterances: list[np.ndarray], full: bool
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Each turn on both servers, one after the other, alternating which goes first.

    Run one after the other, a whole set per server, the two medians differed by up to 15%
    between runs of the same code on this noisy 2-core VM: whatever slowed the machine for a
    few minutes fell on one side only. Paired turns share it.
    """
    out: dict[str, list[dict[str, Any]]] = {"this": [], "base": []}
    per_char = -(-len(utterances) // len(CHARACTERS))
    for ci, character in enumerate(CHARACTERS):
        batch = utterances[ci * per_char : (ci + 1) * per_char]
        if not batch:
            continue
        user = uuid.uuid4().hex
        async with (
            RealtimeClient.connect(this.ws_url, user=user, character=character) as rt_this,
            RealtimeClient.connect(base.ws_url, user=user, character=character) as rt_base,
        ):
            await rt_this.wait_for("response.done", timeout=90)
            await rt_base.wait_for("response.done", timeout=90)
            await asyncio.sleep(1.5)  # the history prefill after the greeting
            for i, audio in enumerate(batch):
                order = [("this", rt_this), ("base", rt_base)]
                for side, rt in order if i % 2 == 0 else order[::-1]:
                    out[side].append(await spoken_turn(rt, audio, full))
                    fa = out[side][-1]["first_audio_ms"]
                    shown = "unanswered" if fa is None else f"{fa:7.0f} ms"
                    print(
                        f"  {side:4s} {character:5s} first audio {shown}  "
                        f"{out[side][-1]['transcript'][:56]!r}",
                        flush=True,
                    )
                    await asyncio.sleep(1.2)  # the other server's prefill after its reply
    return out["this"], out["base"]


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
            if args.baseline_ref:
                print(f"  paired with revision {args.baseline_ref}, turn by turn:")
                async with baseline_server(args.baseline_ref, Path(tmp)) as (base, commit):
                    turns, base_turns = await paired_run(
                        server, base, utterances, args.full_replies
                    )
                result["baseline"] = {
                    "ref": args.baseline_ref,
                    "commit": commit,
                    "summary": summarize(base_turns),
                    "turns": base_turns,
                }
            else:
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
    s, b = result["streaming"]["summary"], result["naive"]["summary"]
    result["ratio_first_audio_p50"] = s["first_audio_ms"]["p50"] / b["first_audio_ms"]["p50"]
    if "baseline" in result:
        base = result["baseline"]["summary"]["first_audio_ms"]["p50"]
        result["ratio_to_baseline_first_audio_p50"] = s["first_audio_ms"]["p50"] / base
        pairs = [
            a["first_audio_ms"] / b["first_audio_ms"]
            for a, b in zip(result["streaming"]["turns"], result["baseline"]["turns"], strict=True)
            if (a["first_audio_ms"] or 0) > 0 and (b["first_audio_ms"] or 0) > 0
        ]
        result["paired_ratio_first_audio_p50"] = pct(pairs, 50)
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


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
