"""Acoustic echo cancellation of the microphone: WebRTC's AEC3, through livekit's binding.

A client without echo cancellation (speakers, a third-party app) sends the character's own
voice back. The server knows what it sent: :class:`EchoCanceller` feeds that reply audio,
placed on its playback clock, to WebRTC's audio processing module as the *far end*, and the
microphone as the *near end*. What comes out is the microphone with the reply's echo removed
(15-30 dB here with a 50-400 ms delay and room reverberation), so the VAD hears the user,
not the echo, from the first frame of an interruption.

The reference must lead the echo: it is placed at the time the server sent it, which is
never later than the speaker played it; AEC3 estimates the rest of the delay itself.
AEC3 works on 10 ms frames: a chunk that is not a whole number of frames leaves its rest
for the next one (at most 10 ms of delay). The module's output is itself about 8 ms behind
its input, so the same audio must not switch between cancelled and raw within one turn;
:class:`~voice_chat.pipeline.overlap.BargeIn` decides when to use it.

``livekit`` (Apache-2.0) ships the module prebuilt. Without it, :func:`make_canceller`
returns None and echo is told from the user by comparison alone (:mod:`voice_chat.audio.echo`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import structlog

from voice_chat.audio.pcm import MODEL_RATE

log = structlog.get_logger(__name__)
FRAME = MODEL_RATE // 100  # AEC3 processes 10 ms frames

# the reply samples that play from a time (monotonic seconds) on, for a number of samples
Reference = Callable[[float, int], np.ndarray]


class EchoCanceller:
    """One microphone stream's echo canceller (not thread-safe: one caller at a time)."""

    def __init__(self) -> None:
        from livekit import rtc

        self._rtc = rtc
        self._apm = rtc.AudioProcessingModule(echo_cancellation=True)
        self._rest = np.zeros(0, np.float32)  # the part of a 10 ms frame still to come

    def process(self, mic: np.ndarray, spoken_until: float, reference: Reference) -> np.ndarray:
        """``mic`` (16 kHz float32) whose last sample was spoken at ``spoken_until``, with the
        echo removed. Returns whole 10 ms frames only: the rest waits for the next call."""
        audio = np.concatenate([self._rest, mic.astype(np.float32, copy=False)])
        whole = len(audio) // FRAME * FRAME
        self._rest = audio[whole:]
        if not whole:
            return audio[:0]
        t0 = spoken_until - len(audio) / MODEL_RATE  # when its first sample was spoken
        far = reference(t0, whole)
        out = np.empty(whole, np.float32)
        for i in range(0, whole, FRAME):
            self._apm.process_reverse_stream(self._frame(far[i : i + FRAME]))
            near = self._frame(audio[i : i + FRAME])
            self._apm.process_stream(near)
            out[i : i + FRAME] = np.frombuffer(bytes(near.data), np.int16) / 32768.0
        return out

    def _frame(self, x: np.ndarray) -> object:
        pcm = (np.clip(x, -1.0, 1.0) * 32767.0).astype(np.int16).tobytes()
        return self._rtc.AudioFrame(pcm, MODEL_RATE, 1, FRAME)


def make_canceller() -> EchoCanceller | None:
    """An AEC3 canceller, or None (and one log line) where livekit cannot be loaded."""
    try:
        return EchoCanceller()
    except Exception as exc:  # noqa: BLE001 - an optional native module: fall back
        log.warning("echo canceller unavailable; echo is told by comparison", error=str(exc))
        return None
