"""PCM helpers: PCM16 <-> float32, WAV files, streaming resampling and level metering.

Pure numpy/soxr (no sounddevice), so file mode works on machines without PortAudio.
"""

from __future__ import annotations

import math
import wave
from pathlib import Path

import numpy as np
import soxr

MODEL_RATE = 16_000  # what the server's models use; the client sends this rate


def pcm16_to_float(data: bytes) -> np.ndarray:
    """Little-endian PCM16 bytes -> float32 samples in [-1, 1)."""
    return np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0


def float_to_pcm16(samples: np.ndarray) -> bytes:
    """float32 samples -> little-endian PCM16 bytes (clipped)."""
    clipped = np.clip(samples, -1.0, 32767.0 / 32768.0)
    data: bytes = (clipped * 32768.0).astype("<i2").tobytes()
    return data


class Resampler:
    """Streaming resampler for mono float32 audio (soxr ResampleStream, HQ).

    Equal rates pass through untouched.
    """

    def __init__(self, in_rate: int, out_rate: int) -> None:
        self.in_rate = int(in_rate)
        self.out_rate = int(out_rate)
        self._stream: soxr.ResampleStream | None = None
        if self.in_rate != self.out_rate:
            self._stream = soxr.ResampleStream(self.in_rate, self.out_rate, 1, dtype="float32")

    def process(self, samples: np.ndarray, last: bool = False) -> np.ndarray:
        samples = np.ascontiguousarray(samples, dtype=np.float32)
        if self._stream is None:
            return samples
        out: np.ndarray = self._stream.resample_chunk(samples, last=last)
        return out

    def flush(self) -> np.ndarray:
        """Return the samples still held in the filter (end of stream)."""
        return self.process(np.zeros(0, dtype=np.float32), last=True)


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
    samples = _decode_ints(raw, width)
    if channels > 1:
        samples = samples[: len(samples) - len(samples) % channels]
        samples = samples.reshape(-1, channels).mean(axis=1)
    samples = samples.astype(np.float32)
    if src_rate != rate and samples.size:
        samples = soxr.resample(samples, src_rate, rate).astype(np.float32)
    return samples


def _decode_ints(raw: bytes, width: int) -> np.ndarray:
    if width == 1:  # unsigned 8-bit
        return (np.frombuffer(raw, dtype=np.uint8).astype(np.float32) - 128.0) / 128.0
    if width == 2:
        return np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0
    if width == 3:
        b = np.frombuffer(raw[: len(raw) - len(raw) % 3], dtype=np.uint8).reshape(-1, 3)
        ints = (
            b[:, 0].astype(np.int32)
            | (b[:, 1].astype(np.int32) << 8)
            | (b[:, 2].astype(np.int32) << 16)
        )
        ints = np.where(ints >= 1 << 23, ints - (1 << 24), ints)
        return ints.astype(np.float32) / float(1 << 23)
    if width == 4:
        return np.frombuffer(raw, dtype="<i4").astype(np.float32) / float(1 << 31)
    raise WavFormatError(f"unsupported sample width {width * 8} bit")


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
    if samples.size == 0:
        return -100.0
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))
    return max(-100.0, 20.0 * math.log10(rms)) if rms > 0 else -100.0


def meter(db: float, width: int = 20, floor: float = -60.0) -> str:
    """A text level meter: ``█████·····`` for ``db`` between ``floor`` and 0 dBFS."""
    frac = min(1.0, max(0.0, (db - floor) / -floor))
    filled = round(frac * width)
    return "█" * filled + "·" * (width - filled)
