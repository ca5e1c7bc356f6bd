"""The Ray runtime keeps the local runtime's interface (no Ray needed to check it)."""

from __future__ import annotations

import inspect

from voice_chat.runtime.local import Runtime
from voice_chat.runtime.ray.engines import RayRuntime


def test_ray_runtime_overrides_keep_the_signatures() -> None:
    overridden = [name for name in vars(RayRuntime) if not name.startswith("__")]
    shared = [name for name in overridden if hasattr(Runtime, name)]
    assert {"_transcribe", "generate", "synthesize", "prepare_voice", "load"} <= set(shared)
    for name in shared:
        ours = inspect.signature(getattr(RayRuntime, name))
        theirs = inspect.signature(getattr(Runtime, name))
        assert list(ours.parameters) == list(theirs.parameters), name
        for param in ours.parameters.values():
            assert param.default == theirs.parameters[param.name].default, (name, param.name)
