"""The OpenAI Realtime (GA) dialect against the native protocol, on one server, in one run.

    .venv/bin/python benchmarks/realtime_dialects.py            # ~3 minutes on 2 cores
    .venv/bin/python benchmarks/realtime_dialects.py --turns 2  # a smoke run

The same spoken turns (espeak-ng speech at real-time pace) go through the native protocol
(binary PCM16 frames, our scripted client) and through the GA dialect (base64 appends, the
official ``openai`` SDK), alternating, each turn in a fresh session. Measured per turn from the
end of the user's speech: the final transcript and the first reply audio; and the bytes the
server sent per second of reply audio. Writes docs/benchmarks/realtime_dialects.json and .png.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from openai import AsyncOpenAI

from voice_chat.audio.pcm import float_to_pcm16, resample
from voice_chat.audio.synthspeech import espeak, trim
from voice_chat.client.launcher import LiveServer, start_server
from voice_chat.client.rtclient import RealtimeClient

ROOT = Path(__file__).resolve().parent.parent
TAIL_S = 4.5  # silence after the speech: semantic turn detection may wait up to ~4 s
PROMPTS = [
    "What is your favorite color?",
    "Tell me something about the ocean.",
    "What should I cook for dinner tonight?",
    "Why is the sky blue?",
    "Do you like dogs or cats better?",
    "Where would you go if you could travel anywhere?",
    "What music do you like?",
    "How do you make friends in a new city?",
]


async def native_turn(server: LiveServer, speech: np.ndarray) -> dict[str, float]:
    async with RealtimeClient.connect(server.ws_url, character="nova") as rt:
        await rt.wait_for("response.done", timeout=120)  # the greeting
        start = rt.mark()
        end = await rt.send_speech(speech, tail_s=TAIL_S)
        done = await rt.wait_for("response.done", timeout=120)
        log = rt.log[start:]
        transcript = next(
            r.t
            for r in log
            if r.event
            and r.event["type"] == "conversation.item.input_audio_transcription.completed"
        )
        first_audio = next(r.t for r in log if r.audio is not None)
        audio = sum(len(r.audio) for r in log if r.audio is not None)
        events = sum(len(json.dumps(r.event)) for r in log if r.event)
        rate = next(
            r.event["sample_rate"]
            for r in log
            if r.event and r.event["type"] == "response.audio.started"
        )
        seconds = audio / 2 / rate
        assert done.event["response"]["status"] == "completed"
        return {
            "transcript_ms": (transcript - end) * 1000,
            "first_audio_ms": (first_audio - end) * 1000,
            "bytes_per_audio_s": (audio + events) / max(seconds, 1e-6),
        }


async def ga_turn(server: LiveServer, speech: np.ndarray) -> dict[str, float]:
    api = AsyncOpenAI(base_url=server.url + "/v1", api_key="unused")
    async with api.realtime.connect(model="nova") as conn:
        log: list[tuple[float, dict[str, Any], int]] = []

        async def read() -> None:
            while True:
                raw = await conn.recv_bytes()
                log.append((time.monotonic(), json.loads(raw), len(raw)))

        reader = asyncio.create_task(read())
        audio = np.concatenate(
            [resample(speech, 16000, 24000), np.zeros(int(TAIL_S * 24000), np.float32)]
        )
        step, t0, end = 2400, time.monotonic(), 0.0
        for i in range(0, len(audio), step):
            delay = t0 + i / 24000 - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            if i >= len(audio) - int(TAIL_S * 24000) and not end:
                end = time.monotonic()
            chunk = base64.b64encode(float_to_pcm16(audio[i : i + step])).decode()
            await conn.input_audio_buffer.append(audio=chunk)
        deadline = time.monotonic() + 120
        while not any(e["type"] == "response.done" for _, e, _ in log):
            if time.monotonic() > deadline:
                raise TimeoutError("no response.done")
            await asyncio.sleep(0.05)
        reader.cancel()
    after = [(t, e, n) for t, e, n in log if t >= end]
    transcript = next(
        t
        for t, e, _ in after
        if e["type"] == "conversation.item.input_audio_transcription.completed"
    )
    deltas = [(t, e, n) for t, e, n in after if e["type"] == "response.output_audio.delta"]
    seconds = sum(len(base64.b64decode(e["delta"])) for _, e, _ in deltas) / 2 / 24000
    total = sum(n for t, e, n in after if e["type"].startswith("response."))
    return {
        "transcript_ms": (transcript - end) * 1000,
        "first_audio_ms": (deltas[0][0] - end) * 1000,
        "bytes_per_audio_s": total / max(seconds, 1e-6),
    }


def summary(turns: list[dict[str, float]]) -> dict[str, float]:
    return {k: float(np.median([t[k] for t in turns])) for k in turns[0]}


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.5))
    keys = ["transcript_ms", "first_audio_ms"]
    x = np.arange(len(keys))
    for offset, name in ((-0.2, "native"), (0.2, "ga")):
        ax.bar(x + offset, [result[name]["median"][k] for k in keys], 0.4, label=name)
        for i, k in enumerate(keys):
            ax.scatter(
                [x[i] + offset] * len(result[name]["turns"]),
                [t[k] for t in result[name]["turns"]],
                s=8,
                color="black",
            )
    ax.set_xticks(x, ["final transcript", "first reply audio"])
    ax.set_ylabel("ms after the end of speech")
    ax.set_title("native protocol vs OpenAI Realtime dialect (median, dots: turns)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=len(PROMPTS))
    args = parser.parse_args()
    speech = [trim(espeak(p)) for p in PROMPTS[: args.turns]]
    with tempfile.TemporaryDirectory() as tmp:
        server = start_server(Path(tmp))
        try:
            native, ga = [], []
            failed = {"native": 0, "ga": 0}
            for audio in speech:  # alternate, so load and warm caches fall on both alike
                for name, turn, out in (("native", native_turn, native), ("ga", ga_turn, ga)):
                    try:
                        out.append(await turn(server, audio))
                    except (TimeoutError, RuntimeError, IndexError, AssertionError) as exc:
                        failed[name] += 1
                        print(f"{name} turn failed: {exc!r}", file=sys.stderr)
        finally:
            server.stop()
    result: dict[str, Any] = {
        "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}; busy shared 2 cores",
        "turns": len(speech),
        "failed": failed,
        "native": {"median": summary(native), "turns": native},
        "ga": {"median": summary(ga), "turns": ga},
    }
    result["ratio_ga_to_native"] = {
        k: result["ga"]["median"][k] / result["native"]["median"][k] for k in native[0]
    }
    out = ROOT / "docs" / "benchmarks"
    out.mkdir(parents=True, exist_ok=True)
    (out / "realtime_dialects.json").write_text(json.dumps(result, indent=2) + "\n")
    plot(result, out / "realtime_dialects.png")
    print(f"{'median':<22}{'native':>10}{'GA':>10}{'GA/native':>11}")
    for k in native[0]:
        n, g = result["native"]["median"][k], result["ga"]["median"][k]
        print(f"{k:<22}{n:>10.0f}{g:>10.0f}{g / n:>11.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
