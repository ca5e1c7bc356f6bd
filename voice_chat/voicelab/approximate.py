"""Approximate a reference clip with the installed voices (used when no cloning engine exists).

1. Pick a base by the clip's median f0: below MALE_MAX_F0 the male Piper voice (joe, cheap to
   run), otherwise the Kokoro female style whose own pitch is nearest.
2. Let the base say REFERENCE_TEXT; set pitch (semitones between the two median f0s),
   formant ratio (the envelope warp that best maps the base's mean spectral envelope onto the
   clip's) and speed (ratio of syllable rates).
3. Say the text again with those settings and score speaker similarity against the clip
   (``voicelab.similarity``), next to the unmodified base's score.

The result is a plain engine voice (piper or kokoro) with WORLD parameters and
``approximation: true``: it sounds *like* the clip in pitch, timbre and pace, not *as* it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from voice_chat.audio import dsp
from voice_chat.engines.tts import build_synthesizer
from voice_chat.engines.voices import VoiceError, VoiceSpec
from voice_chat.voicelab import similarity
from voice_chat.voicelab.clip import ClipAnalysis
from voice_chat.voicelab.synth_check import synthesize_all

REFERENCE_TEXT = (
    "I walked down to the harbour this morning to watch the boats come in. "
    "The air was cold, but the light on the water was beautiful."
)
MALE_MAX_F0 = 165.0
# Median f0 of each base saying REFERENCE_TEXT (measured with benchmarks/voices.py; the exact
# value is re-measured during approximation, these only pick the base).
BASES: dict[str, tuple[dict[str, Any], float]] = {
    "joe": ({"engine": "piper", "model": "embedded:joe-medium", "variation": 0.667}, 153.0),
    "jf_alpha": ({"engine": "kokoro", "voice": "jf_alpha"}, 258.0),
    "jf_gongitsune": ({"engine": "kokoro", "voice": "jf_gongitsune"}, 224.0),
    "jf_nezumi": ({"engine": "kokoro", "voice": "jf_nezumi"}, 234.0),
    "jf_tebukuro": ({"engine": "kokoro", "voice": "jf_tebukuro"}, 314.0),
}


def choose_base(f0: float) -> str:
    if f0 < MALE_MAX_F0:
        return "joe"
    female = {k: v for k, v in BASES.items() if k != "joe"}
    return min(female, key=lambda k: abs(math.log(f0 / female[k][1])))


def _no_resolve(voice_id: str) -> VoiceSpec:
    raise VoiceError("unknown_voice", f"approximations do not use other voices ({voice_id})")


def _say(spec: VoiceSpec) -> tuple[np.ndarray, int]:
    synth = build_synthesizer(spec, _no_resolve)
    audio, _ = synthesize_all(synth, REFERENCE_TEXT)
    return audio, synth.sample_rate


def _fit(base_key: str, voice_id: str, name: str, info: ClipAnalysis) -> dict[str, Any]:
    """Tune one base towards the clip; returns its parameters and both recordings."""
    fields, table_f0 = BASES[base_key]
    base_spec = VoiceSpec.model_validate({"id": voice_id, "name": name, **fields})
    base_audio, base_rate = _say(base_spec)
    base_f0 = dsp.median_f0(base_audio, base_rate) or table_f0
    pitch = float(np.clip(12.0 * math.log2(info.median_f0_hz / base_f0), -12.0, 12.0))
    formant = dsp.estimate_formant_ratio(
        info.envelope, dsp.mean_log_envelope(base_audio, base_rate)
    )
    base_pace = dsp.syllable_rate(base_audio, base_rate)
    speed = float(np.clip(info.syllables_per_s / base_pace, 0.8, 1.25)) if base_pace > 0 else 1.0
    params = {
        "pitch_semitones": round(pitch, 2),
        "formant_shift": round(float(np.clip(formant, 0.8, 1.25)), 3),
        "speed": round(speed, 2),
    }
    out_audio, out_rate = _say(base_spec.model_copy(update=params))
    return {
        "key": base_key,
        "fields": fields,
        "params": params,
        "base_f0": base_f0,
        "base": (base_audio, base_rate),
        "out": (out_audio, out_rate),
    }


def approximate(
    voice_id: str, name: str, clip: np.ndarray, rate: int, info: ClipAnalysis
) -> dict[str, Any]:
    """A voice definition (dict, ready for VoiceSpec) approximating the clip.

    Tries the base picked by f0 and, when that is a Kokoro voice, also the cheap Piper base
    (pitched up); keeps whichever scores the higher speaker similarity."""
    keys = list(dict.fromkeys([choose_base(info.median_f0_hz), "joe"]))
    fits, method = [], similarity.method()
    for key in keys:
        fit = _fit(key, voice_id, name, info)
        fit["score"], method = similarity.similarity(clip, rate, *fit["out"], method)
        fit["base_score"], _ = similarity.similarity(clip, rate, *fit["base"], method)
        fits.append(fit)
    best = max(fits, key=lambda f: f["score"])
    params, score, base_score = best["params"], best["score"], best["base_score"]
    typical = (
        "same-speaker recordings usually score above 0.8"
        if method == similarity.RESEMBLYZER
        else "MFCC statistics are a rough measure; the 'similarity' extra gives speaker embeddings"
    )
    message = (
        f"Approximation: no voice-cloning engine is installed here, so this is the packaged "
        f"voice {best['key']!r} with pitch {params['pitch_semitones']:+.1f} semitones, "
        f"formants x{params['formant_shift']}, speed x{params['speed']}, chosen to match the "
        f"clip's pitch, timbre and pace. Speaker similarity to the clip: {score:.2f} ({method}; "
        f"the unmodified base scored {base_score:.2f}; {typical})."
    )
    return {
        **best["fields"],
        **params,
        "id": voice_id,
        "name": name,
        "description": f"Approximation of a reference clip (base voice {best['key']}).",
        "approximation": True,
        "message": message,
        "analysis": {
            "clip": info.summary(),
            "base_voice": best["key"],
            "base_median_f0_hz": round(best["base_f0"], 1),
            "similarity": {
                "method": method,
                "score": round(score, 3),
                "base_score": round(base_score, 3),
                "candidates": {f["key"]: round(f["score"], 3) for f in fits},
            },
        },
    }
