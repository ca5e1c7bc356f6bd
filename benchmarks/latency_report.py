"""The latency benchmark's report: summaries of its turns, the printed table and the plot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def pct(values: list[float], q: float) -> float | None:
    vals = sorted(v for v in values if v is not None)
    if not vals:
        return None
    return float(np.percentile(vals, q))


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
            f"this tree / baseline p50 = {r['ratio_to_baseline_first_audio_p50']:.2f}; "
            f"median of the per-turn ratios {r['paired_ratio_first_audio_p50']:.2f}"
        )
    bi = r["barge_in_summary"]
    print(
        f"barge-in: last audio frame p50 {bi['last_audio_ms_p50']:.0f} ms, p95 {bi['last_audio_ms_p95']:.0f} ms; cancelled p50 {bi['cancelled_ms_p50']:.0f} ms"
    )
    for n, v in r["sweep"].items():
        print(
            f"{n} sessions: first audio p50 {v['first_audio_ms_p50']:.0f} / p95 {v['first_audio_ms_p95']:.0f} ms, stall p95 {v['stall_ms_p95']:.0f} ms, TTS RTF {v['tts_rtf_p50']:.2f}, faster than real time: {v['faster_than_real_time']}"
        )
