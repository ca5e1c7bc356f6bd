"""Reference clips: validation, analysis, approximation with a similarity score."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from speech import espeak

from voice_chat.audio.pcm import wav_bytes
from voice_chat.engines.tts import build_synthesizer
from voice_chat.engines.voices import VoiceError
from voice_chat.voicelab import VoiceStore, limits, similarity

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "voices"
CLIP_TEXT = (
    "Hello, my name is Sam. I live in a small town near the sea, and every morning "
    "I walk along the beach with my dog before work."
)


@pytest.fixture
def store(tmp_path: Path) -> VoiceStore:
    # no cloning model: the clip path must approximate (Coqui may be importable, weights are not)
    return VoiceStore(tmp_path, SHIPPED, clone_model="/nonexistent/no-cloning-model")


def clip(voice: str = "en-us", rate: int = 22050) -> bytes:
    return wav_bytes(espeak(CLIP_TEXT, rate=rate, voice=voice, wpm=165), rate)


def register_error(store: VoiceStore, data: bytes) -> VoiceError:
    with pytest.raises(VoiceError) as info:
        store.register("clip", "Sam", {"sam.wav": data})
    assert not (store.root / "sam").exists() and not any(store.staging.iterdir())
    return info.value


def test_bad_clips_are_refused(store: VoiceStore, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(0)
    assert register_error(store, b"ID3 this is an mp3, honest").code == "invalid_audio"
    assert register_error(store, b"RIFF\x10\x00\x00\x00WAVEfmt ").code == "invalid_audio"
    silence = wav_bytes(np.zeros(16000 * 5, np.float32), 16000)
    assert "silent" in str(register_error(store, silence))
    noise = wav_bytes((rng.standard_normal(16000 * 5) * 0.2).astype(np.float32), 16000)
    err = register_error(store, noise)
    assert err.code == "invalid_audio" and "speech" in str(err)
    speech = espeak("Hi.", rate=16000)
    assert "lasts" in str(register_error(store, wav_bytes(speech[:16000], 16000)))
    long = np.tile(espeak(CLIP_TEXT, rate=8000), 12)[: 8000 * 65]
    assert "lasts" in str(register_error(store, wav_bytes(long, 8000)))
    monkeypatch.setattr(limits, "MAX_WAV_BYTES", 1000)
    assert register_error(store, clip()).code == "too_large"


@pytest.mark.slow
def test_clip_gives_an_approximation_with_similarity(store: VoiceStore) -> None:
    spec = store.register("clip", "Sam", {"sam.wav": clip("en-us")})
    extra = spec.model_extra or {}
    assert spec.approximation is True
    assert "Approximation" in extra["message"] and "similarity" in extra["message"]
    analysis = extra["analysis"]
    assert analysis["base_voice"] == "joe"  # a male espeak voice: the male Piper base
    assert 70 < analysis["clip"]["median_f0_hz"] < 200
    sim = analysis["similarity"]
    assert sim["method"] in (similarity.RESEMBLYZER, similarity.MFCC)
    assert -1.0 <= sim["score"] <= 1.0 and -1.0 <= sim["base_score"] <= 1.0
    assert (store.root / "sam" / "reference.wav").is_file()
    audio = np.concatenate(list(build_synthesizer(store.get("sam"), store.get).synthesize("Hi.")))
    assert np.all(np.isfinite(audio)) and audio.size > 1000


@pytest.mark.slow
def test_female_clip_tries_a_kokoro_base_and_keeps_the_closer(store: VoiceStore) -> None:
    spec = store.register("clip", "Kim", {"kim.wav": clip("en-us+f3")}, {"description": "K"})
    extra = spec.model_extra or {}
    analysis = extra["analysis"]
    assert analysis["clip"]["median_f0_hz"] > 165  # a female espeak voice
    candidates = analysis["similarity"]["candidates"]
    assert "joe" in candidates and any(k.startswith("jf_") for k in candidates)
    assert analysis["base_voice"] == max(candidates, key=candidates.__getitem__)
    assert spec.engine == ("piper" if analysis["base_voice"] == "joe" else "kokoro")
    assert spec.description == "K"


@pytest.mark.parametrize("method", [similarity.MFCC, None])
def test_similarity_ranks_same_speaker_higher(method: str | None) -> None:
    from voice_chat.engines.tts_piper import PiperSynth

    joe = PiperSynth("embedded:joe-medium")
    a = np.concatenate(list(joe.synthesize("The cat sat on the warm windowsill all afternoon.")))
    b = np.concatenate(list(joe.synthesize("Please remember to buy bread and milk tomorrow.")))
    other = espeak("Please remember to buy bread and milk tomorrow.", rate=22050, voice="en-us+f3")
    same, used = similarity.similarity(a, 22050, b, 22050, use=method)
    different, _ = similarity.similarity(a, 22050, other, 22050, use=method)
    assert used == (method or similarity.method())
    assert same > different
