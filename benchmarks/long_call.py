"""Are long calls as fast as short ones? First reply audio early in a call and at turn 100+.

    .venv/bin/python benchmarks/long_call.py [--preset fast] [--turns 100]

One server; two users talk to Nova with the same typed lines. The first user's conversation
is new (the lines are turns 2-7); the second one's was stored with ``--turns`` turns before the
server started, far more than the context holds, so every prompt is a window of it (and the
first line comes right after the session opened, as a resumed call's does). Prints and writes
docs/benchmarks/long_call.json: per line the time from the typed line to the first reply
audio byte, medians, and the ratio late/early.
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

from voice_chat.client.launcher import start_server
from voice_chat.client.rtclient import RealtimeClient
from voice_chat.memory import Store

ROOT = Path(__file__).resolve().parent.parent
LINES = [
    "Do you like rainy weather?",
    "I made pancakes for breakfast.",
    "What is your favorite season?",
    "Tell me something that makes you happy.",
    "I think I need a holiday.",
    "What kind of music do you like?",
]


async def talk(url: str, user: str, resumed: bool) -> list[dict[str, Any]]:
    out = []
    async with RealtimeClient.connect(url, character="nova", user=user) as rt:
        await rt.wait_for("session.created", timeout=30)
        if not resumed:
            await rt.wait_for("response.done", timeout=120)  # the greeting
        for line in LINES:
            start = rt.mark()
            sent = time.monotonic()
            await rt.send(
                {"type": "conversation.item.create", "item": {"role": "user", "text": line}}
            )
            done = await rt.wait_for("response.done", timeout=180)
            audio = next((r.t for r in rt.log[start:] if r.audio is not None), None)
            metrics = done.event["response"].get("metrics", {})
            out.append(
                {
                    "line": line,
                    "status": done.event["response"]["status"],
                    "first_audio_ms": round((audio - sent) * 1000, 1) if audio else None,
                    "llm_first_token_ms": metrics.get("llm_first_token_ms"),
                    "prompt_tokens": metrics.get("prompt_tokens"),
                }
            )
            await asyncio.sleep(1.0)  # the user listens a moment before answering
    return out


async def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="fast")
    ap.add_argument("--turns", type=int, default=100)
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        late_user = f"long-{uuid.uuid4().hex[:6]}"
        with Store(data / "voice_chat.db") as store:
            for i in range(args.turns // 2):
                store.append(late_user, "nova", "user", f"{LINES[i % len(LINES)]} (day {i})")
                store.append(
                    late_user, "nova", "assistant", f"That sounds lovely, tell me more. ({i})"
                )
        env = {"VOICE_CHAT_LLM_PRESET": args.preset, "VOICE_CHAT_MAX_REPLY_SENTENCES": "1"}
        server = start_server(data, env=env, timeout=600)
        try:
            early = await talk(server.ws_url, f"new-{uuid.uuid4().hex[:6]}", resumed=False)
            late = await talk(server.ws_url, late_user, resumed=True)
        finally:
            server.stop()

    def med(rows: list[dict[str, Any]], key: str) -> float:
        return float(np.median([r[key] for r in rows if r[key] is not None]))

    result = {
        "preset": args.preset,
        "stored_turns": args.turns,
        "early": early,
        "late": late,
        "early_first_audio_ms_p50": med(early, "first_audio_ms"),
        "late_first_audio_ms_p50": med(late, "first_audio_ms"),
    }
    result["ratio"] = result["late_first_audio_ms_p50"] / result["early_first_audio_ms_p50"]
    for name in ("early", "late"):
        for r in result[name]:
            print(
                f"{name:5s} {r['status']:9s} audio {r['first_audio_ms']!s:>8s} ms  first token "
                f"{r['llm_first_token_ms']!s:>8s} ms  prompt {r['prompt_tokens']} tokens"
            )
    print(
        f"first audio p50: turns 2-7 {result['early_first_audio_ms_p50']:.0f} ms, after "
        f"{args.turns} stored turns {result['late_first_audio_ms_p50']:.0f} ms, "
        f"ratio {result['ratio']:.2f}"
    )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"long_call_{args.preset}.json").write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
