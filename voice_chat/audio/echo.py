"""Is the microphone hearing the character's own voice? (echo-aware barge-in)

The server knows exactly what it sent. A client without echo cancellation (speakers, a
third-party app) sends that audio back, delayed by the network and the room and coloured by
reverberation. :class:`EchoReference` keeps the reply audio by *playback time* and the last
second of microphone audio by arrival time, and :meth:`EchoReference.explains` compares the
two: magnitude spectrograms (16 ms hops, 200-4000 Hz, log-compressed) of the microphone's
recent audio against the reference at every lag from 0 to ``max_lag_ms``. Echo correlates
strongly at one lag and is quieter than the reference; a person talking over it does not
correlate and is louder than the echo at that lag.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

RATE = 16000
HOP = 256  # 16 ms
WIN = 512
_BANDS = slice(7, 129)  # 200-4000 Hz of a 512-point FFT at 16 kHz
SURE_ECHO = 0.85  # this alike, it is the reply whatever its level
CANCELLED_DB = 15.0  # after the canceller, echo is at least this far under its learned level


@dataclass(frozen=True)
class EchoVerdict:
    correlation: float  # best spectro-temporal correlation over the lags
    lag_ms: float
    gain_db: float  # the last ~100 ms of microphone relative to the reference at that lag
    echo: bool


def _spectrogram(x: np.ndarray) -> np.ndarray:
    if len(x) < WIN:
        return np.zeros((0, _BANDS.stop - _BANDS.start), np.float32)
    frames = np.lib.stride_tricks.sliding_window_view(x, WIN)[::HOP] * np.hanning(WIN)
    return np.abs(np.fft.rfft(frames, axis=1))[:, _BANDS].astype(np.float32)


class EchoReference:
    """Reply audio (16 kHz) by playback time, microphone audio by arrival time."""

    def __init__(
        self,
        *,
        max_lag_ms: int = 800,
        window_ms: int = 320,
        recent_ms: int = 96,
        min_correlation: float = 0.6,
        double_talk_db: float = 8.0,
    ) -> None:
        self.max_lag_ms, self.window_ms, self.recent_ms = max_lag_ms, window_ms, recent_ms
        self.min_correlation, self.double_talk_db = min_correlation, double_talk_db
        self.echo_gain_db = 0.0  # the echo path's loss, learned while only echo is heard
        self._learned = 0
        self._ref = np.zeros(0, np.float32)
        self._ref_t0 = 0.0  # monotonic time at which reference sample 0 plays
        self._mic = np.zeros(0, np.float32)
        self._mic_t1 = 0.0  # monotonic time at which the last microphone sample was spoken
        self._mic_count = 0
        self._mic_offset = float("inf")

    def start_reply(self, plays_at: float) -> None:
        """A new reply starts playing at ``plays_at`` (monotonic seconds)."""
        self._ref, self._ref_t0 = np.zeros(0, np.float32), plays_at

    def add_reply(self, audio16k: np.ndarray) -> None:
        """The next reply audio, contiguous with what came before (16 kHz)."""
        joined = np.concatenate([self._ref, audio16k.astype(np.float32)])
        dropped = max(0, len(joined) - RATE * 20)  # keep 20 s; sample 0's time moves on
        self._ref, self._ref_t0 = joined[dropped:], self._ref_t0 + dropped / RATE

    def add_mic(self, audio16k: np.ndarray, now: float | None = None) -> None:
        """Microphone audio as it arrives (:meth:`clock`, then :meth:`keep_mic`)."""
        self.clock(len(audio16k), now)
        self.keep_mic(audio16k)

    def clock(self, samples: int, now: float | None = None) -> float:
        """``samples`` more microphone samples arrived: the time the last one was spoken.

        The clock is the stream position anchored at the least-delayed frame, so a burst of
        late frames (network jitter) keeps its real time."""
        self._mic_count += samples
        now = time.monotonic() if now is None else now
        offset = now - self._mic_count / RATE
        if offset < self._mic_offset or offset > self._mic_offset + 1.0:  # earlier, or a gap
            self._mic_offset = offset
        self._mic_t1 = self._mic_offset + self._mic_count / RATE
        return self._mic_t1

    def keep_mic(self, audio16k: np.ndarray) -> None:
        """The microphone audio the checks compare (the last second of it)."""
        self._mic = np.concatenate([self._mic, audio16k.astype(np.float32)])[-RATE:]

    def playing(self, t0: float, samples: int) -> np.ndarray:
        """The reply samples that play from ``t0`` (monotonic seconds) on; zeros where none."""
        i0 = round((t0 - self._ref_t0) * RATE)
        out = np.zeros(samples, np.float32)
        lo, hi = max(0, i0), min(len(self._ref), i0 + samples)
        if hi > lo:
            out[lo - i0 : hi - i0] = self._ref[lo:hi]
        return out

    @property
    def learned(self) -> bool:
        """This client's microphone is known to pick up the reply."""
        return self._learned > 2

    @property
    def active(self) -> bool:
        return len(self._ref) > 0

    def explains(
        self,
        now: float | None = None,
        *,
        cancelled: bool = False,
        source: np.ndarray | None = None,
    ) -> EchoVerdict:
        """Whether the last ``window_ms`` of microphone audio is the reply coming back.

        ``cancelled``: the microphone went through the echo canceller. What is left of the
        echo is then far below the echo level learned before (the canceller takes 15-30 dB
        off); a person talking is not. ``source``: judge this audio instead of the kept
        microphone (it ends at the same moment); nothing is learned from it.
        """
        kept = self._mic if source is None else source
        n = min(RATE * self.window_ms // 1000, len(kept) // HOP * HOP)
        lag_n = RATE * self.max_lag_ms // 1000
        mic = kept[-n:] if n else kept[:0]
        if n < RATE * self.recent_ms // 1000 + WIN or not self.active:
            return EchoVerdict(0.0, 0.0, 0.0, False)
        end = self._mic_t1 if now is None else now
        # reference samples that were playing from (mic start - max lag) to mic end
        i1 = int((end - self._ref_t0) * RATE)
        i0 = i1 - n - lag_n
        ref = np.zeros(n + lag_n, np.float32)
        lo, hi = max(0, i0), min(len(self._ref), i1)
        if hi > lo:
            ref[lo - i0 : hi - i0] = self._ref[lo:hi]
        mic_s, ref_s = _spectrogram(mic), _spectrogram(ref)
        if not len(mic_s) or not np.any(ref_s):
            return EchoVerdict(0.0, 0.0, 0.0, False)
        m = np.log1p(mic_s * 100)
        r = np.log1p(ref_s * 100)
        frames = len(m)
        mz = (m - m.mean()) / (m.std() + 1e-6)
        # every stretch of the reference as long as the microphone window, one per lag
        wins = np.lib.stride_tricks.sliding_window_view(r, frames, axis=0)  # (lags, bins, frames)
        mu = wins.mean(axis=(1, 2), keepdims=True)
        sd = wins.std(axis=(1, 2), keepdims=True) + 1e-6
        corr = np.einsum("lbf,fb->l", (wins - mu) / sd, mz) / mz.size
        best_k = int(np.argmax(corr))
        best = float(corr[best_k])
        lag_frames = len(r) - frames - best_k
        # The room keeps the reply ringing for a while (reverberation): compare the recent
        # microphone with the loudest stretch of the reference over the window.
        k = RATE * self.recent_ms // 1000
        tail = RATE // 5  # 200 ms of reverberation before the matched stretch
        near = ref[max(0, best_k * HOP - tail) : best_k * HOP + n]
        ref_level = max(
            float(np.mean(near[i : i + k] ** 2)) for i in range(0, len(near) - k + 1, k // 2)
        )
        gain = 10 * np.log10((np.mean(mic[-k:] ** 2) + 1e-10) / (ref_level + 1e-10))
        loud = np.mean(mic[-k:] ** 2) > 1e-5 and ref_level > 1e-4  # over -50 / -40 dBFS
        if cancelled:
            echo = gain <= self.echo_gain_db - CANCELLED_DB  # while it adapts: see BargeIn
            return EchoVerdict(best, lag_frames * HOP * 1000 / RATE, float(gain), bool(echo))
        # clearly echo alone: how much quieter than the reply is it?
        if best >= 0.8 and loud and source is None:
            g = float(np.clip(gain, -40.0, 0.0))  # an upper envelope that rises slowly, so
            if self._learned == 0:  # a person talking over the echo is not learned as echo
                self.echo_gain_db = g
            elif g > self.echo_gain_db:
                self.echo_gain_db += min(2.0, 0.5 * (g - self.echo_gain_db))
            else:
                self.echo_gain_db += 0.05 * (g - self.echo_gain_db)
            self._learned += 1
        # Echo: it correlates, and is no louder than the echo path lets the reply come back;
        # or, where this client is known to echo, it is quieter than that echo anyway.
        loud_as_user = gain > self.echo_gain_db + self.double_talk_db
        # Quiet and somewhat like the reply: echo (before the echo level is learned, a
        # speaker is assumed to come back at least 6 dB down).
        quiet = gain <= (self.echo_gain_db if self.learned else -6.0) + self.double_talk_db / 2
        echo = (best >= self.min_correlation and not loud_as_user) or (best >= 0.5 and quiet)
        # Or it is the reply itself, however loud: at a reply's start the level is not known
        # yet (the window still holds the silence before it). Our echo alone measured
        # 0.86-0.94 here, a person talking over it at most 0.77.
        echo = echo or best >= SURE_ECHO
        return EchoVerdict(best, lag_frames * HOP * 1000 / RATE, float(gain), bool(echo))
