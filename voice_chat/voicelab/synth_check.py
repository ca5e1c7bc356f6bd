"""Test synthesis (every registration ends with one) and previews."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from voice_chat.audio import dsp
from voice_chat.audio.pcm import rms_dbfs, wav_bytes
from voice_chat.engines.base import EngineError, Synthesizer
from voice_chat.engines.voices import VoiceError, VoiceSpec
from voice_chat.voicelab import limits

Resolver = Callable[[str], VoiceSpec]


def synthesize_all(synth: Synthesizer, text: str) -> tuple[np.ndarray, float]:
    """All chunks of ``text`` joined, and the seconds it took."""
    start = time.perf_counter()
    try:
        chunks = [np.asarray(c, dtype=np.float32).reshape(-1) for c in synth.synthesize(text)]
    except EngineError as exc:
        raise VoiceError("synthesis_failed", f"test synthesis failed: {exc}") from exc
    except Exception as exc:
        raise VoiceError(
            "synthesis_failed", f"test synthesis failed: {type(exc).__name__}: {exc}"
        ) from exc
    audio = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
    return audio, time.perf_counter() - start


def check_audio(
    audio: np.ndarray, rate: int, text: str, *, plausibility: bool = True
) -> dict[str, Any]:
    """Refuse empty, non-finite or silent output; with ``plausibility``, also speech whose
    pace (characters per second) or median pitch is far outside human speech, which is what a
    config declaring the wrong sample rate produces. Returns the measurements."""
    if audio.size == 0:
        raise VoiceError("synthesis_failed", "test synthesis produced no audio")
    if not np.all(np.isfinite(audio)):
        raise VoiceError("synthesis_failed", "test synthesis produced NaN or infinite samples")
    level = rms_dbfs(audio)
    if level < limits.TEST_MIN_DBFS:
        raise VoiceError("synthesis_failed", f"test synthesis is silent ({level:.0f} dBFS)")
    seconds = audio.size / rate
    metrics: dict[str, Any] = {"seconds": round(seconds, 3), "dbfs": round(level, 1)}
    if plausibility:
        pace = len(text) / seconds
        f0 = dsp.median_f0(audio, rate)
        metrics.update(chars_per_s=round(pace, 1), median_f0_hz=round(f0, 1))
        low, high = limits.TEST_CHARS_PER_S
        if not low <= pace <= high:
            raise VoiceError(
                "invalid_model",
                f"test speech runs at {pace:.1f} characters/s (expected {low:.0f}-{high:.0f}): "
                "is audio.sample_rate in the .onnx.json the model's real rate?",
            )
        low, high = limits.TEST_F0_HZ
        if not low <= f0 <= high:
            raise VoiceError(
                "invalid_model",
                f"test speech has a median pitch of {f0:.0f} Hz (expected {low:.0f}-{high:.0f}): "
                "the model's sample rate may not match the config, or it does not produce speech",
            )
    return metrics


def test_synthesis(synth: Synthesizer, *, plausibility: bool = True) -> dict[str, Any]:
    audio, took = synthesize_all(synth, limits.TEST_SENTENCE)
    metrics = check_audio(audio, synth.sample_rate, limits.TEST_SENTENCE, plausibility=plausibility)
    metrics["rtf"] = round(took / max(audio.size / synth.sample_rate, 1e-6), 3)
    return metrics


def preview(spec: VoiceSpec, text: str, resolve: Resolver, threads: int = 1) -> bytes:
    """The voice saying ``text`` (at most MAX_PREVIEW_CHARS) as WAV bytes at its native rate."""
    from voice_chat.engines.tts import build_synthesizer

    text = (text or "").strip() or limits.TEST_SENTENCE
    if len(text) > limits.MAX_PREVIEW_CHARS:
        raise VoiceError(
            "invalid_params", f"preview text is limited to {limits.MAX_PREVIEW_CHARS} characters"
        )
    try:
        synth = build_synthesizer(spec, resolve, threads)
    except EngineError as exc:
        raise VoiceError("synthesis_failed", str(exc)) from exc
    audio, _ = synthesize_all(synth, text)
    return wav_bytes(audio, synth.sample_rate)
