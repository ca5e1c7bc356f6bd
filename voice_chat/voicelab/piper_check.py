"""Validate an uploaded Piper voice: ``.onnx`` + ``.onnx.json`` in the public catalogue format.

Checks, in order (each failure is a ``VoiceError``):
1. sizes; the JSON parses and has ``audio.sample_rate`` (8000-48000), a non-empty
   ``phoneme_id_map`` of integer ids and ``num_speakers``; the chosen ``speaker`` (index or a
   name from ``speaker_id_map``) exists;
2. the ONNX loads in onnxruntime and takes ``input``, ``input_lengths``, ``scales`` (and
   ``sid`` exactly when the config says several speakers);
3. a probe run feeding *every* id of ``phoneme_id_map`` at once: ids beyond the model's
   phoneme table fail here (config and model do not belong together), and the output must be
   finite audio.
A test synthesis of real text follows in the store (``voicelab.synth_check``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from voice_chat.engines.voices import VoiceError
from voice_chat.voicelab import limits


def parse_config(data: bytes) -> dict[str, Any]:
    if len(data) > limits.MAX_PIPER_JSON_BYTES:
        raise VoiceError("too_large", f"the .onnx.json is over {limits.MAX_PIPER_JSON_BYTES} bytes")
    try:
        config = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise VoiceError("invalid_model", f"the .onnx.json is not valid JSON: {exc}") from exc
    if not isinstance(config, dict):
        raise VoiceError("invalid_model", "the .onnx.json must hold a JSON object")
    rate = (
        (config.get("audio") or {}).get("sample_rate")
        if isinstance(config.get("audio"), dict)
        else None
    )
    if not isinstance(rate, int) or isinstance(rate, bool):
        raise VoiceError("invalid_model", "the .onnx.json has no integer audio.sample_rate")
    if not limits.PIPER_MIN_RATE <= rate <= limits.PIPER_MAX_RATE:
        raise VoiceError(
            "invalid_model",
            f"sample rate {rate} Hz is outside {limits.PIPER_MIN_RATE}-{limits.PIPER_MAX_RATE} Hz",
        )
    id_map = config.get("phoneme_id_map")
    if not isinstance(id_map, dict) or not id_map:
        raise VoiceError("invalid_model", "the .onnx.json has no phoneme_id_map")
    for key, ids in id_map.items():
        if (
            not isinstance(ids, list)
            or not ids
            or not all(
                isinstance(i, int) and not isinstance(i, bool) and 0 <= i < 100000 for i in ids
            )
        ):
            raise VoiceError("invalid_model", f"phoneme_id_map[{key!r}] must be a list of ids")
    speakers = config.get("num_speakers")
    if not isinstance(speakers, int) or not 1 <= speakers <= limits.PIPER_MAX_SPEAKERS:
        raise VoiceError("invalid_model", "the .onnx.json has no valid num_speakers")
    symbols = config.get("num_symbols")
    top = max(i for seq in id_map.values() for i in seq)
    if not isinstance(symbols, int) or top >= symbols:
        raise VoiceError(
            "invalid_model", f"num_symbols missing or not above the largest phoneme id {top}"
        )
    espeak = config.get("espeak")
    if config.get("phoneme_type", "espeak") == "espeak" and not (
        isinstance(espeak, dict) and isinstance(espeak.get("voice"), str) and espeak["voice"]
    ):
        raise VoiceError("invalid_model", 'the .onnx.json has no espeak.voice (e.g. "en-us")')
    return config


def choose_speaker(config: dict[str, Any], speaker: int | str | None) -> int | None:
    """The speaker index to use (None for single-speaker models)."""
    count = int(config["num_speakers"])
    id_map = config.get("speaker_id_map") or {}
    if count == 1:
        if speaker not in (None, 0, "0"):
            raise VoiceError("invalid_params", "this model has one speaker; do not pass 'speaker'")
        return None
    if speaker is None:
        return 0
    if isinstance(speaker, str) and not speaker.isdigit():
        if speaker not in id_map:
            names = ", ".join(list(id_map)[:10])
            raise VoiceError(
                "invalid_params", f"no speaker {speaker!r} in speaker_id_map ({names}...)"
            )
        speaker = id_map[speaker]
    index = int(speaker)
    if not 0 <= index < count:
        raise VoiceError("invalid_params", f"speaker {index} out of range: the model has {count}")
    return index


def probe_model(onnx: Path, config: dict[str, Any], speaker: int | None) -> None:
    from voice_chat.audio.onnx import cpu_session

    try:
        session = cpu_session(onnx, threads=1, log_level=4)
    except Exception as exc:
        raise VoiceError(
            "invalid_model", f"the .onnx file is not a loadable ONNX model: {exc}"
        ) from exc
    names = {i.name for i in session.get_inputs()}
    missing = {"input", "input_lengths", "scales"} - names
    if missing:
        raise VoiceError(
            "invalid_model", f"not a Piper VITS model: inputs {sorted(missing)} missing"
        )
    multi = int(config["num_speakers"]) > 1
    if multi != ("sid" in names):
        raise VoiceError(
            "invalid_model",
            f"config says {config['num_speakers']} speaker(s) but the model "
            + ("has" if "sid" in names else "has no")
            + " speaker input 'sid'",
        )
    ids = sorted({i for seq in config["phoneme_id_map"].values() for i in seq})
    feed: dict[str, np.ndarray] = {
        "input": np.array([ids], dtype=np.int64),
        "input_lengths": np.array([len(ids)], dtype=np.int64),
        "scales": np.array([0.667, 1.0, 0.8], dtype=np.float32),
    }
    if multi:
        feed["sid"] = np.array([speaker or 0], dtype=np.int64)
    try:
        audio = np.asarray(session.run(None, feed)[0], dtype=np.float32)
    except Exception as exc:
        raise VoiceError(
            "invalid_model",
            f"the model rejects the config's phoneme ids (max id {ids[-1]}): config and model "
            f"do not belong together ({str(exc)[:200]})",
        ) from exc
    if audio.size == 0 or not np.all(np.isfinite(audio)):
        raise VoiceError("invalid_model", "the model's output is empty or not finite")


def stage_piper(
    dest: Path, files: dict[str, bytes], speaker: int | str | None
) -> tuple[dict[str, Any], int | None]:
    """Write ``model.onnx`` + ``model.onnx.json`` into ``dest`` after validating them."""
    onnx_data = next((v for k, v in files.items() if k.lower().endswith(".onnx")), None)
    json_data = next((v for k, v in files.items() if k.lower().endswith(".json")), None)
    if onnx_data is None or json_data is None:
        raise VoiceError("missing_file", "a Piper voice needs the .onnx model and its .onnx.json")
    if len(onnx_data) > limits.MAX_ONNX_BYTES:
        raise VoiceError("too_large", f"the .onnx is over {limits.MAX_ONNX_BYTES // 2**20} MB")
    config = parse_config(json_data)
    index = choose_speaker(config, speaker)
    (dest / "model.onnx").write_bytes(onnx_data)
    (dest / "model.onnx.json").write_bytes(json_data)
    probe_model(dest / "model.onnx", config, index)
    return config, index


class FreshPiper:
    """A Piper voice loaded outside the shared cache: the test synthesis of an upload runs from
    the staging folder, which is renamed afterwards, so it must not stay cached."""

    def __init__(
        self, onnx: Path, cfg: Path, speaker: int | None, speed: float, variation: float | None
    ) -> None:
        from piper import SynthesisConfig

        from voice_chat.engines.base import EngineError
        from voice_chat.engines.tts_piper import _load_piper

        try:
            self._voice = _load_piper.__wrapped__(onnx, cfg, 1, ())
        except EngineError as exc:
            raise VoiceError("invalid_model", str(exc)) from exc
        except Exception as exc:
            raise VoiceError("invalid_model", f"Piper cannot use this config: {exc!r}") from exc
        self.sample_rate: int = self._voice.config.sample_rate  # type: ignore[attr-defined]
        self._syn = SynthesisConfig(
            speaker_id=speaker, length_scale=1.0 / speed, noise_scale=variation
        )

    def synthesize(self, text: str) -> Iterator[np.ndarray]:
        for chunk in self._voice.synthesize(text, syn_config=self._syn):  # type: ignore[attr-defined]
            yield chunk.audio_float_array.astype(np.float32, copy=False)
