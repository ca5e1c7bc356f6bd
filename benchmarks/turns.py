"""Listening: end of turn, transcripts of telephone/noisy speech, backchannels and echo.

    .venv/bin/python benchmarks/turns.py            # ~12 minutes on 2 cores
    .venv/bin/python benchmarks/turns.py --quick    # a smoke run

1. WER on 8 kHz telephone-band and noisy speech (pink noise, 10 and 5 dB SNR) in six
   synthetic voices: Whisper tiny.en and base through the server's engine, and stock
   faster-whisper (tiny.en, its own 30 s window) as the baseline.
2. End of turn, offline: utterances with a 550-700 ms mid-sentence pause, short answers and
   plain questions go through the real VAD; at each pause the speculative transcript and
   Smart Turn are computed once, then every detector setting decides. Premature endings
   and the wait after the true end of speech, per setting (the trade-off plot).
3. Through the real server: first reply audio after the true end of speech and premature
   replies (semantic_vad against server_vad); backchannels and the character's own echo
   (-10 dB, 50-200 ms, room reverb) during a reply; an interruption over the echo. The
   speech-during-a-reply trials run again on a server without the echo canceller
   (VOICE_CHAT_ECHO_CANCEL=false) as the baseline.
Writes docs/benchmarks/turns.json and turns.png.
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
import turnsets as ts

from voice_chat.audio import synthspeech as ss
from voice_chat.audio.pcm import resample
from voice_chat.pipeline.endpoint import EndpointPolicy, policy_for, text_verdict
from voice_chat.pipeline.ports import TurnConfig
from voice_chat.pipeline.turns import TurnDetector

ROOT = Path(__file__).resolve().parent.parent
RATE = 16000


def pct(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


# ------------------------------------------------------------------ 1. WER
def wer_section(voices: list[ts.Voice], quick: bool) -> dict[str, Any]:
    from faster_whisper import WhisperModel

    from voice_chat.engines.stt_whisper import WhisperSTT, resolve_model

    cache = Path(tempfile.gettempdir()) / "voice-chat-bench"
    models: dict[str, Any] = {"tiny.en": WhisperSTT("embedded:tiny.en", cache_dir=cache)}
    try:
        models["base"] = WhisperSTT("embedded:base", cache_dir=cache)
    except Exception as exc:  # noqa: BLE001 - the extra is optional
        print("whisper base unavailable:", exc)
    stock = WhisperModel(
        resolve_model("embedded:tiny.en", cache), compute_type="int8", cpu_threads=2
    )

    def stock_stt(a: np.ndarray) -> str:
        return " ".join(s.text for s in stock.transcribe(a, beam_size=1, language="en")[0])

    engines = {name: m.transcribe for name, m in models.items()} | {
        "stock tiny.en (30 s)": stock_stt
    }
    sentences = ts.WER_SENTENCES[: 3 if quick else 6]
    pad = np.zeros(RATE // 4, np.float32)
    conditions = {
        "telephone 8 kHz": lambda a: resample(ss.telephone(a), 8000, RATE),
        "noise 10 dB": lambda a: ss.mix_noise(a, 10, seed=1),
        "noise 5 dB": lambda a: ss.mix_noise(a, 5, seed=2),
    }
    clips = [
        (v.name, s, np.concatenate([pad, ss.trim(v.speak(s)), pad]))
        for v in voices
        for s in sentences
    ]
    out: dict[str, Any] = {}
    for cname, cond in conditions.items():
        audio = [(v, s, cond(a)) for v, s, a in clips]
        for ename, stt in engines.items():
            errs, secs, loops = [], [], 0
            for _, s, a in audio:
                t = time.monotonic()
                hyp = stt(a)
                secs.append(time.monotonic() - t)
                errs.append(ts.wer(s, hyp))
                loops += ts.words(hyp)[len(ts.words(s)) :] != [] and errs[-1] > 0.5
            out.setdefault(cname, {})[ename] = {
                "mean_wer": float(np.mean(errs)),
                "median_ms": float(np.median(secs) * 1000),
                "clips": len(errs),
                "runaway": int(loops),
            }
            print(
                f"WER {cname:16s} {ename:22s} {np.mean(errs):.3f}  {np.median(secs) * 1000:5.0f} ms"
            )
    return out


# ---------------------------------------------------- 2. end of turn, offline
SETTINGS: dict[str, tuple[str, EndpointPolicy | int]] = {
    "server_vad 300 ms": ("fixed", 300),
    "server_vad 500 ms": ("fixed", 500),
    "server_vad 800 ms": ("fixed", 800),
    "sound only (Smart Turn)": ("policy", EndpointPolicy(192, 288, 288, 2500, use_text=False)),
    "words only": ("policy", policy_for("medium", use_audio=False)),
    "semantic high": ("policy", policy_for("high")),
    "semantic auto/medium": ("policy", policy_for("medium")),
    "semantic low": ("policy", policy_for("low")),
}


def pauses_of(audio: np.ndarray, stt: Any, turn: Any) -> list[dict[str, Any]]:
    """Every pause the VAD finds: the silence that followed, the transcript and Smart Turn then."""
    det = TurnDetector(TurnConfig(silence_ms=5000, speculative_ms=64))
    found: list[dict[str, Any]] = []
    for i in range(0, len(audio), 320):
        for ev in det.feed(audio[i : i + 320]):
            if ev.kind == "paused":
                found.append(
                    {
                        "speech_end_ms": ev.speech_end_ms,
                        "text": stt.transcribe(det.utterance()),
                        "p": turn.probability(det.utterance()),
                        "silence_ms": None,
                    }
                )
            elif ev.kind == "resumed" and found:
                found[-1]["silence_ms"] = ev.at_ms - found[-1]["speech_end_ms"]
    if found and found[-1]["silence_ms"] is None:
        found[-1]["silence_ms"] = 10_000  # the last pause: the turn is over
    return found


def decide(setting: tuple[str, EndpointPolicy | int], pause: dict[str, Any]) -> int:
    kind, value = setting
    if kind == "fixed":
        return int(value)  # type: ignore[arg-type]
    assert isinstance(value, EndpointPolicy)
    return value.silence_ms(text_verdict(pause["text"]), pause["p"])


def endpoint_section(voices: list[ts.Voice], quick: bool) -> dict[str, Any]:
    from voice_chat.engines.stt_whisper import WhisperSTT
    from voice_chat.engines.turn_smart import SmartTurn

    stt = WhisperSTT("embedded:tiny.en", cache_dir=Path(tempfile.gettempdir()))
    turn = SmartTurn()
    rng = np.random.default_rng(7)
    pad0, tail = np.zeros(RATE // 3, np.float32), np.zeros(int(RATE * 3), np.float32)
    items: list[dict[str, Any]] = []
    pairs = ts.PAUSED[:4] if quick else ts.PAUSED
    for v in voices:
        for pair in pairs:
            gap = float(rng.uniform(0.55, 0.70))
            a, b = ss.trim(v.speak(pair[0])), ss.trim(v.speak(pair[1]))
            audio = np.concatenate([pad0, a, np.zeros(int(gap * RATE), np.float32), b, tail])
            true_end = (len(pad0) + len(a) + int(gap * RATE) + len(b)) * 1000 // RATE
            items.append(
                {
                    "set": "paused",
                    "voice": v.name,
                    "text": " ".join(pair),
                    "audio": audio,
                    "end": true_end,
                }
            )
        for text in (ts.SHORT[:3] if quick else ts.SHORT) + (
            ts.QUESTIONS[:3] if quick else ts.QUESTIONS
        ):
            s = ss.trim(v.speak(text))
            kind = "short" if text in ts.SHORT else "question"
            items.append(
                {
                    "set": kind,
                    "voice": v.name,
                    "text": text,
                    "audio": np.concatenate([pad0, s, tail]),
                    "end": (len(pad0) + len(s)) * 1000 // RATE,
                }
            )
    for it in items:
        it["pauses"] = pauses_of(it.pop("audio"), stt, turn)
    out: dict[str, Any] = {"items": items, "settings": {}}
    for name, setting in SETTINGS.items():
        row: dict[str, Any] = {}
        for kind in ("paused", "short", "question"):
            premature, waits = 0, []
            group = [it for it in items if it["set"] == kind]
            for it in group:
                for pz in it["pauses"]:
                    need = decide(setting, pz)
                    if pz["silence_ms"] >= need:  # the turn ends at this pause
                        if pz["speech_end_ms"] < it["end"] - 150:
                            premature += 1
                        else:
                            waits.append(pz["speech_end_ms"] + need - it["end"])
                        break
            row[kind] = {
                "premature_rate": premature / max(1, len(group)),
                "wait_p50_ms": pct(waits, 50),
                "wait_p95_ms": pct(waits, 95),
                "n": len(group),
            }
        out["settings"][name] = row
        p = row["paused"]
        print(
            f"EOT {name:24s} paused premature {p['premature_rate']:.2f} wait p50 {p['wait_p50_ms'] or 0:5.0f}  questions p50 {row['question']['wait_p50_ms'] or 0:5.0f}"
        )
    return out


# ---------------------------------------------------------- 3. real server
async def first_audio(rt: Any, audio: np.ndarray) -> dict[str, Any]:
    start = rt.mark()
    t_end = await rt.send_speech(audio, tail_s=3.0)
    done = await rt.wait_for("response.done", timeout=60, since=start)
    created = [r for r in rt.log[start:] if r.event and r.event["type"] == "response.created"]
    audio_t = next((r.t for r in rt.log[start:] if r.audio is not None), None)
    tr = rt.events("conversation.item.input_audio_transcription.completed")
    return {
        "premature": sum(r.t < t_end for r in created),
        "replies": len(created),
        "first_audio_ms": None if audio_t is None else (audio_t - t_end) * 1000,
        "transcript": tr[-1]["transcript"] if tr else "",
        "status": done.event["response"]["status"],
    }


async def server_section(server: Any, voices: list[ts.Voice], quick: bool) -> dict[str, Any]:
    from voice_chat.client.rtclient import RealtimeClient

    out: dict[str, Any] = {}
    rng = np.random.default_rng(3)
    sets = {
        "paused": [
            ts.paused(v, p, float(rng.uniform(0.55, 0.70)))
            for v in (voices[0], voices[4])
            for p in ts.PAUSED[:2]
        ],
        "question": [
            ss.trim(v.speak(q))
            for v in (voices[0], voices[4])
            for q in ts.QUESTIONS[: 1 if quick else 2]
        ],
    }
    for mode in ("semantic_vad", "server_vad"):
        async with RealtimeClient.connect(
            server.ws_url, user=uuid.uuid4().hex, character="nova"
        ) as rt:
            await rt.wait_for("response.done", timeout=120)
            await rt.send({"type": "session.update", "session": {"turn_detection": {"type": mode}}})
            await rt.wait_for("session.updated", timeout=10)
            for name, clips in sets.items():
                res = [await first_audio(rt, c) for c in clips]
                lat = [
                    r["first_audio_ms"]
                    for r in res
                    if r["first_audio_ms"] is not None and not r["premature"]
                ]
                out.setdefault(mode, {})[name] = {
                    "premature_rate": sum(r["premature"] > 0 for r in res) / len(res),
                    "first_audio_p50_ms": pct(lat, 50),
                    "first_audio_p95_ms": pct(lat, 95),
                    "turns": res,
                }
                print(
                    f"SRV {mode:12s} {name:9s} premature {out[mode][name]['premature_rate']:.2f} first audio p50 {pct(lat, 50) or 0:5.0f} p95 {pct(lat, 95) or 0:5.0f}"
                )

    out.update(await overlap_section(server, quick))
    return out


async def overlap_section(server: Any, quick: bool) -> dict[str, Any]:
    """Speech during a reply: its own echo alone, backchannels, an interruption (the same
    trials on every server: the delays come from one seed)."""
    from voice_chat.client.echoloop import EchoLoop
    from voice_chat.client.rtclient import RealtimeClient

    out: dict[str, Any] = {}
    rng = np.random.default_rng(11)
    click = np.zeros(8000, np.float32)
    click[0] = 1.0
    room = ss.reverb(click, reverberance=50)
    room = room[: np.flatnonzero(np.abs(room) > 1e-4)[-1] + 1]

    async def over_greeting(
        loop_kw: dict[str, Any], user: np.ndarray | None, at_s: float
    ) -> dict[str, Any]:
        async with RealtimeClient.connect(
            server.ws_url, user=uuid.uuid4().hex, character="sage"
        ) as rt:
            await rt.wait_for("session.created", timeout=10)
            loop = EchoLoop(rt, **loop_kw)
            mic = asyncio.create_task(loop.run(60))
            try:
                started = await rt.wait_for("response.audio.started", timeout=120)
                said = None
                if user is not None:
                    await asyncio.sleep(at_s)
                    said = loop.say(user)
                done = await rt.wait_for(
                    "response.done", timeout=120, response_id=started.event["response_id"]
                )
            finally:
                mic.cancel()
            audio = [r.t for r in rt.log if r.audio is not None and said is not None and r.t > said]
            return {
                "status": done.event["response"]["status"],
                "speech_started": len(rt.events("input_audio_buffer.speech_started")),
                "last_audio_after_ms": (max(audio) - said) * 1000 if audio and said else 0.0,
                "cancel_after_ms": (done.t - said) * 1000 if said else None,
            }

    n_echo = 5 if quick else 20
    echo = [
        await over_greeting(
            {"delay_ms": float(rng.uniform(50, 200)), "gain_db": -10, "impulse": room}, None, 0
        )
        for _ in range(n_echo)
    ]
    out["echo_alone"] = {
        "trials": n_echo,
        "self_interruptions": sum(e["status"] != "completed" for e in echo),
    }
    bc = [
        await over_greeting({"gain_db": -120}, ss.trim(ss.espeak(w)), 1.0)
        for w in ts.BACKCHANNELS[: 3 if quick else 6]
    ]
    out["backchannel"] = {
        "trials": len(bc),
        "false_barge_ins": sum(e["status"] != "completed" for e in bc),
        "held": sum(e["speech_started"] > 0 for e in bc),
    }
    stop = ss.trim(ss.espeak("Wait, stop, tell me a joke."))
    ints = [
        await over_greeting({"delay_ms": d, "gain_db": g, "impulse": room}, stop, 1.2)
        for d, g in [(120, -10), (60, -10), (180, -10), (120, -120)][: 2 if quick else 4]
    ]
    out["interruption"] = {
        "trials": len(ints),
        "cancelled": sum(e["status"] == "cancelled" for e in ints),
        "last_audio_after_ms": [e["last_audio_after_ms"] for e in ints],
        "cancel_after_ms": [e["cancel_after_ms"] for e in ints],
        "with_echo": [True] * (len(ints) - (1 if len(ints) == 4 else 0))
        + ([False] if len(ints) == 4 else []),
    }
    print(
        "SRV echo alone: self-interruptions", out["echo_alone"], "backchannels", out["backchannel"]
    )
    print("SRV interruptions", out["interruption"])
    return out


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4.5))
    for name, row in result["endpoint"]["settings"].items():
        x = row["paused"]["wait_p50_ms"] or 0
        y = row["paused"]["premature_rate"]
        a.scatter(x, y, s=40)
        a.annotate(name, (x, y), fontsize=7, xytext=(4, 3), textcoords="offset points")
    a.set_xlabel("wait after the true end of speech, p50 (ms)")
    a.set_ylabel("premature end on paused utterances")
    a.set_title("End-of-turn settings (offline, real VAD/STT/Smart Turn)")
    wer = result.get("wer", {})
    conds = list(wer)
    engines = sorted({e for c in conds for e in wer[c]})
    for i, e in enumerate(engines):
        b.bar(
            np.arange(len(conds)) + i * 0.25,
            [wer[c].get(e, {}).get("mean_wer", 0) for c in conds],
            0.25,
            label=e,
        )
    b.set_xticks(np.arange(len(conds)) + 0.25, conds)
    b.set_ylabel("mean WER")
    b.axhline(0.15, color="grey", ls="--", lw=0.8)
    b.legend(fontsize=8)
    b.set_title("Word error rate")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--skip", nargs="*", default=[], choices=["wer", "endpoint", "server"])
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks")
    args = ap.parse_args()
    voices = ts.voices()
    result: dict[str, Any] = {
        "machine": {"platform": platform.platform(), "python": platform.python_version()},
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "quick": args.quick,
        "voices": [v.name for v in voices],
    }
    if "wer" not in args.skip:
        result["wer"] = wer_section(voices, args.quick)
    if "endpoint" not in args.skip:
        result["endpoint"] = endpoint_section(voices, args.quick)
    if "server" not in args.skip:
        from voice_chat.client.launcher import start_server

        server = start_server(Path(tempfile.mkdtemp(prefix="vc-turns-")))
        try:
            result["server"] = await server_section(server, voices, args.quick)
        finally:
            server.stop()
        # Baseline in the same run: the echo check alone, without the echo canceller.
        env = {"VOICE_CHAT_ECHO_CANCEL": "false"}
        server = start_server(Path(tempfile.mkdtemp(prefix="vc-turns-")), env=env)
        try:
            print("SRV baseline: no echo canceller")
            result["server"]["without_echo_canceller"] = await overlap_section(server, args.quick)
        finally:
            server.stop()
    args.out.mkdir(parents=True, exist_ok=True)
    previous = args.out / "turns.json"
    if args.skip and previous.is_file():  # a skipped section keeps its last results
        old = json.loads(previous.read_text())
        for name in args.skip:
            if name in old:
                result[name] = old[name]
                result.setdefault("kept_from", {})[name] = old.get("when")
    (args.out / "turns.json").write_text(json.dumps(result, indent=2, default=float))
    if "endpoint" in result:
        plot(result, args.out / "turns.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
