"""Limits of voice registration (all enforced before anything is kept)."""

from __future__ import annotations

MAX_ONNX_BYTES = 150 * 1024 * 1024  # a Piper "high" voice is ~110 MB
MAX_PIPER_JSON_BYTES = 2 * 1024 * 1024
MAX_WAV_BYTES = 20 * 1024 * 1024  # 60 s of 48 kHz stereo PCM16 is 11 MB
MAX_COQUI_CHECKPOINT_BYTES = 2 * 1024 * 1024 * 1024  # XTTS v2 is ~1.9 GB
MAX_COQUI_CONFIG_BYTES = 2 * 1024 * 1024

PIPER_MIN_RATE, PIPER_MAX_RATE = 8000, 48000
PIPER_MAX_SPEAKERS = 10000

CLIP_MIN_S, CLIP_MAX_S = 2.0, 60.0
CLIP_MIN_DBFS = -45.0  # quieter than this is treated as silence
CLIP_MIN_SPEECH_S = 1.0  # Silero VAD must find at least this much speech ...
CLIP_MIN_SPEECH_FRACTION = 0.25  # ... and this share of the clip

# Parameter ranges (also enforced by VoiceSpec)
PITCH_SEMITONES = (-12.0, 12.0)
FORMANT_SHIFT = (0.7, 1.4)
SPEED = (0.5, 2.0)
EXPRESSIVENESS = (0.0, 2.0)
MAX_BLEND_VOICES = 5

# Test synthesis: a registered voice must say this, finite and audible
TEST_SENTENCE = "Hello! This is a short test of my new voice."
TEST_MIN_DBFS = -50.0
TEST_CHARS_PER_S = (7.0, 40.0)  # wildly off means the config's sample rate is wrong
TEST_F0_HZ = (60.0, 500.0)  # same idea; 0 (nothing voiced) is also refused

MAX_PREVIEW_CHARS = 400
STALE_STAGING_S = 3600.0  # staging dirs of a dead process, or older than this, are removed
