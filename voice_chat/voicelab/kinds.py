"""One builder per registration kind. Each takes a :class:`Staging` (the staging folder, the
voice's id and name, the uploads, the parameters), writes its files into the folder, runs the
test synthesis and returns the voice definition (paths relative to the voice folder).

``piper``, ``derived``, ``blend`` and ``kokoro`` are here; ``clip`` and ``coqui`` (which need a
reference clip or Coqui) are in :mod:`voice_chat.voicelab.kinds_clone`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from voice_chat.engines.base import EngineError, Synthesizer
from voice_chat.engines.voices import KOKORO_VOICES, VoiceError, VoiceSpec
from voice_chat.voicelab import limits
from voice_chat.voicelab.synth_check import test_synthesis

Resolver = Callable[[str], VoiceSpec]
KINDS = ("piper", "derived", "blend", "kokoro", "clip", "coqui")
_DSP = {"pitch_semitones", "formant_shift", "expressiveness"}
ALLOWED: dict[str, set[str]] = {
    "piper": {"speaker", "speed", "variation", "noise_w", "description", *_DSP},
    "derived": {"base", "speed", "description", *_DSP},
    "blend": {"blend", "voice", "speed", "language", "description", *_DSP},
    "kokoro": {"voice", "blend", "speed", "language", "description", *_DSP},
    "clip": {"description", "language"},
    "coqui": {"model", "speaker", "language", "speed", "description", *_DSP},
}


@dataclass(frozen=True)
class Staging:
    """One registration in progress."""

    dest: Path  # the staging folder; renamed into place once the voice is stored
    head: dict[str, Any]  # id, name, description
    files: dict[str, bytes]  # uploaded file name -> bytes
    params: dict[str, Any]
    resolve: Resolver  # voice id -> definition (base voices)
    clone_model: str | None = None  # a configured Coqui cloning model (clip voices)

    def file(self, *suffixes: str) -> bytes | None:
        """The first upload whose name ends with one of ``suffixes`` (any case)."""
        return next((v for k, v in self.files.items() if k.lower().endswith(suffixes)), None)

    def fields(self, engine: str, **extra: Any) -> dict[str, Any]:
        """The definition so far: id, name, description, parameters, ``engine``, ``extra``."""
        return {**self.head, **self.params, "engine": engine, **extra}


Stager = Callable[[Staging], dict[str, Any]]


def tested(fields: dict[str, Any], synth: Synthesizer, plausible: bool = False) -> dict[str, Any]:
    """``fields`` with the report of a test synthesis (``plausible``: check rate and level)."""
    fields["test"] = test_synthesis(synth, plausibility=plausible)
    return fields


def check_params(kind: str, params: dict[str, Any]) -> None:
    if kind not in KINDS:
        raise VoiceError("unknown_kind", f"unknown kind {kind!r}; use one of {', '.join(KINDS)}")
    if not isinstance(params, dict):
        raise VoiceError("invalid_params", "params must be a JSON object")
    unknown = sorted(set(params) - ALLOWED[kind])
    if unknown:
        raise VoiceError("invalid_params", f"unknown parameter(s) for {kind}: {', '.join(unknown)}")


def make_spec(fields: dict[str, Any]) -> VoiceSpec:
    """Validate a definition; out-of-range values become ``invalid_params``."""
    try:
        return VoiceSpec.model_validate(fields)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'voice'}: {e['msg']}" for e in exc.errors()
        )
        raise VoiceError("invalid_params", problems) from exc


def _with_dsp(spec: VoiceSpec, synth: Synthesizer) -> Synthesizer:
    if spec.pitch_semitones == 0 and spec.formant_shift == 1 and spec.expressiveness == 1:
        return synth
    from voice_chat.engines.tts_derived import DerivedSynth

    return DerivedSynth(
        synth,
        pitch_semitones=spec.pitch_semitones,
        formant_shift=spec.formant_shift,
        expressiveness=spec.expressiveness,
    )


def _built(spec: VoiceSpec, resolve: Resolver) -> Synthesizer:
    from voice_chat.engines.tts import build_synthesizer

    try:
        return build_synthesizer(spec, resolve)
    except EngineError as exc:
        code = "unknown_voice" if "base voice" in str(exc) else "synthesis_failed"
        raise VoiceError(code, str(exc)) from exc


def stage_piper(job: Staging) -> dict[str, Any]:
    from voice_chat.voicelab.piper_check import FreshPiper
    from voice_chat.voicelab.piper_check import stage_piper as write_piper

    params = job.params
    make_spec(job.fields("piper", **{k: v for k, v in params.items() if k != "speaker"}))
    _, speaker = write_piper(job.dest, job.files, params.get("speaker"))
    fields = job.fields("piper", model="model.onnx", speaker=speaker)
    spec = make_spec(fields)
    onnx = job.dest / "model.onnx"
    synth = FreshPiper(onnx, job.dest / "model.onnx.json", speaker, spec.speed, spec.variation)
    tested(fields, synth, plausible=True)  # plausibility checks catch a wrong sample rate
    if spec.pitch_semitones or spec.formant_shift != 1 or spec.expressiveness != 1:
        test_synthesis(_with_dsp(spec, synth), plausibility=False)
    return fields


def stage_derived(job: Staging) -> dict[str, Any]:
    if not job.params.get("base"):
        raise VoiceError(
            "invalid_params", "a derived voice needs 'base': the id of the voice to start from"
        )
    fields = job.fields("derived")
    spec = make_spec(fields)
    job.resolve(spec.base or "")  # unknown_voice when missing
    return tested(fields, _built(spec, job.resolve))


def stage_kokoro(job: Staging) -> dict[str, Any]:
    params = job.params
    if not params.get("blend") and not params.get("voice"):
        raise VoiceError(
            "invalid_params", "give 'blend' (e.g. {\"jf_alpha\": 0.7, \"jm_kumo\": 0.3}) or 'voice'"
        )
    names = list((params.get("blend") or {}) if isinstance(params.get("blend"), dict) else [])
    names += [params["voice"]] if params.get("voice") else []
    unknown = [n for n in names if n not in KOKORO_VOICES]
    if unknown:
        raise VoiceError(
            "invalid_params",
            f"unknown Kokoro voice {unknown[0]!r}; known: {', '.join(KOKORO_VOICES)}",
        )
    if len(names) > limits.MAX_BLEND_VOICES:
        raise VoiceError(
            "invalid_params", f"a blend mixes at most {limits.MAX_BLEND_VOICES} voices"
        )
    fields = job.fields("kokoro")
    return tested(fields, _built(make_spec(fields), job.resolve))


STAGERS: dict[str, Stager] = {
    "piper": stage_piper,
    "derived": stage_derived,
    "blend": stage_kokoro,
    "kokoro": stage_kokoro,
}
