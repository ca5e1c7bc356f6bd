"""Coqui TTS voices (optional extra ``coqui``; see ``scripts/install-coqui.sh``).

A voice names either a Coqui model (``model: "tts_models/en/vctk/vits"``) that is already in the
local Coqui cache (``$TTS_HOME`` or ``$XDG_DATA_HOME`` or ``~/.local/share``, then ``tts/``;
nothing is ever downloaded), or a checkpoint on disk (``model_path`` + ``config_path``, a folder
for XTTS). ``speaker`` picks a speaker of a multi-speaker model, ``language`` a language of a
multilingual one, and ``speaker_wav`` a reference clip for cloning models (XTTS v2, YourTTS).

Supported: end-to-end models (VITS, YourTTS, XTTS, ...). Two-stage models needing a separate
vocoder checkpoint are not wired. Models load once and are shared; inference is serialised per
model with a lock because the torch module is not re-entrant.
"""

from __future__ import annotations

import functools
import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from voice_chat.engines.base import EngineError

_CHECKPOINT_NAMES = ("model_file.pth", "model_file.pth.tar", "model.pth", "checkpoint.pth")


def coqui_cache_dir() -> Path:
    home = os.environ.get("TTS_HOME") or os.environ.get("XDG_DATA_HOME")
    base = Path(home).expanduser() if home else Path.home() / ".local" / "share"
    return base / "tts"


def cached_model_dir(model_name: str) -> Path:
    """Where Coqui keeps ``type/lang/dataset/model`` once downloaded (``type--lang--...``)."""
    parts = model_name.strip("/").split("/")
    if len(parts) != 4 or any(not p or p in (".", "..") for p in parts):
        raise EngineError(
            f"Coqui model names look like tts_models/en/vctk/vits, not {model_name!r}"
        )
    return coqui_cache_dir() / "--".join(parts)


def locate_model(
    model: str | None, model_path: str | None, config_path: str | None
) -> tuple[Path, Path]:
    """(checkpoint file or XTTS folder, config.json) for a cached model name or explicit paths."""
    if model_path:
        path = Path(model_path).expanduser()
        config = (
            Path(config_path).expanduser()
            if config_path
            else (path if path.is_dir() else path.parent) / "config.json"
        )
    elif model:
        folder = cached_model_dir(model)
        if not folder.is_dir():
            raise EngineError(
                f"Coqui model {model!r} is not in the local cache ({folder}); this server never "
                "downloads models: copy the checkpoint there or give model_path + config_path"
            )
        config = folder / "config.json"
        found = [folder / n for n in _CHECKPOINT_NAMES if (folder / n).is_file()]
        path = found[0] if found and "xtts" not in model.lower() else folder
    else:
        raise EngineError("a Coqui voice needs 'model' (a cached model name) or 'model_path'")
    if not path.exists():
        raise EngineError(f"Coqui checkpoint {path} does not exist")
    if not config.is_file():
        raise EngineError(f"Coqui config {config} does not exist")
    return path, config


@functools.lru_cache(maxsize=4)
def load_coqui(path: Path, config: Path, threads: int = 1) -> tuple[object, threading.Lock]:
    try:
        import torch
        from TTS.api import TTS
    except ImportError as exc:
        raise EngineError(
            "the Coqui engine is not installed in this environment: run scripts/install-coqui.sh "
            "and start the server from .venv-coqui"
        ) from exc
    torch.set_num_threads(threads)
    try:
        tts = TTS(model_path=str(path), config_path=str(config), progress_bar=False)
    except Exception as exc:
        raise EngineError(f"could not load Coqui model {path.name}: {exc}") from exc
    return tts, threading.Lock()


def split_sentences(text: str) -> list[str]:
    return [s.strip() for s in re.split(r"(?<=[.!?;])\s+", text) if s.strip()]


class CoquiSynth:
    def __init__(
        self,
        model: str | None = None,
        *,
        model_path: str | None = None,
        config_path: str | None = None,
        speaker: str | None = None,
        language: str | None = None,
        speaker_wav: str | None = None,
        speed: float = 1.0,
        threads: int = 1,
        cached: bool = True,
    ) -> None:
        path, config = locate_model(model, model_path, config_path)
        loader = load_coqui if cached else load_coqui.__wrapped__  # uncached: test of an upload
        self._tts, self._lock = loader(path, config, threads)
        tts = self._tts
        self.sample_rate: int = int(tts.synthesizer.output_sample_rate)  # type: ignore[attr-defined]
        speakers = tts.speakers if tts.is_multi_speaker else None  # type: ignore[attr-defined]
        if speaker is not None and speakers and speaker not in speakers:
            raise EngineError(f"Coqui model has no speaker {speaker!r}; it has {len(speakers)}")
        if speaker_wav and not Path(speaker_wav).is_file():
            raise EngineError(f"reference clip {speaker_wav} does not exist")
        if speakers and speaker is None and not speaker_wav:
            speaker = speakers[0]
        self._kwargs = {
            "speaker": speaker,
            "language": language,
            "speaker_wav": speaker_wav,
        }
        self._speed = float(speed)

    def synthesize(self, text: str) -> Iterator[np.ndarray]:
        model = self._tts.synthesizer.tts_model  # type: ignore[attr-defined]
        for sentence in split_sentences(text):
            with self._lock:
                old_scale = getattr(model, "length_scale", None)
                if old_scale is not None:  # VITS-family: duration scale (speed per call)
                    model.length_scale = 1.0 / self._speed
                try:
                    wav = self._tts.tts(text=sentence, split_sentences=False, **self._kwargs)  # type: ignore[attr-defined]
                except Exception as exc:
                    raise EngineError(f"Coqui synthesis failed: {exc}") from exc
                finally:
                    if old_scale is not None:
                        model.length_scale = old_scale
            yield np.asarray(wav, dtype=np.float32).reshape(-1)
