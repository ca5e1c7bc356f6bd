"""The terminal client's audio files and meters: WAV in and out, level metering.

PCM conversion and resampling are the server's (``voice_chat.audio.pcm``): pure numpy/soxr
(no sounddevice), so file mode works on machines without PortAudio.
"""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

from voice_chat.audio.pcm import (
    MODEL_RATE,
    decode_pcm,
    float_to_pcm16,
    pcm16_to_float,
    resample,
    rms_dbfs,
    to_mono,
)
from voice_chat.audio.pcm import StreamResampler as Resampler

__all__ = [
    "MODEL_RATE",
    "Resampler",
    "WavFormatError",
    "WavWriter",
    "float_to_pcm16",
    "level_dbfs",
    "meter",
    "pcm16_to_float",
    "read_wav",
]


class WavFormatError(ValueError):
    """The file is not a WAV file this client can read."""


def read_wav(path: str | Path, rate: int = MODEL_RATE) -> np.ndarray:
    """Read a PCM WAV file of any rate/channels/int width; return mono float32 at ``rate``."""
    try:
        with wave.open(str(path), "rb") as wav:
            channels = wav.getnchannels()
            width = wav.getsampwidth()
            src_rate = wav.getframerate()
            raw = wav.readframes(wav.getnframes())
    except FileNotFoundError:
        raise WavFormatError(f"{path}: no such file") from None
    except (wave.Error, EOFError) as exc:
        raise WavFormatError(f"{path}: not a PCM WAV file ({exc})") from None
    try:
        samples = to_mono(decode_pcm(raw, width), channels)
    except ValueError as exc:
        raise WavFormatError(str(exc)) from None
    if src_rate != rate and samples.size:
        samples = resample(samples, src_rate, rate).astype(np.float32)
    return samples


class WavWriter:
    """Append PCM16 mono audio to a WAV file; the rate is fixed by the first write."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._wav: wave.Wave_write | None = None
        self.rate: int | None = None
        self.frames = 0

    def write(self, pcm16: bytes, rate: int) -> None:
        if self._wav is None:
            self._wav = wave.open(str(self.path), "wb")
            self._wav.setnchannels(1)
            self._wav.setsampwidth(2)
            self._wav.setframerate(rate)
            self.rate = rate
        elif rate != self.rate:
            data = Resampler(rate, self.rate or rate).process(pcm16_to_float(pcm16), last=True)
            pcm16 = float_to_pcm16(data)
        self._wav.writeframes(pcm16)
        self.frames += len(pcm16) // 2

    def close(self, default_rate: int = 22050) -> None:
        """Close the file; with nothing written, still leave a valid empty WAV."""
        if self._wav is None:
            self.write(b"", default_rate)
        assert self._wav is not None
        self._wav.close()

    @property
    def duration_s(self) -> float:
        return self.frames / self.rate if self.rate else 0.0


def level_dbfs(samples: np.ndarray) -> float:
    """RMS level in dBFS (-100 for silence)."""
    return max(-100.0, float(rms_dbfs(samples)))


def meter(db: float, width: int = 20, floor: float = -60.0) -> str:
    """A text level meter: ``█████·····`` for ``db`` between ``floor`` and 0 dBFS."""
    frac = min(1.0, max(0.0, (db - floor) / -floor))
    filled = round(frac * width)
    return "█" * filled + "·" * (width - filled)
