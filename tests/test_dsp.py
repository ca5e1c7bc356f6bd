"""WORLD-vocoder DSP: pitch and timbre move independently, measured on synthetic and Piper speech."""

from __future__ import annotations

import numpy as np
import pytest

from voice_chat.audio import dsp

RATE = 22050
FORMANTS = ((700.0, 120.0), (1200.0, 150.0), (2600.0, 250.0))


def vowel(
    seconds: float = 1.5, f0_start: float = 120.0, f0_end: float = 150.0, rate: int = RATE
) -> np.ndarray:
    """A harmonic vowel-like signal: gliding f0 with 5 Hz vibrato, three formant peaks."""
    t = np.arange(int(seconds * rate)) / rate
    f0 = np.linspace(f0_start, f0_end, t.size) * (1 + 0.03 * np.sin(2 * np.pi * 5 * t))
    phase = 2 * np.pi * np.cumsum(f0) / rate
    out = np.zeros_like(t)
    for k in range(1, int(rate / 2 / f0_end)):
        freq = k * f0
        amp = sum(np.exp(-0.5 * ((freq - fc) / bw) ** 2) for fc, bw in FORMANTS) + 0.02
        out += amp * np.sin(k * phase) / np.sqrt(k)
    return (0.3 * out / np.max(np.abs(out))).astype(np.float32)


@pytest.fixture(scope="module")
def synthetic() -> np.ndarray:
    return vowel()


@pytest.fixture(scope="module")
def piper_speech() -> tuple[np.ndarray, int]:
    from voice_chat.engines.tts_piper import PiperSynth

    synth = PiperSynth("embedded:joe-medium")
    text = "The quick brown fox jumps over the lazy dog, and then it runs away."
    return np.concatenate(list(synth.synthesize(text))), synth.sample_rate


@pytest.mark.parametrize("semitones", [-7.0, -3.0, 4.0, 7.0, 12.0])
def test_pitch_shift_ratio_synthetic(synthetic: np.ndarray, semitones: float) -> None:
    shifted = dsp.world_transform(synthetic, RATE, pitch_semitones=semitones)
    ratio = dsp.pitch_ratio(synthetic, shifted, RATE)
    assert ratio == pytest.approx(2 ** (semitones / 12), rel=0.03)
    assert shifted.shape == synthetic.shape and shifted.dtype == np.float32


@pytest.mark.parametrize("semitones", [-4.0, 5.0, 10.0])
def test_pitch_shift_ratio_piper(piper_speech: tuple[np.ndarray, int], semitones: float) -> None:
    audio, rate = piper_speech
    shifted = dsp.world_transform(audio, rate, pitch_semitones=semitones)
    assert dsp.pitch_ratio(audio, shifted, rate) == pytest.approx(2 ** (semitones / 12), rel=0.03)
    # the timbre barely moves when only the pitch does
    centroid_ratio = dsp.spectral_centroid(shifted, rate) / dsp.spectral_centroid(audio, rate)
    assert 0.9 < centroid_ratio < 1.12


@pytest.mark.parametrize("ratio", [0.8, 0.9, 1.15, 1.3])
def test_formant_shift_moves_centroid_not_pitch(
    piper_speech: tuple[np.ndarray, int], ratio: float
) -> None:
    audio, rate = piper_speech
    warped = dsp.world_transform(audio, rate, formant_shift=ratio)
    assert dsp.pitch_ratio(audio, warped, rate) == pytest.approx(1.0, rel=0.03)
    moved = dsp.spectral_centroid(warped, rate) / dsp.spectral_centroid(audio, rate)
    assert moved == pytest.approx(ratio, rel=0.08)  # the centroid follows the envelope warp


def test_formant_shift_synthetic_keeps_f0(synthetic: np.ndarray) -> None:
    warped = dsp.world_transform(synthetic, RATE, formant_shift=1.25)
    assert dsp.pitch_ratio(synthetic, warped, RATE) == pytest.approx(1.0, rel=0.03)
    assert dsp.spectral_centroid(warped, RATE) > 1.1 * dsp.spectral_centroid(synthetic, RATE)


def test_expressiveness_scales_intonation(synthetic: np.ndarray) -> None:
    def spread(x: np.ndarray) -> float:  # robust: interquartile range of log f0
        f0 = dsp.f0_contour(x, RATE)
        q1, q3 = np.percentile(np.log(f0[f0 > 0]), [25, 75])
        return float(q3 - q1)

    base = spread(synthetic)
    wide = spread(dsp.world_transform(synthetic, RATE, expressiveness=2.0))
    flat = spread(dsp.world_transform(synthetic, RATE, expressiveness=0.0))
    assert wide == pytest.approx(2 * base, rel=0.25)
    assert flat < 0.25 * base


def test_scale_expressiveness_keeps_unvoiced_and_mean() -> None:
    f0 = np.array([0.0, 100.0, 200.0, 0.0, 150.0])
    out = dsp.scale_expressiveness(f0, 0.0)
    assert out[0] == 0 and out[3] == 0
    assert np.allclose(out[[1, 2, 4]], np.exp(np.log([100, 200, 150]).mean()))


def test_neutral_transform_is_passthrough(synthetic: np.ndarray) -> None:
    assert np.array_equal(dsp.world_transform(synthetic, RATE), synthetic)


def test_transform_keeps_level_and_never_clips(synthetic: np.ndarray) -> None:
    out = dsp.world_transform(synthetic * 3.0, RATE, pitch_semitones=3, formant_shift=1.2)
    assert np.max(np.abs(out)) <= 0.99 + 1e-6
    quiet = dsp.world_transform(synthetic * 0.1, RATE, pitch_semitones=3)
    level = np.sqrt(np.mean(quiet**2)) / np.sqrt(np.mean((synthetic * 0.1) ** 2))
    assert level == pytest.approx(1.0, rel=0.1)


def test_tiny_and_silent_chunks_pass_through() -> None:
    tiny = np.ones(10, dtype=np.float32) * 0.1
    assert np.array_equal(dsp.world_transform(tiny, RATE, pitch_semitones=5), tiny)
    silent = np.zeros(RATE, dtype=np.float32)
    assert np.array_equal(dsp.world_transform(silent, RATE, pitch_semitones=5), silent)


def test_warp_envelope_moves_a_peak() -> None:
    env = np.zeros((1, 513))
    env[0, 100] = 1.0
    assert int(np.argmax(dsp.warp_envelope(env, 1.2))) == 120
    assert int(np.argmax(dsp.warp_envelope(env, 0.8))) == 80
    assert dsp.warp_envelope(env, 1.0) is env


def test_estimate_formant_ratio_recovers_a_warp(synthetic: np.ndarray) -> None:
    source = dsp.mean_log_envelope(synthetic, RATE)
    target = dsp.mean_log_envelope(dsp.world_transform(synthetic, RATE, formant_shift=1.15), RATE)
    assert dsp.estimate_formant_ratio(target, source) == pytest.approx(1.15, abs=0.04)


def test_median_f0_and_syllable_rate() -> None:
    steady = vowel(2.0, 180.0, 180.0)
    assert dsp.median_f0(steady, RATE) == pytest.approx(180.0, rel=0.03)
    t = np.arange(steady.size) / RATE
    syllables = steady * np.clip(np.sin(2 * np.pi * 2.0 * t), 0, None)  # 4 bursts per second
    assert dsp.syllable_rate(syllables, RATE) == pytest.approx(4.0, rel=0.2)
    assert dsp.median_f0(np.zeros(RATE, dtype=np.float32), RATE) == 0.0
