"""Registration kinds that need Coqui or a reference clip: ``coqui`` and ``clip``."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from voice_chat.audio.pcm import wav_bytes
from voice_chat.engines.base import EngineError
from voice_chat.engines.voices import VoiceError
from voice_chat.voicelab import limits
from voice_chat.voicelab.kinds import Stager, Staging, _with_dsp, make_spec, tested

# Cloning models looked for in the local Coqui cache, best first.
CLONE_MODELS = (
    "tts_models/multilingual/multi-dataset/xtts_v2",
    "tts_models/multilingual/multi-dataset/your_tts",
)


def coqui_installed() -> bool:
    return importlib.util.find_spec("TTS") is not None


def find_clone_model(configured: str | None = None) -> dict[str, str] | None:
    """``{"model": name}`` or ``{"model_path": dir}`` of a usable cloning checkpoint, or None."""
    if not coqui_installed():
        return None
    from voice_chat.engines.tts_coqui import cached_model_dir

    if configured:
        path = Path(configured).expanduser()
        if path.exists():
            return {"model_path": str(path.resolve())}
        try:
            return {"model": configured} if cached_model_dir(configured).is_dir() else None
        except EngineError:
            return None
    for name in CLONE_MODELS:
        if cached_model_dir(name).is_dir():
            return {"model": name}
    return None


def _coqui_synth(dest: Path, fields: dict[str, Any]) -> Any:
    from voice_chat.engines.tts_coqui import CoquiSynth

    def local(key: str) -> str | None:
        value = fields.get(key)
        return (
            None if value is None else str(dest / value if not Path(value).is_absolute() else value)
        )

    try:
        return CoquiSynth(
            fields.get("model"),
            model_path=local("model_path"),
            config_path=local("config_path"),
            speaker=None if fields.get("speaker") is None else str(fields["speaker"]),
            language=fields.get("language"),
            speaker_wav=local("speaker_wav"),
            speed=float(fields.get("speed", 1.0)),
            cached=False,
        )
    except EngineError as exc:
        raise VoiceError("invalid_model", str(exc)) from exc


def stage_coqui(job: Staging) -> dict[str, Any]:
    if not coqui_installed():
        raise VoiceError(
            "engine_unavailable", "the Coqui engine is not installed (scripts/install-coqui.sh)"
        )
    fields = job.fields("coqui")
    checkpoint, config = job.file(".pth", ".pt", ".tar"), job.file(".json")
    clip = job.file(".wav")
    if checkpoint is not None:
        if config is None:
            raise VoiceError("missing_file", "a Coqui checkpoint needs its config.json")
        if (
            len(checkpoint) > limits.MAX_COQUI_CHECKPOINT_BYTES
            or len(config) > limits.MAX_COQUI_CONFIG_BYTES
        ):
            raise VoiceError("too_large", "the Coqui checkpoint or config is over the size limit")
        (job.dest / "model.pth").write_bytes(checkpoint)
        (job.dest / "config.json").write_bytes(config)
        fields.update(model_path="model.pth", config_path="config.json")
    elif not job.params.get("model"):
        raise VoiceError(
            "missing_file",
            "give a checkpoint (model.pth + config.json) or 'model', a cached model name",
        )
    if clip is not None:
        from voice_chat.voicelab.clip import load_clip

        audio, rate = load_clip(clip)
        (job.dest / "reference.wav").write_bytes(wav_bytes(audio, rate))
        fields["speaker_wav"] = "reference.wav"
    spec = make_spec(fields)
    return tested(fields, _with_dsp(spec, _coqui_synth(job.dest, fields)))


def stage_clip(job: Staging) -> dict[str, Any]:
    from voice_chat.voicelab.clip import analyse, load_clip

    data = job.file(".wav")
    if data is None:
        raise VoiceError("missing_file", "a clip voice needs a .wav file")
    audio, rate = load_clip(data)
    info = analyse(audio, rate)
    (job.dest / "reference.wav").write_bytes(wav_bytes(audio, rate))
    cloner = find_clone_model(job.clone_model)
    if cloner is not None:
        fields = job.fields("coqui", **cloner, speaker_wav="reference.wav")
        if "xtts" in str(cloner).lower() or "your_tts" in str(cloner).lower():
            fields.setdefault("language", "en")
        make_spec(fields)
        tested(fields, _coqui_synth(job.dest, fields))
        fields["analysis"] = {"clip": info.summary(), "cloned_with": cloner}
        return fields
    from voice_chat.voicelab.approximate import approximate

    head = job.head
    fields = approximate(head["id"], head["name"], audio, rate, info)
    if head.get("description"):
        fields["description"] = head["description"]
    fields["reference_wav"] = "reference.wav"  # kept for a cloning engine installed later
    make_spec(fields)
    return fields


STAGERS: dict[str, Stager] = {"coqui": stage_coqui, "clip": stage_clip}
