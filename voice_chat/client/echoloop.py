"""A client without echo cancellation, simulated: its speaker's sound goes back into its mic.

:class:`EchoLoop` plays the reply audio a :class:`~voice_chat.client.rtclient.RealtimeClient`
receives on a real-time clock (as a speaker would, from the first frame of each reply), and
streams back, every 20 ms, what a microphone in the room would pick up: that playback
delayed by ``delay_ms``, attenuated by ``gain_db``, through a room impulse response, plus any
user speech mixed in with :meth:`say`. For tests and benchmarks of echo-aware barge-in.
"""

from __future__ import annotations

import asyncio
import time

import numpy as np

from voice_chat.audio.pcm import MODEL_RATE, float_to_pcm16, pcm16_to_float, resample
from voice_chat.client.rtclient import RealtimeClient

FRAME = MODEL_RATE // 50  # 20 ms


class EchoLoop:
    def __init__(
        self,
        rt: RealtimeClient,
        *,
        delay_ms: float = 120.0,
        gain_db: float = -10.0,
        impulse: np.ndarray | None = None,
        noise_db: float = -60.0,
        seed: int = 0,
    ) -> None:
        self.rt, self.delay_ms, self.gain = rt, delay_ms, 10 ** (gain_db / 20)
        self.impulse = impulse if impulse is not None else np.ones(1, np.float32)
        self.noise = 10 ** (noise_db / 20)
        self._rng = np.random.default_rng(seed)
        self._speaker = np.zeros(0, np.float32)  # what the speaker played, 16 kHz
        self._played_to = len(rt.log)  # log index already turned into speaker audio
        self._t0 = time.monotonic()  # speaker and mic sample 0
        self._rate = 0
        self._user: list[tuple[int, np.ndarray]] = []  # (mic sample index, speech)
        self._mic_n = 0

    def say(self, speech: np.ndarray, after_s: float = 0.0) -> float:
        """Mix user speech (16 kHz) into the mic ``after_s`` from now; its start time."""
        at = time.monotonic() + after_s
        self._user.append((int((at - self._t0) * MODEL_RATE), speech.astype(np.float32)))
        return at

    def _collect(self) -> None:
        """Turn newly received reply audio into speaker output on the playback clock."""
        log = self.rt.log
        for r in log[self._played_to :]:
            if r.event and r.event.get("type") == "response.audio.started":
                self._rate = int(r.event.get("sample_rate") or MODEL_RATE)
                # a new reply: the speaker starts it when its first frame arrives
                now_idx = int((r.t - self._t0) * MODEL_RATE)
                self._speaker = np.concatenate(
                    [self._speaker, np.zeros(max(0, now_idx - len(self._speaker)), np.float32)]
                )
            elif r.audio is not None and self._rate:
                audio = resample(pcm16_to_float(r.audio), self._rate, MODEL_RATE)
                # a frame that comes after the speaker ran dry plays when it arrives
                gap = int((r.t - self._t0) * MODEL_RATE) - len(self._speaker)
                pad = np.zeros(max(0, gap), np.float32)
                self._speaker = np.concatenate([self._speaker, pad, audio])
        self._played_to = len(log)

    def _mic_frame(self, n0: int) -> np.ndarray:
        """Mic samples n0 .. n0+FRAME (mic clock = speaker clock)."""
        lag = int(self.delay_ms * MODEL_RATE / 1000)
        taps = len(self.impulse)
        lo = n0 - lag - taps + 1
        src = np.zeros(FRAME + taps - 1, np.float32)
        a, b = max(0, lo), min(len(self._speaker), lo + len(src))
        if b > a:
            src[a - lo : b - lo] = self._speaker[a:b]
        echo = np.convolve(src, self.impulse, mode="valid")[:FRAME] * self.gain
        out = echo + self._rng.standard_normal(FRAME).astype(np.float32) * self.noise
        for at, speech in self._user:
            s0, s1 = max(n0, at), min(n0 + FRAME, at + len(speech))
            if s1 > s0:
                out[s0 - n0 : s1 - n0] += speech[s0 - at : s1 - at]
        return np.clip(out, -1, 1)

    async def run(self, seconds: float) -> None:
        """Stream the mic for ``seconds`` at real-time pace."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self._collect()
            n0 = self._mic_n  # a microphone drops nothing: late frames go out in a burst
            await self.rt.send_audio(float_to_pcm16(self._mic_frame(n0)))
            self._mic_n = n0 + FRAME
            due = self._t0 + self._mic_n / MODEL_RATE
            await asyncio.sleep(max(0.0, due - time.monotonic()))
