"""Character registry: Character Card files in ``characters/`` and ``<data>/characters/``."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHARACTER_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


class CharacterError(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class Character:
    id: str
    card: dict[str, Any]
    shipped: bool = True
    avatar: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def data(self) -> dict[str, Any]:
        return self.card.get("data", self.card)

    @property
    def name(self) -> str:
        return str(self.data.get("name", self.id))

    @property
    def description(self) -> str:
        data = self.data
        notes = data.get("creator_notes") or ""
        return str(notes or data.get("description", ""))[:300]

    @property
    def voice(self) -> str | None:
        ext = self.data.get("extensions") or {}
        vc = ext.get("voice_chat") if isinstance(ext, dict) else None
        voice = vc.get("voice") if isinstance(vc, dict) else None
        return voice if isinstance(voice, str) else None

    @property
    def greeting(self) -> str:
        return str(self.data.get("first_mes", ""))


def _read_card(path: Path) -> dict[str, Any]:
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CharacterError("invalid_card", f"{path.name}: {exc}") from exc
    if not isinstance(card, dict):
        raise CharacterError("invalid_card", f"{path.name}: not a JSON object")
    return card


class CharacterRegistry:
    def __init__(self, shipped_dir: Path, user_dir: Path) -> None:
        self.shipped_dir = shipped_dir
        self.user_dir = user_dir

    def _files(self) -> dict[str, tuple[Path, bool]]:
        found: dict[str, tuple[Path, bool]] = {}
        for folder, shipped in ((self.shipped_dir, True), (self.user_dir, False)):
            if folder.is_dir():
                for path in sorted(folder.glob("*.json")):
                    if CHARACTER_ID.match(path.stem):
                        found[path.stem] = (path, shipped)
        return found

    def list(self) -> list[Character]:
        out = []
        for cid in self._files():
            try:
                out.append(self.get(cid))
            except CharacterError:
                continue
        return out

    def get(self, character_id: str) -> Character:
        entry = self._files().get(character_id)
        if entry is None:
            raise CharacterError("unknown_character", f"no character {character_id!r}")
        path, shipped = entry
        avatar = path.with_suffix(".png")
        return Character(
            id=character_id,
            card=_read_card(path),
            shipped=shipped,
            avatar=avatar if avatar.is_file() else None,
        )
