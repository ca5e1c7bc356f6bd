"""Voice definitions: small JSON files naming an engine, a model and delivery parameters.

Shipped voices live in ``voices/``; voices users register live in ``<data>/voices/`` and
override shipped ones with the same id.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

VOICE_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


class VoiceSpec(BaseModel):
    """One voice. Engine-specific fields beyond these are kept as they are."""

    model_config = ConfigDict(extra="allow")

    id: str = Field(pattern=VOICE_ID.pattern)
    name: str = Field(min_length=1, max_length=100)
    description: str = Field("", max_length=1000)
    engine: str = Field(min_length=1, max_length=32)
    model: str | None = Field(None, max_length=1000)
    speaker: int | None = Field(None, ge=0, le=10000)
    speed: float = Field(1.0, ge=0.5, le=2.0)
    variation: float | None = Field(None, ge=0.0, le=1.5)
    pitch_semitones: float = Field(0.0, ge=-12.0, le=12.0)
    formant_shift: float = Field(1.0, ge=0.7, le=1.4)


class VoiceError(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def load_voice_file(path: Path, base_dir: Path) -> VoiceSpec:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        spec = VoiceSpec.model_validate(raw)
    except (OSError, ValueError, ValidationError) as exc:
        raise VoiceError("invalid_voice", f"{path.name}: {exc}") from exc
    if spec.model and not spec.model.startswith("embedded") and not Path(spec.model).is_absolute():
        spec.model = str((base_dir / spec.model).resolve())
    return spec


class VoiceRegistry:
    def __init__(self, shipped_dir: Path, user_dir: Path) -> None:
        self.shipped_dir = shipped_dir
        self.user_dir = user_dir

    def _files(self) -> dict[str, Path]:
        found: dict[str, Path] = {}
        for folder in (self.shipped_dir, self.user_dir):
            if folder.is_dir():
                for path in sorted(folder.glob("*.json")):
                    found[path.stem] = path
                for path in sorted(folder.glob("*/voice.json")):
                    found[path.parent.name] = path
        return found

    def list(self) -> list[VoiceSpec]:
        out = []
        for path in self._files().values():
            try:
                out.append(load_voice_file(path, path.parent))
            except VoiceError:
                continue  # a broken user file must not hide the others
        return out

    def get(self, voice_id: str) -> VoiceSpec:
        path = self._files().get(voice_id)
        if path is None:
            raise VoiceError("unknown_voice", f"no voice {voice_id!r}")
        return load_voice_file(path, path.parent)

    def is_shipped(self, voice_id: str) -> bool:
        path = self._files().get(voice_id)
        return path is not None and self.shipped_dir in path.parents
