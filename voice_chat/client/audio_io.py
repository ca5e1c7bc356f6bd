"""Sound card I/O with sounddevice at the device's native rate.

* ``PlaybackBuffer`` – thread-safe jitter buffer between the websocket (asyncio thread) and the
  PortAudio callback; counts what was actually played per response (for truncate).
* ``AudioOutput``    – an OutputStream fed from the buffer; reply audio is resampled from the
  announced rate to the device rate with a streaming soxr resampler.
* ``AudioInput``     – an InputStream whose blocks are resampled to 16 kHz and handed to asyncio.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from types import ModuleType
from typing import Any

import numpy as np

from .devices import AudioDeviceError, DeviceInfo, Kind, portaudio_message
from .pcm import MODEL_RATE, Resampler, pcm16_to_float


def open_stream(
    sd: ModuleType,
    factory: Any,
    device: DeviceInfo,
    kind: Kind,
    callback: Any,
    blocksize: int = 0,
) -> Any:
    """Open and start a float32 stream at the device's native rate: mono, else stereo."""
    error: Exception | None = None
    for channels in sorted({1, min(2, device.channels(kind))}):
        try:
            stream = factory(
                device=device.index,
                samplerate=int(device.default_samplerate),
                channels=channels,
                dtype="float32",
                blocksize=blocksize,
                callback=callback,
            )
            stream.start()
            return stream
        except sd.PortAudioError as exc:
            error = exc
    where = f"{kind} device {device.index} ({device.name})"
    raise AudioDeviceError(f"cannot open {where}: {portaudio_message(error or Exception())}")


class PlaybackBuffer:
    """FIFO of float32 chunks tagged with their response id.

    Playback of a response starts once ``prebuffer`` samples are queued (or all of its audio has
    arrived); an underrun in the middle of a response re-buffers instead of crackling.
    """

    def __init__(self, rate: int, prebuffer_ms: int = 120) -> None:
        self.rate = rate
        self.prebuffer = int(rate * prebuffer_ms / 1000)
        self._lock = threading.Lock()
        self._chunks: deque[tuple[str, np.ndarray]] = deque()
        self._queued = 0
        self._playing = False
        self._complete: set[str] = set()
        self._played: dict[str, int] = {}

    def push(self, response_id: str, samples: np.ndarray) -> None:
        if samples.size == 0:
            return
        with self._lock:
            self._chunks.append((response_id, samples.astype(np.float32, copy=False)))
            self._queued += samples.size

    def mark_complete(self, response_id: str) -> None:
        """No more audio will come for this response (play out whatever is queued)."""
        with self._lock:
            self._complete.add(response_id)

    def pull(self, frames: int) -> np.ndarray:
        """Called from the audio callback: exactly ``frames`` samples (silence when idle)."""
        out = np.zeros(frames, dtype=np.float32)
        with self._lock:
            if not self._chunks:
                self._playing = False
                return out
            if not self._playing:
                head = self._chunks[0][0]
                if self._queued < self.prebuffer and head not in self._complete:
                    return out
                self._playing = True
            filled = 0
            while filled < frames and self._chunks:
                rid, chunk = self._chunks[0]
                take = min(frames - filled, chunk.size)
                out[filled : filled + take] = chunk[:take]
                filled += take
                self._queued -= take
                self._played[rid] = self._played.get(rid, 0) + take
                if take == chunk.size:
                    self._chunks.popleft()
                else:
                    self._chunks[0] = (rid, chunk[take:])
            if not self._chunks:
                self._playing = False
        return out

    def flush(self) -> None:
        """Drop everything queued (barge-in)."""
        with self._lock:
            self._chunks.clear()
            self._queued = 0
            self._playing = False

    def played_ms(self, response_id: str) -> int:
        with self._lock:
            return int(self._played.get(response_id, 0) * 1000 / self.rate)

    def has_audio(self, response_id: str | None = None) -> bool:
        with self._lock:
            if response_id is None:
                return bool(self._chunks)
            return any(rid == response_id for rid, _ in self._chunks)

    @property
    def queued_ms(self) -> int:
        with self._lock:
            return int(self._queued * 1000 / self.rate)


class AudioOutput:
    """Plays reply audio on an output device. Use from the asyncio thread."""

    def __init__(self, sd: ModuleType, device: DeviceInfo, prebuffer_ms: int = 120) -> None:
        self.device = device
        self.rate = int(device.default_samplerate)
        self.buffer = PlaybackBuffer(self.rate, prebuffer_ms)
        self._resamplers: dict[str, Resampler] = {}
        self._stream = open_stream(sd, sd.OutputStream, device, "output", self._callback)

    def _callback(self, outdata: np.ndarray, frames: int, _time: Any, _status: Any) -> None:
        outdata[:] = self.buffer.pull(frames)[:, None]  # mono to every channel

    def start_response(self, response_id: str, sample_rate: int) -> None:
        self._resamplers[response_id] = Resampler(sample_rate, self.rate)

    def feed(self, response_id: str, pcm16: bytes) -> None:
        resampler = self._resamplers.get(response_id)
        if resampler is None:  # audio without response.audio.started: assume the device rate
            resampler = self._resamplers[response_id] = Resampler(self.rate, self.rate)
        self.buffer.push(response_id, resampler.process(pcm16_to_float(pcm16)))

    def finish_response(self, response_id: str) -> None:
        resampler = self._resamplers.pop(response_id, None)
        if resampler is not None:
            self.buffer.push(response_id, resampler.flush())
        self.buffer.mark_complete(response_id)

    def interrupt(self, response_id: str | None) -> int:
        """Stop playback at once; return how many ms of ``response_id`` were played."""
        self.buffer.flush()
        self._resamplers.clear()
        return self.buffer.played_ms(response_id) if response_id else 0

    def is_playing(self, response_id: str | None = None) -> bool:
        return self.buffer.has_audio(response_id)

    def played_ms(self, response_id: str) -> int:
        return self.buffer.played_ms(response_id)

    def close(self) -> None:
        try:
            self._stream.stop()
            self._stream.close()
        except Exception:  # noqa: BLE001 - closing must never raise on exit
            pass


class AudioInput:
    """Captures from an input device; ``queue`` receives mono float32 blocks at 16 kHz."""

    def __init__(
        self,
        sd: ModuleType,
        device: DeviceInfo,
        loop: asyncio.AbstractEventLoop,
        block_ms: int = 20,
    ) -> None:
        self.device = device
        self.rate = int(device.default_samplerate)
        self.queue: asyncio.Queue[np.ndarray] = asyncio.Queue(maxsize=500)
        self._loop = loop
        self._resampler = Resampler(self.rate, MODEL_RATE)
        self.dropped = 0
        blocksize = int(self.rate * block_ms / 1000)
        self._stream = open_stream(sd, sd.InputStream, device, "input", self._callback, blocksize)

    def _callback(self, indata: np.ndarray, _frames: int, _time: Any, _status: Any) -> None:
        block = indata[:, 0].copy()
        try:
            self._loop.call_soon_threadsafe(self._deliver, block)
        except RuntimeError:  # loop closed during shutdown
            pass

    def _deliver(self, block: np.ndarray) -> None:
        samples = self._resampler.process(block)
        if samples.size == 0:
            return
        try:
            self.queue.put_nowait(samples)
        except asyncio.QueueFull:
            self.dropped += 1

    def close(self) -> None:
        try:
            self._stream.stop()
            self._stream.close()
        except Exception:  # noqa: BLE001 - closing must never raise on exit
            pass
