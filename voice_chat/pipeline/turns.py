"""End-of-turn detection from a streaming VAD.

Events, in stream time (milliseconds of input audio):

* ``started``: speech began (two VAD frames over the threshold).
* ``paused``: ``speculative_ms`` of silence after speech; a reply may start speculatively.
* ``resumed``: speech came back after a pause, before the turn ended.
* ``ended``: ``silence_ms`` of silence; the user's turn is over.

The detector keeps the utterance audio (with a short pre-roll) for transcription.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from voice_chat.audio.pcm import MODEL_RATE
from voice_chat.audio.vad import FRAME, StreamingVAD
from voice_chat.pipeline.ports import TurnConfig

FRAME_MS = FRAME * 1000 // MODEL_RATE  # 32
PRE_ROLL_MS = 300
MIN_SPEECH_FRAMES = 2

Kind = Literal["started", "paused", "resumed", "ended"]


@dataclass(frozen=True)
class TurnEvent:
    kind: Kind
    at_ms: int  # stream time of the event
    speech_end_ms: int = 0  # for paused/ended: when the last speech frame ended


class TurnDetector:
    """Reads its thresholds from ``config`` at every frame, so a ``session.update`` applies."""

    def __init__(self, config: TurnConfig | None = None, *, speculative: bool = True) -> None:
        self.vad = StreamingVAD()
        self.config = config or TurnConfig()
        self.speculative = speculative
        self.endpoint_ms: int | None = None  # set by the semantic endpoint, per pause
        self.reset()

    @property
    def threshold(self) -> float:
        return self.config.threshold

    @property
    def silence_ms(self) -> int:
        """Silence that ends the turn: the semantic endpoint's when set, else the config's."""
        return self.config.silence_ms if self.endpoint_ms is None else self.endpoint_ms

    @property
    def speculative_ms(self) -> int:
        if not self.speculative or not self.config.speculative_ms:
            return 0
        return min(self.config.speculative_ms, self.silence_ms)

    def reset(self) -> None:
        self.vad.reset()
        self._frames: list[np.ndarray] = []  # utterance audio (pre-roll + speech + silence)
        self._pre: list[np.ndarray] = []
        self._pending = np.zeros(0, dtype=np.float32)
        self._t_ms = 0
        self.in_speech = False
        self._voiced_run = 0
        self._silent_ms = 0
        self._paused = False
        self._last_speech_ms = 0
        self.voiced_ms = 0  # voiced audio in the utterance

    @property
    def silent_ms(self) -> int:
        """Silence since the last voiced frame of the utterance (0 while speaking)."""
        return self._silent_ms if self.in_speech else 0

    @property
    def last_speech_ms(self) -> int:
        """Stream time at which the utterance's last voiced frame ended."""
        return self._last_speech_ms

    @property
    def now_ms(self) -> int:
        return self._t_ms

    def utterance(self) -> np.ndarray:
        return np.concatenate(self._frames) if self._frames else np.zeros(0, np.float32)

    @property
    def utterance_samples(self) -> int:
        """Length of :meth:`utterance` without building it (frames are all FRAME long)."""
        return len(self._frames) * FRAME

    def clear_utterance(self) -> None:
        self._frames = []
        self.voiced_ms = 0

    def keep_last(self, ms: int) -> None:
        """Drop the utterance audio but its last ``ms`` (speech heard before was not the user's)."""
        keep = max(1, ms // FRAME_MS)
        self._frames = self._frames[-keep:]
        self.voiced_ms = min(self.voiced_ms, keep * FRAME_MS)

    def feed(self, audio: np.ndarray) -> list[TurnEvent]:
        events: list[TurnEvent] = []
        self._pending = np.concatenate([self._pending, audio])
        n = len(self._pending) // FRAME * FRAME
        if n == 0:
            return events
        block, self._pending = self._pending[:n], self._pending[n:]
        probs = self.vad.process(block)
        for i, p in enumerate(probs):
            frame = block[i * FRAME : (i + 1) * FRAME]
            self._t_ms += FRAME_MS
            events.extend(self._step(frame, p))
        return events

    def _step(self, frame: np.ndarray, p: float) -> list[TurnEvent]:
        voiced = p >= self.threshold if not self.in_speech else p >= self.threshold - 0.15
        if not self.in_speech:
            self._pre.append(frame)
            self._pre = self._pre[-(PRE_ROLL_MS // FRAME_MS) :]
            self._voiced_run = self._voiced_run + 1 if voiced else 0
            if self._voiced_run >= MIN_SPEECH_FRAMES:
                self.in_speech = True
                self._silent_ms = 0
                self._paused = False
                self._frames.extend(self._pre)
                self._pre = []
                self._last_speech_ms = self._t_ms
                self.voiced_ms += MIN_SPEECH_FRAMES * FRAME_MS
                start = self._t_ms - MIN_SPEECH_FRAMES * FRAME_MS
                return [TurnEvent("started", max(0, start))]
            return []
        self._frames.append(frame)
        if voiced:
            self._last_speech_ms = self._t_ms
            self.voiced_ms += FRAME_MS
            self._silent_ms = 0
            if self._paused:
                self._paused = False
                return [TurnEvent("resumed", self._t_ms)]
            return []
        self._silent_ms += FRAME_MS
        if self.speculative_ms and not self._paused and self._silent_ms >= self.speculative_ms:
            self._paused = True
            return [TurnEvent("paused", self._t_ms, self._last_speech_ms)]
        if self._silent_ms >= self.silence_ms:
            self.in_speech = False
            self._paused = False
            self._voiced_run = 0
            return [TurnEvent("ended", self._t_ms, self._last_speech_ms)]
        return []
