"""Build a synthesizer from a voice definition: the one place that maps engine names to files."""

from __future__ import annotations

from collections.abc import Callable

from voice_chat.engines.base import EngineError, Synthesizer
from voice_chat.voices import VoiceSpec

Resolver = Callable[[str], VoiceSpec]


def build_synthesizer(spec: VoiceSpec, resolve: Resolver, threads: int = 1) -> Synthesizer:
    extra = spec.model_extra or {}
    if spec.engine == "piper":
        from voice_chat.engines.tts_piper import PiperSynth

        return PiperSynth(
            spec.model or "embedded:joe-medium",
            config=extra.get("config"),
            speaker=spec.speaker,
            speed=spec.speed,
            variation=spec.variation,
            noise_w=extra.get("noise_w"),
            threads=threads,
        )
    raise EngineError(f"voice {spec.id!r}: unknown TTS engine {spec.engine!r}")
