"""PCM16 conversion, streaming resampling and WAV helpers."""

from __future__ import annotations

import io
import wave

import numpy as np
import soxr

MODEL_RATE = 16000  # what the STT and VAD models take
MIN_RATE = 8000
MAX_RATE = 48000


def pcm16_to_float(data: bytes) -> np.ndarray:
    """Little-endian PCM16 bytes to float32 in [-1, 1)."""
    return np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0


def float_to_pcm16(audio: np.ndarray) -> bytes:
    """Float samples to little-endian PCM16 bytes, clipping at full scale."""
    clipped = np.clip(audio, -1.0, 32767.0 / 32768.0)
    return (clipped * 32768.0).astype("<i2").tobytes()


class StreamResampler:
    """Chunk-by-chunk resampling without clicks at chunk edges (soxr ResampleStream)."""

    def __init__(self, in_rate: int, out_rate: int) -> None:
        self.in_rate = in_rate
        self.out_rate = out_rate
        self._stream = (
            None
            if in_rate == out_rate
            else soxr.ResampleStream(in_rate, out_rate, 1, dtype="float32", quality="HQ")
        )

    def process(self, audio: np.ndarray, last: bool = False) -> np.ndarray:
        if self._stream is None:
            return audio.astype(np.float32, copy=False)
        return self._stream.resample_chunk(audio.astype(np.float32, copy=False), last=last)


def resample(audio: np.ndarray, in_rate: int, out_rate: int) -> np.ndarray:
    """Resample a whole clip."""
    if in_rate == out_rate:
        return audio.astype(np.float32, copy=False)
    return soxr.resample(audio.astype(np.float32, copy=False), in_rate, out_rate, quality="HQ")


def wav_bytes(audio: np.ndarray, rate: int) -> bytes:
    """A mono PCM16 WAV file in memory."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(float_to_pcm16(audio))
    return buf.getvalue()


def read_wav(data: bytes | str) -> tuple[np.ndarray, int]:
    """Read a PCM16/PCM8/PCM32 WAV (path or bytes) as mono float32 and its rate.

    Raises ``ValueError`` with a readable message when the file is not a usable WAV.
    """
    src = io.BytesIO(data) if isinstance(data, bytes | bytearray) else data
    try:
        with wave.open(src, "rb") as w:
            channels, width, rate = w.getnchannels(), w.getsampwidth(), w.getframerate()
            frames = w.readframes(w.getnframes())
    except (wave.Error, EOFError) as exc:
        raise ValueError(f"not a readable PCM WAV file: {exc}") from exc
    if width not in (1, 2, 4) or channels < 1 or rate <= 0:
        raise ValueError(f"unsupported WAV format: {width * 8}-bit, {channels} channels")
    if width == 1:
        audio = (np.frombuffer(frames, dtype=np.uint8).astype(np.float32) - 128.0) / 128.0
    elif width == 2:
        audio = np.frombuffer(frames, dtype="<i2").astype(np.float32) / 32768.0
    else:
        audio = np.frombuffer(frames, dtype="<i4").astype(np.float32) / 2147483648.0
    if channels > 1:
        audio = audio[: len(audio) // channels * channels].reshape(-1, channels).mean(axis=1)
    return audio.astype(np.float32), rate


def rms_dbfs(audio: np.ndarray) -> float:
    """Level of a clip in dB relative to full scale (-120 for silence)."""
    if audio.size == 0:
        return -120.0
    rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64))))
    return max(-120.0, 20.0 * np.log10(rms + 1e-12))
