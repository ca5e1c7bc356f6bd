"""Smart Turn v3.2: has the speaker finished, judged from the sound of the turn.

The 8.7 MB ONNX model (BSD-2-Clause, Daily) ships inside the ``pipecat-ai`` wheel; only the
file is used (the package is installed without its dependencies and never imported). Input:
the last 8 s of the turn at 16 kHz (zero-padded in front), normalised to zero mean and unit
variance, as Whisper log-mel features (80 x 800, from faster-whisper's feature extractor);
output: the probability that the turn is complete. About 25 ms on one core: call
:meth:`SmartTurn.probability` from a worker thread.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from voice_chat.engines.base import EngineError

RATE = 16000
SECONDS = 8
MODEL_FILE = ("audio", "turn", "smart_turn", "data", "smart-turn-v3.2-cpu.onnx")


def model_path() -> Path:
    """The packaged ONNX file, found without importing ``pipecat``."""
    spec = importlib.util.find_spec("pipecat")
    if spec is None or not spec.submodule_search_locations:
        raise EngineError(
            "the Smart Turn model is missing: pip install --no-deps pipecat-ai==1.14.0"
        )
    path = Path(next(iter(spec.submodule_search_locations))).joinpath(*MODEL_FILE)
    if not path.is_file():
        raise EngineError(f"the Smart Turn model is not at {path} (pipecat-ai 1.14.0 has it)")
    return path


def features(audio: np.ndarray) -> np.ndarray:
    """(1, 80, 800) float32 log-mel features of the last 8 s of ``audio`` (16 kHz)."""
    from faster_whisper.feature_extractor import FeatureExtractor

    n = RATE * SECONDS
    x = np.zeros(n, np.float32)
    tail = np.asarray(audio, np.float32)[-n:]
    x[n - len(tail) :] = tail
    x = (x - x.mean()) / np.sqrt(x.var() + 1e-7)
    mel = _extractor(FeatureExtractor)(x, padding=0)[:, : SECONDS * 100]
    return mel[None].astype(np.float32)


_EXTRACTOR: object | None = None


def _extractor(cls: type) -> object:
    global _EXTRACTOR
    if _EXTRACTOR is None:
        _EXTRACTOR = cls(feature_size=80, chunk_length=SECONDS)
    return _EXTRACTOR


class SmartTurn:
    """One shared ONNX session on one thread (the caller runs it off the event loop)."""

    name = "smart-turn-v3.2"

    def __init__(self, path: str | Path | None = None, threads: int = 1) -> None:
        from voice_chat.audio.onnx import cpu_session

        try:
            self._session = cpu_session(path or model_path(), threads)
        except EngineError:
            raise
        except Exception as exc:
            raise EngineError(f"could not load the Smart Turn model: {exc}") from exc

    def probability(self, audio: np.ndarray) -> float:
        """P(the turn is complete) for the turn's 16 kHz audio so far."""
        if len(audio) == 0:
            return 0.0
        out = self._session.run(None, {"input_features": features(audio)})
        return float(np.asarray(out[0]).reshape(-1)[0])
