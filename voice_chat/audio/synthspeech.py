"""Synthetic *user* speech for tests, benchmarks and demos, and the ways real speech differs.

Voices: espeak-ng (many variants, any speed and pitch), flite (several diphone and cluster
voices), and any :class:`~voice_chat.engines.base.Synthesizer` passed in (Piper's Joe, the
Kokoro voices: neural speech). None of these is the server's tuning data.

Conditions, done with sox: telephone band (8 kHz, 300-3400 Hz), noise at a given SNR,
room reverberation, and utterances joined with natural pauses.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from voice_chat.audio.pcm import MODEL_RATE, read_wav, resample, wav_bytes

FLITE_VOICES = ("slt", "rms", "awb", "kal16")


class _Synth(Protocol):
    sample_rate: int

    def synthesize(self, text: str) -> Iterable[np.ndarray]: ...


def _need(tool: str, package: str) -> None:
    if shutil.which(tool) is None:
        raise RuntimeError(f"{tool} is not installed (apt-get install {package})")


def espeak(
    text: str, rate: int = MODEL_RATE, voice: str = "en-us", wpm: int = 160, pitch: int = 50
) -> np.ndarray:
    """Speak ``text`` with espeak-ng; mono float32 at ``rate``."""
    _need("espeak-ng", "espeak-ng")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "s.wav"
        subprocess.run(
            ["espeak-ng", "-v", voice, "-s", str(wpm), "-p", str(pitch), "-w", str(path), text],
            check=True,
        )
        audio, sr = read_wav(str(path))
    return resample(audio, sr, rate)


def flite(
    text: str, rate: int = MODEL_RATE, voice: str = "slt", stretch: float = 1.0
) -> np.ndarray:
    """Speak ``text`` with flite (``stretch`` > 1 is slower); mono float32 at ``rate``."""
    _need("flite", "flite")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "s.wav"
        subprocess.run(
            [
                "flite",
                "-voice",
                voice,
                "--setf",
                f"duration_stretch={stretch}",
                "-t",
                text,
                "-o",
                str(path),
            ],
            check=True,
        )
        audio, sr = read_wav(str(path))
    return resample(audio, sr, rate)


def neural(synth: _Synth, text: str, rate: int = MODEL_RATE) -> np.ndarray:
    """Speak ``text`` with a server synthesizer (Piper, Kokoro); mono float32 at ``rate``."""
    parts = [np.asarray(p, np.float32) for p in synth.synthesize(text)]
    audio = np.concatenate(parts) if parts else np.zeros(0, np.float32)
    return resample(audio, synth.sample_rate, rate)


def trim(audio: np.ndarray, level: float = 0.01) -> np.ndarray:
    """Cut leading and trailing silence."""
    loud = np.flatnonzero(np.abs(audio) > level)
    return audio[loud[0] : loud[-1] + 1] if loud.size else audio[:0]


def sox(audio: np.ndarray, rate: int, *effects: str, out_rate: int | None = None) -> np.ndarray:
    """Run ``audio`` through a sox effects chain; mono float32 at ``out_rate`` (or ``rate``)."""
    _need("sox", "sox")
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "in.wav", Path(tmp) / "out.wav"
        src.write_bytes(wav_bytes(np.clip(audio, -1.0, 1.0), rate))
        chain = list(effects) + (["rate", str(out_rate)] if out_rate else [])
        subprocess.run(["sox", "-q", "-R", str(src), "-D", str(dst), *chain], check=True)
        out, _ = read_wav(str(dst))
    return out


def telephone(audio: np.ndarray, rate: int = MODEL_RATE) -> np.ndarray:
    """Telephone band: 300-3400 Hz, 8 kHz sample rate (what a phone line delivers)."""
    return sox(audio, rate, "sinc", "300-3400", "rate", "8000")


def reverb(audio: np.ndarray, rate: int = MODEL_RATE, reverberance: int = 40) -> np.ndarray:
    """Room reverberation (sox ``reverb``), same length as the input."""
    wet = sox(audio, rate, "reverb", str(reverberance), "50", "60")
    return wet[: len(audio)] if len(wet) >= len(audio) else np.pad(wet, (0, len(audio) - len(wet)))


def noise(n: int, kind: str = "pink", seed: int = 0) -> np.ndarray:
    """Unit-RMS noise: ``white``, ``pink`` (1/f) or ``brown``; float32."""
    rng = np.random.default_rng(seed)
    white = rng.standard_normal(n)
    if kind != "white":
        spectrum = np.fft.rfft(white)
        f = np.arange(len(spectrum), dtype=np.float64)
        f[0] = 1.0
        spectrum /= np.sqrt(f) if kind == "pink" else f
        white = np.fft.irfft(spectrum, n)
    white /= np.sqrt(np.mean(white**2)) + 1e-12
    return white.astype(np.float32)


def mix_noise(audio: np.ndarray, snr_db: float, kind: str = "pink", seed: int = 0) -> np.ndarray:
    """Add noise at ``snr_db`` relative to the speech (measured where the speech is loud)."""
    loud = audio[np.abs(audio) > 0.01]
    level = float(np.sqrt(np.mean(loud**2))) if loud.size else 0.01
    mixed = audio + noise(len(audio), kind, seed) * level / (10 ** (snr_db / 20))
    return np.clip(mixed, -1.0, 1.0).astype(np.float32)


def join(
    parts: Sequence[np.ndarray], pauses_s: Sequence[float], rate: int = MODEL_RATE
) -> np.ndarray:
    """Clips joined by silences: ``pauses_s[i]`` seconds after ``parts[i]``."""
    out: list[np.ndarray] = []
    for i, part in enumerate(parts):
        out.append(part.astype(np.float32))
        if i < len(pauses_s):
            out.append(np.zeros(int(pauses_s[i] * rate), np.float32))
    return np.concatenate(out) if out else np.zeros(0, np.float32)
