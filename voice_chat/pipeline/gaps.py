"""A client that stops sending audio in the middle of a turn is heard as silence.

Turn detection runs on stream time: it only moves on when audio arrives. Browsers send
audio all the time, but push-to-talk style clients and SDK scripts often send the speech
and stop. Without this, such a turn would wait forever for the silence that ends it.
:class:`StreamGaps` tracks when the received audio would have finished playing; once the
stream is more than ``grace_s`` behind the wall clock, the gap is filled with silence. The
grace is long enough that a live stream held up by the network is not cut into turns.
A client that sends faster than real time is ahead of the clock and never gets filler.
"""

from __future__ import annotations

import time

from voice_chat.audio.pcm import MODEL_RATE

TICK_S = 0.1  # how often the pipeline checks for a gap


class StreamGaps:
    def __init__(self, grace_s: float = 0.5, rate: int = MODEL_RATE) -> None:
        self.grace_s = grace_s
        self.rate = rate
        self._due: float | None = None  # monotonic time the received audio ends playing

    def received(self, samples: int) -> None:
        now = time.monotonic()
        start = now if self._due is None else max(self._due, now)
        self._due = start + samples / self.rate

    def missing(self) -> int:
        """Samples of silence to add now (0 while the stream keeps up)."""
        if self._due is None:
            return 0
        behind = time.monotonic() - self._due
        if behind < self.grace_s:
            return 0
        samples = int(behind * self.rate)
        self._due += samples / self.rate
        return samples
