"""Synthetic *user* speech from espeak-ng, for tests, benchmarks and demos.

espeak-ng is a different synthesizer from the server's voices, so the STT hears a voice it
was not tuned on.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from voice_chat.audio.pcm import MODEL_RATE, read_wav, resample


def espeak(text: str, rate: int = MODEL_RATE, voice: str = "en-us", wpm: int = 160) -> np.ndarray:
    """Speak ``text`` with espeak-ng; mono float32 at ``rate``."""
    if shutil.which("espeak-ng") is None:
        raise RuntimeError("espeak-ng is not installed (apt-get install espeak-ng)")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "s.wav"
        subprocess.run(
            ["espeak-ng", "-v", voice, "-s", str(wpm), "-w", str(path), text], check=True
        )
        audio, sr = read_wav(str(path))
    return resample(audio, sr, rate)


def trim(audio: np.ndarray, level: float = 0.01) -> np.ndarray:
    """Cut leading and trailing silence."""
    loud = np.flatnonzero(np.abs(audio) > level)
    return audio[loud[0] : loud[-1] + 1] if loud.size else audio[:0]
