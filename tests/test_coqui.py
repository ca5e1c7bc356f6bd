"""The Coqui TTS engine, loaded through the same code path as a user's checkpoint.

Runs only where Coqui is installed (``scripts/install-coqui.sh``, then
``.venv-coqui/bin/python -m pytest -m coqui``); elsewhere it is skipped.

No Coqui checkpoint ships in any package and nothing may be downloaded, so the test builds a
small VITS with random weights (``VitsConfig``/``VitsArgs``/``Vits.init_from_config``), saves it
as a user would have it (``model.pth`` holding ``{"model": state_dict}`` plus ``config.json``)
and loads it with ``engine: "coqui"`` + ``model_path``/``config_path`` via ``build_synthesizer``,
via voice registration, and as a cached model name under ``$TTS_HOME``.

What this proves: checkpoint loading, config parsing, sample rate, sentence chunking, the
factory branch, registration with test synthesis, and the no-download cache lookup.
What it does not prove: audio quality (random weights speak noise) or voice cloning
(``speaker_wav`` needs XTTS/YourTTS weights, which are not available here).
"""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

TTS = pytest.importorskip(
    "TTS", reason="Coqui TTS is not installed in this venv (optional: scripts/install-coqui.sh)"
)

from voice_chat.engines.base import EngineError  # noqa: E402
from voice_chat.engines.tts import build_synthesizer  # noqa: E402
from voice_chat.engines.voices import VoiceSpec  # noqa: E402
from voice_chat.voicelab import VoiceStore  # noqa: E402

pytestmark = pytest.mark.coqui
SHIPPED = Path(__file__).resolve().parent.parent / "voices"


@pytest.fixture(scope="module")
def tiny_vits(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    import torch
    from TTS.config.shared_configs import BaseAudioConfig
    from TTS.tts.configs.vits_config import VitsArgs, VitsConfig
    from TTS.tts.models.vits import Vits

    args = VitsArgs(
        hidden_channels=32,
        hidden_channels_ffn_text_encoder=64,
        num_layers_text_encoder=2,
        num_layers_flow=2,
        num_layers_posterior_encoder=2,
        resblock_type_decoder="2",
        resblock_kernel_sizes_decoder=[3],
        resblock_dilation_sizes_decoder=[[1, 3]],
        upsample_rates_decoder=[8, 8, 4],  # product = hop length 256
        upsample_initial_channel_decoder=32,
        upsample_kernel_sizes_decoder=[16, 16, 8],
        init_discriminator=False,
    )
    config = VitsConfig(
        model_args=args,
        audio=BaseAudioConfig(sample_rate=22050),
        use_phonemes=False,
        text_cleaner="basic_cleaners",
    )
    torch.manual_seed(0)
    with warnings.catch_warnings():  # 0.28 calls init_from_config deprecated; it still works
        warnings.simplefilter("ignore", UserWarning)
        model = Vits.init_from_config(config)
    folder = tmp_path_factory.mktemp("tiny-vits")
    torch.save({"model": model.state_dict()}, folder / "model.pth")
    config.save_json(str(folder / "config.json"))
    return folder / "model.pth", folder / "config.json"


def check(audio_chunks: list[np.ndarray], sentences: int) -> np.ndarray:
    assert len(audio_chunks) == sentences  # one chunk per sentence: streaming is kept
    audio = np.concatenate(audio_chunks)
    assert audio.dtype == np.float32 and np.all(np.isfinite(audio))
    seconds = audio.size / 22050
    assert 0.2 < seconds < 30.0, seconds  # plausible length for two short sentences
    return audio


def test_checkpoint_via_build_synthesizer(tiny_vits: tuple[Path, Path]) -> None:
    model, config = tiny_vits
    spec = VoiceSpec.model_validate(
        {
            "id": "tiny",
            "name": "Tiny",
            "engine": "coqui",
            "model_path": str(model),
            "config_path": str(config),
        }
    )
    synth = build_synthesizer(spec, lambda _: spec)
    assert synth.sample_rate == 22050
    check(list(synth.synthesize("Hello there. This is a small test!")), 2)


def test_checkpoint_upload_registers(tiny_vits: tuple[Path, Path], tmp_path: Path) -> None:
    model, config = tiny_vits
    store = VoiceStore(tmp_path, SHIPPED)
    files = {"model.pth": model.read_bytes(), "config.json": config.read_bytes()}
    spec = store.register("coqui", "Tiny Coqui", files, {"speed": 1.2})
    assert spec.engine == "coqui" and Path(spec.model_extra["model_path"]).is_file()
    synth = build_synthesizer(store.get("tiny-coqui"), store.get)
    check(list(synth.synthesize("One sentence. And another one.")), 2)
    assert not any(store.staging.iterdir())


def test_cached_model_name_never_downloads(
    tiny_vits: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model, config = tiny_vits
    monkeypatch.setenv("TTS_HOME", str(tmp_path))
    folder = tmp_path / "tts" / "tts_models--en--tiny--vits"
    folder.mkdir(parents=True)
    shutil.copy(model, folder / "model.pth")
    shutil.copy(config, folder / "config.json")
    spec = VoiceSpec.model_validate(
        {"id": "c", "name": "C", "engine": "coqui", "model": "tts_models/en/tiny/vits"}
    )
    check(list(build_synthesizer(spec, lambda _: spec).synthesize("Cached. Works.")), 2)
    missing = spec.model_copy(update={"model": "tts_models/en/vctk/vits"})
    with pytest.raises(EngineError, match="not in the local cache"):
        build_synthesizer(missing, lambda _: missing)


def test_clip_with_a_cloning_model_gives_a_coqui_voice(
    tiny_vits: tuple[Path, Path], tmp_path: Path
) -> None:
    """Plumbing only: the tiny VITS stands in for XTTS/YourTTS (it ignores ``speaker_wav``)."""
    from speech import espeak

    from voice_chat.audio.pcm import wav_bytes

    model, _ = tiny_vits
    store = VoiceStore(tmp_path, SHIPPED, clone_model=str(model))
    text = "Hello, my name is Sam. I live near the sea and I walk on the beach every morning."
    clip = wav_bytes(espeak(text, rate=16000), 16000)
    spec = store.register("clip", "Sam", {"sam.wav": clip})
    extra = spec.model_extra or {}
    assert spec.engine == "coqui" and not spec.approximation
    assert Path(extra["speaker_wav"]) == store.root / "sam" / "reference.wav"
    assert extra["analysis"]["cloned_with"] == {"model_path": str(model)}
    check(list(build_synthesizer(store.get("sam"), store.get).synthesize("Hi. Bye.")), 2)
