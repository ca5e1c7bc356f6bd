"""Reference clips: validation (a real WAV of 2-60 s of speech) and voice analysis."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from voice_chat.audio import dsp
from voice_chat.audio.pcm import MODEL_RATE, read_wav, resample, rms_dbfs
from voice_chat.engines.voices import VoiceError
from voice_chat.voicelab import limits

VAD_THRESHOLD = 0.5


@dataclass
class ClipAnalysis:
    seconds: float
    dbfs: float
    speech_seconds: float
    speech_fraction: float
    median_f0_hz: float
    syllables_per_s: float
    centroid_hz: float
    envelope: np.ndarray = field(repr=False)

    def summary(self) -> dict[str, float]:
        return {
            "seconds": round(self.seconds, 2),
            "dbfs": round(self.dbfs, 1),
            "speech_seconds": round(self.speech_seconds, 2),
            "median_f0_hz": round(self.median_f0_hz, 1),
            "syllables_per_s": round(self.syllables_per_s, 2),
            "spectral_centroid_hz": round(self.centroid_hz, 1),
        }


def speech_activity(audio: np.ndarray, rate: int) -> tuple[float, float]:
    """(seconds of speech, share of the clip) according to the Silero VAD."""
    from voice_chat.audio.vad import FRAME, StreamingVAD

    probs = StreamingVAD().process(resample(audio, rate, MODEL_RATE))
    if not probs:
        return 0.0, 0.0
    speech = sum(p > VAD_THRESHOLD for p in probs)
    return speech * FRAME / MODEL_RATE, speech / len(probs)


def load_clip(data: bytes) -> tuple[np.ndarray, int]:
    """Validated mono float32 audio and its rate; ``invalid_audio`` / ``too_large`` otherwise."""
    if len(data) > limits.MAX_WAV_BYTES:
        raise VoiceError("too_large", f"the clip is over {limits.MAX_WAV_BYTES // 2**20} MB")
    try:
        audio, rate = read_wav(bytes(data))
    except ValueError as exc:
        raise VoiceError("invalid_audio", f"the clip is not a PCM WAV file: {exc}") from exc
    if not 8000 <= rate <= 192000:
        raise VoiceError("invalid_audio", f"unsupported sample rate {rate} Hz")
    seconds = audio.size / rate
    if not limits.CLIP_MIN_S <= seconds <= limits.CLIP_MAX_S:
        raise VoiceError(
            "invalid_audio",
            f"the clip lasts {seconds:.1f} s; give "
            f"{limits.CLIP_MIN_S:.0f}-{limits.CLIP_MAX_S:.0f} s of speech",
        )
    if not np.all(np.isfinite(audio)):
        raise VoiceError("invalid_audio", "the clip holds invalid samples")
    level = rms_dbfs(audio)
    if level < limits.CLIP_MIN_DBFS:
        raise VoiceError("invalid_audio", f"the clip is silent ({level:.0f} dBFS)")
    return audio, rate


def analyse(audio: np.ndarray, rate: int) -> ClipAnalysis:
    """Check that the clip holds speech (VAD), then measure pitch, pace and timbre."""
    speech_s, fraction = speech_activity(audio, rate)
    if speech_s < limits.CLIP_MIN_SPEECH_S or fraction < limits.CLIP_MIN_SPEECH_FRACTION:
        raise VoiceError(
            "invalid_audio",
            f"no clear speech in the clip (voice activity {speech_s:.1f} s, {fraction:.0%}): "
            "record a few sentences of one person speaking, without music or loud noise",
        )
    f0 = dsp.median_f0(audio, rate)
    if f0 <= 0:
        raise VoiceError("invalid_audio", "no voiced speech found in the clip")
    return ClipAnalysis(
        seconds=audio.size / rate,
        dbfs=rms_dbfs(audio),
        speech_seconds=speech_s,
        speech_fraction=fraction,
        median_f0_hz=f0,
        syllables_per_s=dsp.syllable_rate(audio, rate),
        centroid_hz=dsp.spectral_centroid(audio, rate),
        envelope=dsp.mean_log_envelope(audio, rate),
    )
