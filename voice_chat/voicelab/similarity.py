"""Speaker similarity of two recordings: cosine of speaker embeddings.

* ``resemblyzer`` (optional extra ``similarity``: torch + resemblyzer, whose wheel carries its
  pretrained GE2E speaker encoder): 256-d d-vectors of 16 kHz audio. Same speaker on different
  sentences typically scores 0.85-0.95, clearly different speakers 0.5-0.75.
* fallback ``mfcc-stats`` (numpy only, always available): the mean and standard deviation of
  MFCCs 1-19 over frames within 40 dB of the loudest, each coefficient divided by a fixed
  typical spread so no single one dominates, compared by cosine. It tracks timbre and
  brightness only roughly; its numbers are not comparable with resemblyzer's.

Every result says which method produced it.
"""

from __future__ import annotations

import functools
import logging
import sys
import threading
import types
import warnings

import numpy as np

from voice_chat.audio.pcm import MODEL_RATE, resample

log = logging.getLogger(__name__)
RATE = MODEL_RATE
RESEMBLYZER = "resemblyzer"
MFCC = "mfcc-stats"
_lock = threading.Lock()


@functools.lru_cache(maxsize=1)
def _encoder() -> object | None:
    try:
        import torch

        try:
            import webrtcvad  # noqa: F401
        except Exception:  # noqa: BLE001 - broken or missing: only trim_long_silences needs it
            sys.modules["webrtcvad"] = types.ModuleType("webrtcvad")
        with warnings.catch_warnings():  # resemblyzer imports a deprecated scipy namespace
            warnings.simplefilter("ignore", DeprecationWarning)
            from resemblyzer import VoiceEncoder

        torch.set_num_threads(1)
        return VoiceEncoder("cpu", verbose=False)
    except Exception as exc:  # noqa: BLE001 - any failure means: use the fallback
        log.info("resemblyzer unavailable (%s); using MFCC statistics", exc)
        return None


def method() -> str:
    """Which method :func:`embed` uses in this environment."""
    return RESEMBLYZER if _encoder() is not None else MFCC


def _mel_filters(
    n_fft: int, n_mels: int = 40, fmin: float = 60.0, fmax: float = 7600.0
) -> np.ndarray:
    def to_mel(f: np.ndarray) -> np.ndarray:
        return 2595.0 * np.log10(1.0 + f / 700.0)

    mels = np.linspace(to_mel(np.array(fmin)), to_mel(np.array(fmax)), n_mels + 2)
    hz = 700.0 * (10 ** (mels / 2595.0) - 1.0)
    freqs = np.fft.rfftfreq(n_fft, 1.0 / RATE)
    bank = np.zeros((n_mels, freqs.size))
    for i in range(n_mels):
        lo, mid, hi = hz[i], hz[i + 1], hz[i + 2]
        bank[i] = np.clip(np.minimum((freqs - lo) / (mid - lo), (hi - freqs) / (hi - mid)), 0, None)
    return bank


_MFCC_SCALE = np.array([40.0, 20, 15, 12, 10, 9, 8, 7, 6, 6, 5, 5, 5, 4, 4, 4, 4, 4, 4])


def mfcc_stats(audio16k: np.ndarray) -> np.ndarray:
    n_fft, hop = 512, 160
    x = np.asarray(audio16k, dtype=np.float64)
    if x.size < n_fft:
        x = np.pad(x, (0, n_fft - x.size))
    count = 1 + (x.size - n_fft) // hop
    frames = x[np.arange(n_fft)[None, :] + hop * np.arange(count)[:, None]] * np.hamming(n_fft)
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    log_mel = 10 * np.log10(power @ _mel_filters(n_fft).T + 1e-10)
    energy = log_mel.max(axis=1)
    log_mel = log_mel[energy > energy.max() - 40.0]
    n = log_mel.shape[1]
    dct = np.cos(np.pi / n * (np.arange(n)[None, :] + 0.5) * np.arange(20)[:, None])
    mfcc = (log_mel @ dct.T)[:, 1:]
    return np.concatenate([mfcc.mean(axis=0) / _MFCC_SCALE, mfcc.std(axis=0) / _MFCC_SCALE])


def embed(audio: np.ndarray, rate: int, use: str | None = None) -> tuple[np.ndarray, str]:
    """Speaker embedding of a clip and the method used (``use`` forces ``mfcc-stats``)."""
    x = resample(np.asarray(audio, dtype=np.float32), rate, RATE)
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if peak > 0:
        x = x / peak * 0.5
    encoder = None if use == MFCC else _encoder()
    if encoder is None:
        return mfcc_stats(x), MFCC
    with _lock:
        vector = encoder.embed_utterance(x)  # type: ignore[attr-defined]
    return np.asarray(vector, dtype=np.float64), RESEMBLYZER


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))


def similarity(
    a: np.ndarray, rate_a: int, b: np.ndarray, rate_b: int, use: str | None = None
) -> tuple[float, str]:
    """Cosine similarity of the two clips' speaker embeddings, and the method used."""
    ea, method_a = embed(a, rate_a, use)
    eb, _ = embed(b, rate_b, method_a)
    return cosine(ea, eb), method_a


def matrix(clips: list[tuple[np.ndarray, int]], use: str | None = None) -> tuple[np.ndarray, str]:
    """Pairwise similarity matrix of several clips, and the method used."""
    embedded = [embed(a, r, use) for a, r in clips]
    used = embedded[0][1] if embedded else method()
    vectors = [e for e, _ in embedded]
    out = np.array([[cosine(a, b) for b in vectors] for a in vectors])
    return out, used
