"""Voice definitions: small JSON files naming an engine, a model and delivery parameters.

Shipped voices live in ``voices/``; voices users register live in ``<data>/voices/`` and
override shipped ones with the same id.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from voice_chat.errors import VoiceChatError

VOICE_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
ENGINES = ("piper", "kokoro", "derived", "coqui")
PATH_FIELDS = ("model", "config", "model_path", "config_path", "speaker_wav")  # relative → file dir
KOKORO_VOICES = ("jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo")


class VoiceSpec(BaseModel):
    """One voice. Engine-specific fields beyond these are kept as they are."""

    model_config = ConfigDict(extra="allow")

    id: str = Field(pattern=VOICE_ID.pattern)
    name: str = Field(min_length=1, max_length=100)
    description: str = Field("", max_length=1000)
    engine: str = Field(min_length=1, max_length=32)
    model: str | None = Field(None, max_length=1000)
    # an index (Piper) or a speaker name (Piper speaker_id_map, Coqui multi-speaker models)
    speaker: (
        Annotated[int, Field(ge=0, le=10000)]
        | Annotated[str, Field(min_length=1, max_length=100)]
        | None
    ) = None
    speed: float = Field(1.0, ge=0.5, le=2.0)
    variation: float | None = Field(None, ge=0.0, le=1.5)
    # WORLD vocoder changes (voice_chat.audio.dsp), applied to any engine's output
    pitch_semitones: float = Field(0.0, ge=-12.0, le=12.0)
    formant_shift: float = Field(1.0, ge=0.7, le=1.4)
    expressiveness: float = Field(1.0, ge=0.0, le=2.0)
    # engine "derived": the voice this one is made from
    base: str | None = Field(None, pattern=VOICE_ID.pattern)
    # engine "kokoro": one packaged style (voice) or a weighted mix of several (blend)
    voice: str | None = Field(None, max_length=64)
    blend: dict[str, float] | None = None
    language: str | None = Field(None, max_length=16)
    # True when the voice only approximates a reference clip (no cloning engine was present)
    approximation: bool = False

    @field_validator("blend")
    @classmethod
    def _check_blend(cls, value: dict[str, float] | None) -> dict[str, float] | None:
        if value is None:
            return None
        if not 1 <= len(value) <= 5:
            raise ValueError("a blend mixes 1 to 5 voices")
        if any(not 0.0 < w <= 1.0 for w in value.values()):
            raise ValueError("blend weights must be in (0, 1]")
        total = sum(value.values())
        return {name: round(w / total, 4) for name, w in value.items()}


class VoiceError(VoiceChatError, ValueError):
    """A voice cannot be found, registered, read or used (codes in voice_chat.errors)."""


def load_voice_file(path: Path, base_dir: Path) -> VoiceSpec:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        spec = VoiceSpec.model_validate(raw)
    except (OSError, ValueError, ValidationError) as exc:
        raise VoiceError("invalid_voice", f"{path.name}: {exc}") from exc
    for name in PATH_FIELDS:
        value = getattr(spec, name, None)
        if isinstance(value, str) and value and not value.startswith("embedded"):
            if not Path(value).is_absolute() and (name != "model" or spec.engine != "coqui"):
                setattr(spec, name, str((base_dir / value).resolve()))
    return spec


class VoiceRegistry:
    """Voice files in the shipped and user folders, listed again only when a folder changes."""

    def __init__(self, shipped_dir: Path, user_dir: Path) -> None:
        self.shipped_dir = shipped_dir
        self.user_dir = user_dir
        self._listing: tuple[tuple[int, ...], dict[str, Path]] | None = None

    def _stamp(self) -> tuple[int, ...]:
        """Folder mtimes: adding, renaming or removing an entry changes them."""
        stamp: list[int] = []
        for folder in (self.shipped_dir, self.user_dir):
            try:
                stamp.append(folder.stat().st_mtime_ns)
            except OSError:
                stamp.append(-1)
        return tuple(stamp)

    def _files(self) -> dict[str, Path]:
        stamp = self._stamp()
        if self._listing is not None and self._listing[0] == stamp:
            return self._listing[1]
        found = self._scan()
        self._listing = (stamp, found)
        return found

    def refresh(self) -> None:
        """Forget the listing (after a registration or removal in this process)."""
        self._listing = None

    def _scan(self) -> dict[str, Path]:
        found: dict[str, Path] = {}
        for folder in (self.shipped_dir, self.user_dir):
            if folder.is_dir():
                for path in sorted(folder.glob("*.json")):
                    found[path.stem] = path
                for path in sorted(folder.glob("*/voice.json")):
                    if VOICE_ID.match(path.parent.name):  # skips .staging and the like
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

    def path(self, voice_id: str) -> Path | None:
        """The voice's definition file (None if there is no such voice)."""
        return self._files().get(voice_id)

    def get(self, voice_id: str) -> VoiceSpec:
        path = self._files().get(voice_id)
        if path is None:
            raise VoiceError("unknown_voice", f"no voice {voice_id!r}")
        return load_voice_file(path, path.parent)

    def is_shipped(self, voice_id: str) -> bool:
        path = self._files().get(voice_id)
        return path is not None and self.shipped_dir in path.parents
