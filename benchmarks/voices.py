"""Benchmark of the shipped voices: pitch, speed of synthesis and how different they sound.

Every shipped voice says the same sentences (set A) and, separately, other sentences (set B).
Printed and saved (docs/benchmarks/voices.json + voices.png):

* median f0 (Hz) of set A;
* real-time factor: wall-clock and CPU seconds per second of audio (the CPU figure is what
  one free core would give; the wall figure depends on how busy the machine is), the wall
  time to the first chunk (a whole first sentence) and to synthesise a short first clause
  (``CLAUSE``, what a streaming reply waits for);
* for derived voices, the WORLD DSP cost alone (its share of the RTF);
* the speaker-similarity matrix: row voice on set A against column voice on set B. The
  diagonal is each voice against itself on different sentences, the "same speaker"
  reference; off-diagonal cells should be clearly lower.

Uses resemblyzer when installed (the ``similarity`` extra), else MFCC statistics; says which.

    python benchmarks/voices.py [--quick] [--out docs/benchmarks]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np

from voice_chat.audio import dsp
from voice_chat.engines.tts import build_synthesizer, flatten
from voice_chat.engines.voices import VoiceRegistry
from voice_chat.voicelab import similarity

ROOT = Path(__file__).resolve().parent.parent
SET_A = [
    "The weather is lovely today, so let's take the long way home through the park.",
    "Did you remember to water the plants before you left this morning?",
]
CLAUSE = "Sure, let me think."  # a typical first chunk: what the user waits for
SET_B = [
    "I've been reading a wonderful book about sailors who crossed the ocean alone.",
    "Tell me, what would you like to do this weekend?",
]


def run(synth: object, sentences: list[str]) -> dict:
    audio, first = [], None
    wall0, cpu0 = time.perf_counter(), time.process_time()
    for sentence in sentences:
        for chunk in synth.synthesize(sentence):  # type: ignore[attr-defined]
            first = first if first is not None else time.perf_counter() - wall0
            audio.append(chunk)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    joined = np.concatenate(audio)
    seconds = joined.size / synth.sample_rate  # type: ignore[attr-defined]
    return {
        "audio": joined,
        "seconds": seconds,
        "rtf_wall": wall / seconds,
        "rtf_cpu": cpu / seconds,
        "first_chunk_s": first,
    }


def dsp_cost(
    base_chunks: list[np.ndarray], rate: int, pitch: float, formant: float, expr: float
) -> float:
    """CPU seconds of WORLD processing per second of audio."""
    cpu0 = time.process_time()
    for chunk in base_chunks:
        dsp.world_transform(
            chunk, rate, pitch_semitones=pitch, formant_shift=formant, expressiveness=expr
        )
    return (time.process_time() - cpu0) / (sum(c.size for c in base_chunks) / rate)


def heatmap(ids: list[str], matrix: np.ndarray, method: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(1.1 * len(ids) + 2, 1.0 * len(ids) + 1.5))
    image = ax.imshow(matrix, cmap="viridis", vmin=min(0.0, float(matrix.min())), vmax=1.0)
    ax.set_xticks(range(len(ids)), ids)
    ax.set_yticks(range(len(ids)), ids)
    ax.set_xlabel("voice, sentences B")
    ax.set_ylabel("voice, sentences A")
    for i in range(len(ids)):
        for j in range(len(ids)):
            value = matrix[i, j]
            ax.text(
                j,
                i,
                f"{value:.2f}",
                ha="center",
                va="center",
                color="white" if value < 0.7 else "black",
            )
    ax.set_title(f"Speaker similarity of the shipped voices ({method})")
    fig.colorbar(image, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--voices", type=Path, default=ROOT / "voices")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks")
    parser.add_argument("--quick", action="store_true", help="one sentence per set")
    args = parser.parse_args()
    set_a, set_b = (SET_A[:1], SET_B[:1]) if args.quick else (SET_A, SET_B)

    registry = VoiceRegistry(args.voices, Path("/nonexistent"))
    voices = sorted(registry.list(), key=lambda v: (v.id != "joe", v.id))
    results, clips_a, clips_b = [], [], []
    joe_chunks: list[np.ndarray] = []
    for voice in voices:
        synth = build_synthesizer(voice, registry.get)
        synth.synthesize("Warm up.").__next__()  # load models outside the timing
        clause = min(
            run(synth, [CLAUSE])["rtf_wall"] * run(synth, [CLAUSE])["seconds"] for _ in range(3)
        )
        a, b = run(synth, set_a), run(synth, set_b)
        rate = synth.sample_rate
        row = {
            "id": voice.id,
            "engine": voice.engine,
            "sample_rate": rate,
            "median_f0_hz": round(dsp.median_f0(a["audio"], rate), 1),
            "audio_s": round(a["seconds"], 2),
            "rtf_wall": round(a["rtf_wall"], 3),
            "rtf_cpu": round(a["rtf_cpu"], 3),
            "first_chunk_s": round(a["first_chunk_s"], 3),
            "short_clause_s": round(clause, 3),
        }
        if voice.id == "joe":
            joe_chunks = [c for s in set_a for c in synth.synthesize(s)]
        root, pitch, formant, expr = flatten(voice, registry.get)
        if (pitch, formant, expr) != (0.0, 1.0, 1.0) and root.model == "embedded:joe-medium":
            row["dsp_rtf_cpu"] = round(dsp_cost(joe_chunks, rate, pitch, formant, expr), 3)
        results.append(row)
        clips_a.append((a["audio"], rate))
        clips_b.append((b["audio"], rate))
        print(f"  {voice.id}: done", flush=True)

    emb_a = [similarity.embed(x, r) for x, r in clips_a]
    method = emb_a[0][1]
    emb_b = [similarity.embed(x, r, method)[0] for x, r in clips_b]
    matrix = np.array([[similarity.cosine(ea, eb) for eb in emb_b] for ea, _ in emb_a])
    ids = [r["id"] for r in results]
    off = matrix[~np.eye(len(ids), dtype=bool)]
    summary = {
        "method": method,
        "same_voice_min": round(float(np.diag(matrix).min()), 3),
        "same_voice_joe": round(float(matrix[ids.index("joe"), ids.index("joe")]), 3),
        "different_voices_max": round(float(off.max()), 3),
        "different_voices_mean": round(float(off.mean()), 3),
    }

    print(
        f"\n{'voice':8} {'engine':8} {'f0 Hz':>7} {'RTF wall':>9} {'RTF cpu':>8} {'DSP cpu':>8} {'1st chunk':>9} {'clause':>7}"
    )
    for r in results:
        dsp_text = f"{r['dsp_rtf_cpu']:.3f}" if "dsp_rtf_cpu" in r else "-"
        print(
            f"{r['id']:8} {r['engine']:8} {r['median_f0_hz']:7.1f} {r['rtf_wall']:9.3f} "
            f"{r['rtf_cpu']:8.3f} {dsp_text:>8} {r['first_chunk_s']:8.2f}s {r['short_clause_s']:6.2f}s"
        )
    print(f"\nSpeaker similarity ({method}); rows: sentences A, columns: sentences B")
    print(" " * 8 + "".join(f"{i:>8}" for i in ids))
    for i, row_id in enumerate(ids):
        print(f"{row_id:8}" + "".join(f"{v:8.2f}" for v in matrix[i]))
    print(
        f"\nsame voice, different sentences: min {summary['same_voice_min']:.2f} "
        f"(joe vs joe {summary['same_voice_joe']:.2f}); different voices: max "
        f"{summary['different_voices_max']:.2f}, mean {summary['different_voices_mean']:.2f}"
    )

    args.out.mkdir(parents=True, exist_ok=True)
    report = {
        "machine": {"cpus": __import__("os").cpu_count(), "python": platform.python_version()},
        "load_average": list(__import__("os").getloadavg()),
        "sentences": {"A": set_a, "B": set_b},
        "voices": results,
        "similarity": {"ids": ids, "matrix": np.round(matrix, 3).tolist(), **summary},
    }
    (args.out / "voices.json").write_text(json.dumps(report, indent=2) + "\n")
    heatmap(ids, matrix, method, args.out / "voices.png")
    print(f"\nwrote {args.out / 'voices.json'} and {args.out / 'voices.png'}")


if __name__ == "__main__":
    main()
