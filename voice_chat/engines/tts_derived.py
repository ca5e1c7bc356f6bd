"""Derived voices: another voice re-voiced with the WORLD vocoder (``voice_chat.audio.dsp``).

``engine: "derived"`` with ``base`` (a voice id), ``pitch_semitones``, ``formant_shift``
(timbre), ``expressiveness`` (intonation range) and ``speed`` (passed to the base engine,
which times speech better than any stretch afterwards). Each chunk the base yields (one
sentence or clause) is analysed and resynthesised on its own, so streaming is kept; the DSP
costs about 0.1-0.2 x real time at 22-24 kHz (see benchmarks/voices.py).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from voice_chat.audio import dsp
from voice_chat.engines.base import Synthesizer

SHORT_CHUNK_S = 1.5


class DerivedSynth:
    def __init__(
        self,
        base: Synthesizer,
        *,
        pitch_semitones: float = 0.0,
        formant_shift: float = 1.0,
        expressiveness: float = 1.0,
        frame_period: float = dsp.FRAME_PERIOD_MS,
    ) -> None:
        self.base = base
        self.sample_rate: int = base.sample_rate
        self.pitch_semitones = pitch_semitones
        self.formant_shift = formant_shift
        self.expressiveness = expressiveness
        self.frame_period = frame_period

    def synthesize(self, text: str) -> Iterator[np.ndarray]:
        for chunk in self.base.synthesize(text):
            # A short chunk is usually a reply's first words, where every millisecond is
            # heard as latency: a 10 ms frame period halves the WORLD cost there.
            short = len(chunk) < SHORT_CHUNK_S * self.sample_rate
            yield dsp.world_transform(
                chunk,
                self.sample_rate,
                pitch_semitones=self.pitch_semitones,
                formant_shift=self.formant_shift,
                expressiveness=self.expressiveness,
                frame_period=max(self.frame_period, 10.0) if short else self.frame_period,
            )
