"""ONNX Runtime sessions on the CPU, set up one way for every model (VAD, Piper, Kokoro)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

QUIET = 3  # onnxruntime log levels: 3 = errors only, 4 = fatal only


def cpu_session(path: str | Path, threads: int = 1, log_level: int = QUIET) -> Any:
    """An ``onnxruntime.InferenceSession`` of ``path`` on the CPU provider.

    ``threads`` intra-op threads (one inter-op thread): the servers size their own worker
    pools, so one session never takes every core.
    """
    import onnxruntime

    opts = onnxruntime.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = log_level
    return onnxruntime.InferenceSession(
        str(path), sess_options=opts, providers=["CPUExecutionProvider"]
    )
