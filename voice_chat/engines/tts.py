"""Build a synthesizer from a voice definition: the one place that maps engine names to files.

Engines: ``piper`` (VITS ONNX), ``kokoro`` (Kokoro-82M, one style or a blend), ``coqui``
(optional extra, any local Coqui checkpoint) and ``derived`` (another voice re-voiced by the
WORLD vocoder). A chain of derived voices is flattened into one base voice plus one DSP pass
(pitch shifts add up, formant/expressiveness/speed factors multiply). Any voice whose
``pitch_semitones``/``formant_shift``/``expressiveness`` differ from neutral gets the DSP pass.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from voice_chat.engines.base import EngineError, Synthesizer
from voice_chat.engines.voices import VoiceError, VoiceSpec

Resolver = Callable[[str], VoiceSpec]
MAX_DERIVATION_DEPTH = 4


def _clamp(value: float, low: float, high: float) -> float:
    return min(high, max(low, value))


def flatten(spec: VoiceSpec, resolve: Resolver) -> tuple[VoiceSpec, float, float, float]:
    """Follow ``base`` links to the engine voice. Returns (root spec with the combined speed,
    total pitch semitones, formant ratio, expressiveness)."""
    pitch, formant, expressive, speed = 0.0, 1.0, 1.0, 1.0
    seen: list[str] = []
    current = spec
    while True:
        pitch += current.pitch_semitones
        formant *= current.formant_shift
        expressive *= current.expressiveness
        speed *= current.speed
        if current.engine != "derived":
            break
        seen.append(current.id)
        if not current.base:
            raise EngineError(f"voice {current.id!r}: a derived voice needs 'base'")
        if current.base in seen or len(seen) > MAX_DERIVATION_DEPTH:
            raise EngineError(f"voice {spec.id!r}: base chain too deep or circular: {seen}")
        try:
            current = resolve(current.base)
        except VoiceError as exc:
            raise EngineError(f"voice {current.id!r}: base voice: {exc}") from exc
    root = current.model_copy(update={"speed": _clamp(speed, 0.5, 2.0)})
    return root, _clamp(pitch, -12.0, 12.0), _clamp(formant, 0.7, 1.4), _clamp(expressive, 0.0, 2.0)


def _piper_speaker(spec: VoiceSpec, config: str | None) -> int | None:
    if not isinstance(spec.speaker, str):
        return spec.speaker
    from voice_chat.engines.tts_piper import resolve_piper

    _, cfg = resolve_piper(spec.model or "embedded:joe-medium", config)
    id_map = json.loads(cfg.read_text(encoding="utf-8")).get("speaker_id_map") or {}
    if spec.speaker not in id_map:
        raise EngineError(f"voice {spec.id!r}: the model has no speaker {spec.speaker!r}")
    return int(id_map[spec.speaker])


def _build_engine(spec: VoiceSpec, threads: int) -> Synthesizer:
    extra = spec.model_extra or {}
    if spec.engine == "piper":
        from voice_chat.engines.tts_piper import PiperSynth

        return PiperSynth(
            spec.model or "embedded:joe-medium",
            config=extra.get("config"),
            speaker=_piper_speaker(spec, extra.get("config")),
            speed=spec.speed,
            variation=spec.variation,
            noise_w=extra.get("noise_w"),
            threads=threads,
        )
    if spec.engine == "kokoro":
        from voice_chat.engines.tts_kokoro import KokoroSynth

        return KokoroSynth(
            spec.voice, blend=spec.blend, speed=spec.speed, language=spec.language, threads=threads
        )
    if spec.engine == "coqui":
        from voice_chat.engines.tts_coqui import CoquiSynth

        return CoquiSynth(
            spec.model,
            model_path=extra.get("model_path"),
            config_path=extra.get("config_path"),
            speaker=None if spec.speaker is None else str(spec.speaker),
            language=spec.language,
            speaker_wav=extra.get("speaker_wav"),
            speed=spec.speed,
            threads=threads,
        )
    raise EngineError(f"voice {spec.id!r}: unknown TTS engine {spec.engine!r}")


def build_synthesizer(spec: VoiceSpec, resolve: Resolver, threads: int = 1) -> Synthesizer:
    root, pitch, formant, expressive = flatten(spec, resolve)
    synth = _build_engine(root, threads)
    if pitch == 0.0 and formant == 1.0 and expressive == 1.0:
        return synth
    from voice_chat.engines.tts_derived import DerivedSynth

    return DerivedSynth(
        synth, pitch_semitones=pitch, formant_shift=formant, expressiveness=expressive
    )
