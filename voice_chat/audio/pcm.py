"""PCM16 conversion, streaming resampling and WAV helpers (server and terminal client)."""

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
    """Chunk-by-chunk resampling of mono audio without clicks at chunk edges (soxr
    ResampleStream, HQ). Equal rates pass through untouched."""

    def __init__(self, in_rate: int, out_rate: int) -> None:
        self.in_rate = int(in_rate)
        self.out_rate = int(out_rate)
        self._stream = (
            None
            if self.in_rate == self.out_rate
            else soxr.ResampleStream(self.in_rate, self.out_rate, 1, dtype="float32", quality="HQ")
        )

    def process(self, audio: np.ndarray, last: bool = False) -> np.ndarray:
        audio = np.ascontiguousarray(audio, dtype=np.float32)
        if self._stream is None:
            return audio
        out: np.ndarray = self._stream.resample_chunk(audio, last=last)
        return out

    def flush(self) -> np.ndarray:
        """The samples still held in the filter (end of stream)."""
        return self.process(np.zeros(0, dtype=np.float32), last=True)


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
    return to_mono(decode_pcm(frames, width), channels), rate


def decode_pcm(raw: bytes, width: int) -> np.ndarray:
    """Interleaved integer PCM (8-bit unsigned, 16/24/32-bit signed) to float32 in [-1, 1)."""
    if width == 1:
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
        return np.frombuffer(raw, dtype="<i4").astype(np.float32) / 2147483648.0
    raise ValueError(f"unsupported sample width {width * 8} bit")


def to_mono(audio: np.ndarray, channels: int) -> np.ndarray:
    """Interleaved samples of ``channels`` channels averaged to one float32 channel."""
    if channels > 1:
        audio = audio[: len(audio) // channels * channels].reshape(-1, channels).mean(axis=1)
    return audio.astype(np.float32)


def rms_dbfs(audio: np.ndarray) -> float:
    """Level of a clip in dB relative to full scale (-120 for silence)."""
    if audio.size == 0:
        return -120.0
    rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64))))
    return max(-120.0, 20.0 * np.log10(rms + 1e-12))
