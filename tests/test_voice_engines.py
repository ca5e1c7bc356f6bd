"""Voices through the one factory (build_synthesizer): derived, Kokoro, blends, shipped voices."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from voice_chat.audio import dsp
from voice_chat.engines.base import EngineError
from voice_chat.engines.tts import build_synthesizer, flatten
from voice_chat.engines.tts_derived import DerivedSynth
from voice_chat.engines.tts_kokoro import ipa_to_kokoro, phonemize_english, style_array
from voice_chat.engines.voices import VoiceError, VoiceRegistry, VoiceSpec

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "voices"
TEXT = "Good morning! How are you feeling today?"


def spec(**fields: object) -> VoiceSpec:
    return VoiceSpec.model_validate({"id": "t", "name": "T", **fields})


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> VoiceRegistry:
    return VoiceRegistry(SHIPPED, tmp_path_factory.mktemp("user-voices"))


def say(voice: VoiceSpec, registry: VoiceRegistry, text: str = TEXT) -> tuple[np.ndarray, int]:
    synth = build_synthesizer(voice, registry.get)
    chunks = list(synth.synthesize(text))
    assert chunks and all(c.dtype == np.float32 for c in chunks)
    audio = np.concatenate(chunks)
    assert np.all(np.isfinite(audio)) and np.sqrt(np.mean(audio**2)) > 0.01
    return audio, synth.sample_rate


def test_shipped_voices_load(registry: VoiceRegistry) -> None:
    ids = {v.id for v in registry.list()}
    assert {"joe", "aria", "sage", "pip", "yuki"} <= ids
    for voice_id in ids:
        assert registry.is_shipped(voice_id)


def test_derived_voice_is_a_shifted_joe(registry: VoiceRegistry) -> None:
    joe, rate = say(registry.get("joe"), registry)
    voice = spec(engine="derived", base="joe", pitch_semitones=7.0, formant_shift=1.2)
    synth = build_synthesizer(voice, registry.get)
    assert isinstance(synth, DerivedSynth) and synth.sample_rate == rate
    shifted, _ = say(voice, registry)
    ratio = dsp.median_f0(shifted, rate) / dsp.median_f0(joe, rate)
    assert ratio == pytest.approx(2 ** (7 / 12), rel=0.12)  # different takes: looser than DSP tests
    assert dsp.spectral_centroid(shifted, rate) > dsp.spectral_centroid(joe, rate)


def test_derived_chain_is_flattened(registry: VoiceRegistry) -> None:
    aria = registry.get("aria")
    child = spec(engine="derived", base="aria", pitch_semitones=2.0, formant_shift=1.1, speed=1.2)
    voices = {"aria": aria, "joe": registry.get("joe"), "t": child}
    root, pitch, formant, expressive = flatten(child, voices.__getitem__)
    assert root.id == "joe" and root.engine == "piper"
    assert pitch == pytest.approx(aria.pitch_semitones + 2.0)
    assert formant == pytest.approx(aria.formant_shift * 1.1)
    assert expressive == pytest.approx(aria.expressiveness)
    assert root.speed == pytest.approx(aria.speed * 1.2)


def test_derived_errors(registry: VoiceRegistry) -> None:
    with pytest.raises(EngineError, match="needs 'base'"):
        build_synthesizer(spec(engine="derived"), registry.get)
    with pytest.raises(EngineError, match="base voice"):
        build_synthesizer(spec(engine="derived", base="nobody"), registry.get)
    loop = {
        "a": spec(id="a", engine="derived", base="b"),
        "b": spec(id="b", engine="derived", base="a"),
    }
    with pytest.raises(EngineError, match="circular"):
        build_synthesizer(loop["a"], loop.__getitem__)
    with pytest.raises(EngineError, match="unknown TTS engine"):
        build_synthesizer(spec(engine="nope"), registry.get)


def test_pitch_fields_on_an_engine_voice_get_the_dsp_pass(registry: VoiceRegistry) -> None:
    synth = build_synthesizer(spec(engine="piper", pitch_semitones=3.0), registry.get)
    assert isinstance(synth, DerivedSynth)
    assert not isinstance(build_synthesizer(registry.get("joe"), registry.get), DerivedSynth)


def test_ipa_mapping_to_kokoro_symbols() -> None:
    assert ipa_to_kokoro("həlˈoʊ") == "həlˈO"
    assert ipa_to_kokoro("maɪ nˈeɪm") == "mI nˈAm"
    assert ipa_to_kokoro("tʃˈɛɹi dʒˈʌdʒ") == "ʧˈɛɹi ʤˈʌʤ"
    assert ipa_to_kokoro("wˈɛðɚ") == "wˈɛðəɹ"
    assert ipa_to_kokoro("bˈʌʔn̩") == "bˈʌtn"
    assert ipa_to_kokoro("θˈɜːɾi") == "θˈɜɹɾi"
    sentences = phonemize_english("Hello there. How are you?")
    assert len(sentences) == 2 and "O" in sentences[0]


def test_blend_is_a_weighted_mix() -> None:
    alpha, kumo = style_array("jf_alpha"), style_array("jm_kumo")
    mixed = style_array(blend={"jf_alpha": 0.7, "jm_kumo": 0.3})
    assert mixed.shape == (510, 1, 256)
    assert np.allclose(mixed, 0.7 * alpha + 0.3 * kumo, atol=1e-6)
    with pytest.raises(EngineError, match="unknown Kokoro voice"):
        style_array(blend={"jf_nobody": 1.0})
    with pytest.raises(ValueError, match="blend weights"):
        spec(engine="kokoro", blend={"jf_alpha": -1.0})


@pytest.mark.slow
def test_kokoro_voices_and_blend(registry: VoiceRegistry) -> None:
    yuki, rate = say(registry.get("yuki"), registry, "Hello there, nice to meet you.")
    assert rate == 24000
    kumo, _ = say(
        spec(engine="kokoro", voice="jm_kumo"), registry, "Hello there, nice to meet you."
    )
    half, _ = say(
        spec(engine="kokoro", blend={"jf_alpha": 0.5, "jm_kumo": 0.5}),
        registry,
        "Hello there, nice to meet you.",
    )
    f_yuki, f_kumo, f_half = (dsp.median_f0(a, rate) for a in (yuki, kumo, half))
    assert f_kumo < f_half < f_yuki  # the blend sits between its two styles
    assert f_yuki > 180 and f_kumo < 140


@pytest.mark.slow
def test_shipped_voices_are_clearly_different(registry: VoiceRegistry) -> None:
    """Piper-based shipped voices differ in pitch as designed (Kokoro ones: test above).

    Piper samples its noise afresh on every call, so one take of Joe measured anywhere from
    153 to 191 Hz; each voice's pitch is the median of three takes."""
    f0 = {
        v: float(np.median([dsp.median_f0(*say(registry.get(v), registry)) for _ in range(3)]))
        for v in ("joe", "aria", "sage", "pip")
    }
    assert f0["sage"] < f0["joe"] < f0["aria"] < f0["pip"] or f0["sage"] < f0["joe"] < f0["pip"]
    assert f0["aria"] > 1.2 * f0["joe"] and f0["sage"] < 0.9 * f0["joe"]


def test_unknown_voice_error_shape(registry: VoiceRegistry) -> None:
    with pytest.raises(VoiceError) as info:
        registry.get("nobody")
    assert info.value.code == "unknown_voice"
