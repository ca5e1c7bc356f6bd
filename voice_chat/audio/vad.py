"""Streaming Silero VAD (the ONNX model that ships inside faster-whisper).

One shared ONNX session; each stream keeps its own recurrent state, so sessions never
interfere. A 512-sample (32 ms) frame costs well under a millisecond on one core.
"""

from __future__ import annotations

import functools
import os
import threading

import numpy as np

FRAME = 512  # samples at 16 kHz = 32 ms
CONTEXT = 64


@functools.lru_cache(maxsize=1)
def _session() -> object:
    import faster_whisper

    from voice_chat.audio.onnx import cpu_session

    path = os.path.join(os.path.dirname(faster_whisper.__file__), "assets", "silero_vad_v6.onnx")
    return cpu_session(path, threads=1, log_level=4)


_lock = threading.Lock()


class StreamingVAD:
    """Feed 16 kHz float32 audio of any length; get one speech probability per 32 ms frame."""

    def __init__(self) -> None:
        self._session = _session()
        self.reset()

    def reset(self) -> None:
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)
        self._context = np.zeros(CONTEXT, dtype=np.float32)
        self._pending = np.zeros(0, dtype=np.float32)

    def process(self, audio: np.ndarray) -> list[float]:
        self._pending = np.concatenate([self._pending, audio.astype(np.float32, copy=False)])
        probs: list[float] = []
        while len(self._pending) >= FRAME:
            frame, self._pending = self._pending[:FRAME], self._pending[FRAME:]
            x = np.concatenate([self._context, frame])[None, :]
            with _lock:  # onnxruntime sessions are thread-safe, but keep the cost bounded
                out, self._h, self._c = self._session.run(  # type: ignore[attr-defined]
                    None, {"input": x, "h": self._h, "c": self._c}
                )
            self._context = frame[-CONTEXT:]
            probs.append(float(np.asarray(out).reshape(-1)[0]))
        return probs


def speech_ms(audio: np.ndarray, threshold: float = 0.5) -> int:
    """How much of a 16 kHz clip the VAD hears as speech, in ms (a fresh stream state)."""
    probs = StreamingVAD().process(audio)
    return sum(1 for p in probs if p >= threshold) * FRAME * 1000 // 16000
