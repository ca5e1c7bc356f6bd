"""Voice DSP on the WORLD vocoder (pyworld): pitch, timbre and expressiveness move independently.

WORLD splits speech into three parts per frame: the fundamental frequency ``f0`` (pitch), the
smooth spectral envelope ``sp`` (vocal-tract resonances, i.e. formants / timbre) and the
aperiodicity ``ap`` (breathiness). A derived voice changes them separately and resynthesises:

* pitch: ``f0 * 2**(semitones/12)`` on voiced frames, envelope untouched;
* formant (timbre): the envelope is warped along frequency, ``sp'(f) = sp(f / ratio)``, so
  resonances move up (ratio > 1: smaller, brighter vocal tract) or down, pitch untouched;
* expressiveness: log-f0 deviations from the chunk's mean are scaled (0 = monotone,
  1 = unchanged, 2 = twice the intonation range).

Everything is pure numpy + pyworld and works per chunk (one sentence or clause), so it can sit
behind a streaming synthesizer. f0 uses DIO + StoneMask (fast), not Harvest.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

with warnings.catch_warnings():  # pyworld 0.3.5 imports the deprecated pkg_resources
    warnings.simplefilter("ignore")
    import pyworld

FRAME_PERIOD_MS = 5.0  # 5 ms keeps plosives and fast pitch moves clean; 10 ms is ~2x faster
F0_FLOOR = 55.0
F0_CEIL = 700.0
# DIO's default (0.1) rejects frames whose f0 jumps, which marks much of Piper's slightly creaky
# speech unvoiced; WORLD then resynthesises those vowels from noise (breathy, rough). 0.2 keeps
# ~70% of frames voiced instead of ~37%; D4C's aperiodicity still keeps fricatives noisy.
DIO_ALLOWED_RANGE = 0.2
ENVELOPE_F0_FLOOR = 71.0  # CheapTrick window: 1024-point FFT at 22-24 kHz


@dataclass
class WorldFeatures:
    f0: np.ndarray  # (frames,) Hz, 0 where unvoiced
    sp: np.ndarray  # (frames, fft_size // 2 + 1) power spectral envelope
    ap: np.ndarray  # (frames, fft_size // 2 + 1) aperiodicity 0..1
    rate: int
    frame_period: float


def _track(x: np.ndarray, rate: int, frame_period: float) -> tuple[np.ndarray, np.ndarray]:
    """The pitch tracker: DIO refined by StoneMask; per-frame f0 (0 = unvoiced) and times."""
    f0, t = pyworld.dio(
        x,
        rate,
        f0_floor=F0_FLOOR,
        f0_ceil=F0_CEIL,
        frame_period=frame_period,
        allowed_range=DIO_ALLOWED_RANGE,
    )
    return np.asarray(pyworld.stonemask(x, f0, t, rate)), t


def f0_contour(audio: np.ndarray, rate: int, frame_period: float = FRAME_PERIOD_MS) -> np.ndarray:
    """Per-frame f0 in Hz (0 = unvoiced) from DIO refined by StoneMask."""
    return _track(np.ascontiguousarray(audio, dtype=np.float64), rate, frame_period)[0]


def analyze(audio: np.ndarray, rate: int, frame_period: float = FRAME_PERIOD_MS) -> WorldFeatures:
    x = np.ascontiguousarray(audio, dtype=np.float64)
    f0, t = _track(x, rate, frame_period)
    fft_size = pyworld.get_cheaptrick_fft_size(rate, ENVELOPE_F0_FLOOR)
    sp = pyworld.cheaptrick(x, f0, t, rate, f0_floor=ENVELOPE_F0_FLOOR, fft_size=fft_size)
    ap = pyworld.d4c(x, f0, t, rate, fft_size=fft_size)
    return WorldFeatures(f0, sp, ap, rate, frame_period)


def shift_pitch(f0: np.ndarray, semitones: float) -> np.ndarray:
    return f0 * (2.0 ** (semitones / 12.0))


def scale_expressiveness(f0: np.ndarray, factor: float) -> np.ndarray:
    """Scale the spread of log-f0 around its mean over voiced frames; unvoiced frames stay 0."""
    voiced = f0 > 0
    if factor == 1.0 or voiced.sum() < 2:
        return f0
    out = f0.copy()
    log_f0 = np.log(f0[voiced])
    mean = log_f0.mean()
    out[voiced] = np.exp(mean + factor * (log_f0 - mean))
    return out


def warp_envelope(env: np.ndarray, ratio: float) -> np.ndarray:
    """Move spectral features along frequency: ``out[:, k] = env[:, k / ratio]`` (linear interp).

    ratio > 1 moves formants up, < 1 down. Bins past the top are held at the last value.
    """
    if ratio == 1.0:
        return env
    bins = env.shape[-1]
    src = np.arange(bins, dtype=np.float64) / ratio
    i0 = np.clip(np.floor(src).astype(np.int64), 0, bins - 2)
    frac = np.clip(src - i0, 0.0, 1.0)
    return env[..., i0] * (1.0 - frac) + env[..., i0 + 1] * frac


def world_transform(
    audio: np.ndarray,
    rate: int,
    *,
    pitch_semitones: float = 0.0,
    formant_shift: float = 1.0,
    expressiveness: float = 1.0,
    frame_period: float = FRAME_PERIOD_MS,
) -> np.ndarray:
    """Re-voice one chunk; returns float32 of the same length and roughly the same loudness."""
    audio = np.asarray(audio, dtype=np.float32)
    if pitch_semitones == 0.0 and formant_shift == 1.0 and expressiveness == 1.0:
        return audio
    if audio.size < rate * frame_period / 1000.0 * 4 or not np.any(audio):
        return audio  # too short to analyse: pass through
    feats = analyze(audio, rate, frame_period)
    f0 = shift_pitch(scale_expressiveness(feats.f0, expressiveness), pitch_semitones)
    sp = warp_envelope(feats.sp, formant_shift)
    ap = warp_envelope(feats.ap, formant_shift)
    y = pyworld.synthesize(
        f0, np.ascontiguousarray(sp), np.ascontiguousarray(ap), rate, frame_period
    )
    y = np.asarray(y, dtype=np.float32)
    if y.size < audio.size:
        y = np.pad(y, (0, audio.size - y.size))
    y = y[: audio.size]
    # keep the loudness of the input, never clip
    rms_in = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64))))
    rms_out = float(np.sqrt(np.mean(np.square(y, dtype=np.float64))))
    if rms_out > 1e-9:
        y *= rms_in / rms_out
    peak = float(np.max(np.abs(y))) if y.size else 0.0
    if peak > 0.99:
        y *= 0.99 / peak
    return y


def median_f0(audio: np.ndarray, rate: int) -> float:
    """Median f0 of the voiced frames in Hz (0.0 when nothing is voiced)."""
    f0 = f0_contour(audio, rate)
    voiced = f0[f0 > 0]
    return float(np.median(voiced)) if voiced.size else 0.0


def pitch_ratio(reference: np.ndarray, processed: np.ndarray, rate: int) -> float:
    """Median frame-by-frame f0 ratio ``processed / reference`` over frames voiced in both
    (the two signals must be time-aligned, as :func:`world_transform` keeps them)."""
    a, b = f0_contour(reference, rate), f0_contour(processed, rate)
    n = min(a.size, b.size)
    a, b = a[:n], b[:n]
    both = (a > 0) & (b > 0)
    return float(np.median(b[both] / a[both])) if both.sum() >= 5 else 0.0


def _frames(audio: np.ndarray, size: int, hop: int) -> np.ndarray:
    x = np.asarray(audio, dtype=np.float64)
    if x.size < size:
        x = np.pad(x, (0, size - x.size))
    count = 1 + (x.size - size) // hop
    idx = np.arange(size)[None, :] + hop * np.arange(count)[:, None]
    return x[idx] * np.hanning(size)[None, :]


def spectral_centroid(audio: np.ndarray, rate: int, max_hz: float = 8000.0) -> float:
    """Energy-weighted mean spectral centroid (Hz) over frames within 30 dB of the loudest."""
    size = 1024 if rate > 16000 else 512
    spec = np.abs(np.fft.rfft(_frames(audio, size, size // 2), axis=1)) ** 2
    freqs = np.fft.rfftfreq(size, 1.0 / rate)
    band = freqs <= max_hz
    spec, freqs = spec[:, band], freqs[band]
    energy = spec.sum(axis=1)
    if not np.any(energy > 0):
        return 0.0
    keep = energy > energy.max() * 1e-3
    centroids = (spec[keep] * freqs).sum(axis=1) / energy[keep]
    return float(np.average(centroids, weights=energy[keep]))


def mean_log_envelope(
    audio: np.ndarray, rate: int, bins: int = 257, max_hz: float = 5000.0
) -> np.ndarray:
    """Average log spectral envelope of voiced frames (WORLD CheapTrick), resampled to ``bins``
    points from 0 to ``max_hz``: a speaker's timbre summary, used to estimate formant ratios."""
    x = np.ascontiguousarray(audio, dtype=np.float64)
    f0, t = pyworld.dio(
        x,
        rate,
        f0_floor=F0_FLOOR,
        f0_ceil=F0_CEIL,
        frame_period=10.0,
        allowed_range=DIO_ALLOWED_RANGE,
    )
    f0 = pyworld.stonemask(x, f0, t, rate)
    sp = pyworld.cheaptrick(x, f0, t, rate, f0_floor=ENVELOPE_F0_FLOOR)
    voiced = f0 > 0
    if not voiced.any():
        return np.zeros(bins)
    log_env = np.log(sp[voiced] + 1e-12).mean(axis=0)
    freqs = np.linspace(0.0, rate / 2.0, log_env.size)
    return np.interp(np.linspace(0.0, max_hz, bins), freqs, log_env)


def estimate_formant_ratio(target_env: np.ndarray, source_env: np.ndarray) -> float:
    """The envelope warp (0.8..1.25) that best maps ``source_env`` onto ``target_env``
    (both from :func:`mean_log_envelope`), by correlation of mean-removed log envelopes."""
    best, best_score = 1.0, -np.inf
    tgt = target_env - target_env.mean()
    for ratio in np.exp(np.linspace(np.log(0.8), np.log(1.25), 41)):
        warped = warp_envelope(source_env[None, :], float(ratio))[0]
        warped = warped - warped.mean()
        score = float(np.dot(tgt, warped) / (np.linalg.norm(tgt) * np.linalg.norm(warped) + 1e-12))
        if score > best_score:
            best, best_score = float(ratio), score
    return best


def syllable_rate(audio: np.ndarray, rate: int) -> float:
    """Syllable-ish nuclei per second of active speech: peaks of the smoothed 300-3000 Hz
    energy envelope that stand out by 3 dB, counted over frames within 35 dB of the peak."""
    hop = max(1, rate // 100)  # 10 ms
    size = 2 * hop
    spec = np.abs(np.fft.rfft(_frames(audio, size, hop), axis=1)) ** 2
    freqs = np.fft.rfftfreq(size, 1.0 / rate)
    band = (freqs >= 300) & (freqs <= 3000)
    env_db = 10 * np.log10(spec[:, band].sum(axis=1) + 1e-12)
    kernel = np.hanning(9)
    env_db = np.convolve(env_db, kernel / kernel.sum(), mode="same")
    active = env_db > env_db.max() - 35.0
    if active.sum() < 10:
        return 0.0
    peaks, seeking_peak, low, high = 0, True, env_db[0], env_db[0]
    for value, is_active in zip(env_db, active, strict=True):  # hysteresis: rise 3 dB, fall 3 dB
        if seeking_peak:
            low = min(low, value)
            if value - low >= 3.0 and is_active:
                peaks, seeking_peak, high = peaks + 1, False, value
        else:
            high = max(high, value)
            if high - value >= 3.0:
                seeking_peak, low = True, value
    return peaks / (active.sum() * hop / rate)
