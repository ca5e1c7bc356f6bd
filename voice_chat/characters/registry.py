"""Character registry: shipped cards in ``characters/``, user cards in ``<data>/characters/``.

Shipped cards (``characters/<id>.json``, optional ``<id>.svg`` portrait and ``<id>.png``, the same
picture as a raster for exports) are read-only. User cards
are stored by :class:`voice_chat.cards.library.CardLibrary` (original bytes + the card JSON), so
an export gives back every unknown field, extension and asset. Giving a shipped character a
voice stores a user copy under the same id; deleting that copy restores the shipped card.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from voice_chat.cards import (
    Card,
    CardError,
    card_from_dict,
    choose_greeting,
    export_card,
    load_card,
    substitute,
)
from voice_chat.cards.library import CARD_ID, CardLibrary
from voice_chat.cards.limits import MAX_CHARX_BYTES

from .editing import CharacterFields, apply_fields, new_card, set_picture
from .errors import CharacterError

CHARACTER_ID = CARD_ID


@dataclass(frozen=True)
class MediaFile:
    path: Path
    media_type: str
    name: str = ""


@dataclass
class Character:
    id: str
    card: Card
    shipped: bool = True
    avatar: Path | None = None
    avatar_type: str = "image/png"
    voice_sample: MediaFile | None = None
    customized: bool = False  # a shipped character with user changes (e.g. its voice)
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.card, dict):  # a plain card object, e.g. in tests
            self.card = card_from_dict(self.card)

    @property
    def data(self) -> dict[str, Any]:
        return self.card.data

    @property
    def name(self) -> str:
        return self.card.display_name or self.id

    @property
    def description(self) -> str:
        """What the picker shows: the description (macros filled in), else the creator's notes."""
        text = self.card.description.strip() or self.card.creator_notes.strip()
        text = substitute(text, char=self.name, user="you").strip()
        if len(text) <= 300:
            return text
        return text[:300].rsplit(" ", 1)[0].rstrip(",.;: ") + "…"

    @property
    def voice(self) -> str | None:
        return self.card.voice

    @property
    def greeting(self) -> str:
        """``first_mes`` with macros filled in (the session picks among all greetings)."""
        found = choose_greeting(self.card, 0) if self.card.first_mes.strip() else None
        return found.text if found else ""

    @property
    def greeting_count(self) -> int:
        return sum(1 for g in [self.card.first_mes, *self.card.alternate_greetings] if g.strip())


class CharacterRegistry:
    def __init__(self, shipped_dir: Path, user_dir: Path) -> None:
        self.shipped_dir = shipped_dir
        self.user_dir = user_dir
        self.library = CardLibrary(user_dir)
        self._lock = threading.RLock()  # one writer at a time; concurrent imports are safe
        self._cache: dict[tuple[str, bool], tuple[object, Character]] = {}

    # ------------------------------------------------------------------ reads
    def _shipped_path(self, character_id: str) -> Path | None:
        path = self.shipped_dir / f"{character_id}.json"
        return path if CHARACTER_ID.match(character_id) and path.is_file() else None

    def _shipped_ids(self) -> list[str]:
        if not self.shipped_dir.is_dir():
            return []
        return sorted(p.stem for p in self.shipped_dir.glob("*.json") if CHARACTER_ID.match(p.stem))

    def is_shipped(self, character_id: str) -> bool:
        return self._shipped_path(character_id) is not None

    def list(self) -> list[Character]:
        out = []
        for cid in dict.fromkeys([*self._shipped_ids(), *self.library.ids()]):
            try:
                out.append(self.get(cid))
            except (ValueError, OSError):  # CardError, CharacterError, bad JSON
                continue  # a broken file must not hide the others
        return out

    def get(self, character_id: str) -> Character:
        if CHARACTER_ID.match(character_id):
            try:
                user = self._user(character_id)
                if user is not None:
                    return user
                path = self._shipped_path(character_id)
                if path is not None:
                    return self._shipped(character_id, path)
            except (CardError, OSError) as exc:
                raise CharacterError(
                    "broken_character", f"character {character_id!r} cannot be read: {exc}"
                ) from exc
        raise CharacterError("unknown_character", f"no character {character_id[:64]!r}")

    def _shipped(self, cid: str, path: Path) -> Character:
        stat = path.stat()
        key = (stat.st_mtime_ns, stat.st_size)
        cached = self._cache.get((cid, True))
        if cached is not None and cached[0] == key:
            return cached[1]
        avatar, avatar_type = _shipped_avatar(path)
        character = Character(
            cid, load_card(path.read_bytes()), avatar=avatar, avatar_type=avatar_type
        )
        self._cache[(cid, True)] = (key, character)
        return character

    def _user(self, cid: str) -> Character | None:
        meta = self.library.meta(cid)
        if meta is None:
            return None
        cached = self._cache.get((cid, False))
        if cached is not None and cached[0] == meta:
            return cached[1]
        loaded = self.library.load(cid)
        if loaded is None:
            return None
        meta, card = loaded
        avatar, sample = meta.get("avatar") or {}, meta.get("voice_sample") or {}
        shipped = self._shipped_path(cid)
        picture = self.library.path(cid, avatar["file"]) if avatar else None
        picture_type = avatar.get("media_type", "image/png")
        if shipped is not None and not meta.get("own_avatar"):
            # A shipped character with user changes keeps its drawn portrait.
            picture, picture_type = _shipped_avatar(shipped)
        character = Character(
            cid,
            card,
            shipped=shipped is not None,
            customized=shipped is not None,
            avatar=picture,
            avatar_type=picture_type,
            voice_sample=MediaFile(
                self.library.path(cid, sample["file"]), sample["media_type"], sample["name"]
            )
            if sample
            else None,
            meta=meta,
        )
        self._cache[(cid, False)] = (meta, character)
        return character

    def full_card(self, character_id: str) -> Card:
        """The card with its picture and embedded files, for export."""
        character = self.get(character_id)
        if not character.shipped or character.customized:
            card = self.library.full_card(character_id)
            if card is None:
                raise CharacterError("unknown_character", f"no character {character_id!r}")
            return card
        card = character.card.copy()
        raster = self.shipped_dir / f"{character_id}.png"
        if raster.is_file():
            card.image = raster.read_bytes()
        return card

    def export(self, character_id: str, fmt: str) -> bytes:
        return export_card(self.full_card(character_id), fmt)  # type: ignore[arg-type]

    # ----------------------------------------------------------------- writes
    def add(self, data: bytes, *, voice: str | None = None) -> Character:
        """Import a card file (JSON, PNG or CHARX). Raises ``CardError`` for a bad card."""
        card = _parse(data, voice)
        with self._lock:
            cid = self.library.add(card, data, reserved=self.is_shipped)
        return self.get(cid)

    def replace(self, character_id: str, data: bytes, *, voice: str | None = None) -> Character:
        """Replace a user card, keeping its id (and so its conversations)."""
        card = _parse(data, voice)
        with self._lock:
            if self.is_shipped(character_id):
                raise CharacterError(
                    "shipped_character", f"{character_id!r} is shipped; import a copy instead"
                )
            self.get(character_id)
            self.library.replace(character_id, card, data, keep_files=False)
        return self.get(character_id)

    def compose(
        self,
        fields: CharacterFields,
        picture: bytes | None = None,
        *,
        character_id: str | None = None,
    ) -> Character:
        """Create (no ``character_id``) or edit a character from the page's fields.

        ``picture`` is a checked PNG (:func:`voice_chat.characters.pictures.picture_png`). An
        edit keeps every field it does not name; editing a shipped character stores a user
        copy under its id (deleting that copy brings the shipped one back). Writes are
        serialised and each commits in one rename, so concurrent edits never mix: the last wins.
        """
        extra = {"own_avatar": True} if picture is not None else None
        with self._lock:
            if character_id is None:
                card = new_card(fields)
                if picture is not None:
                    set_picture(card, picture)
                source = export_card(card, "png") if picture is not None else None
                cid = self.library.add(card, source, reserved=self.is_shipped, extra=extra)
                return self.get(cid)
            character = self.get(character_id)
            card = apply_fields(self.full_card(character_id), fields)
            if picture is not None:
                set_picture(card, picture)
            if character.shipped and not character.customized:
                source = export_card(card, "png") if card.image is not None else None
                self.library.add(
                    card, source, reserved=self.is_shipped, card_id=character_id, extra=extra
                )
            elif picture is not None:
                source = export_card(card, "charx" if card.files else "png")
                self.library.replace(character_id, card, source, keep_files=False, extra=extra)
            else:
                self.library.replace(character_id, card, None, keep_files=True)
        return self.get(character_id)

    def set_voice(self, character_id: str, voice: str | None) -> Character:
        """Assign a voice (None: the server default). Shipped cards get a user copy."""
        with self._lock:
            character = self.get(character_id)
            card = character.card.copy()
            card.set_voice(voice)
            if character.shipped and not character.customized:
                shipped = self.full_card(character_id)
                shipped.set_voice(voice)
                source = export_card(shipped, "png") if shipped.image is not None else None
                self.library.add(shipped, source, reserved=self.is_shipped, card_id=character_id)
            else:
                self.library.replace(character_id, card, None, keep_files=True)
        return self.get(character_id)

    def delete(self, character_id: str) -> Character | None:
        """Delete a user card (a customized shipped card goes back to the shipped one).

        Returns the shipped character that is back, or None.
        """
        with self._lock:
            character = self.get(character_id)
            if character.shipped and not character.customized:
                raise CharacterError(
                    "shipped_character", f"{character_id!r} is shipped and cannot be deleted"
                )
            self.library.delete(character_id)
            self._cache.pop((character_id, False), None)
        return self.get(character_id) if character.shipped else None


def _shipped_avatar(card_path: Path) -> tuple[Path | None, str]:
    """The portrait of a shipped card: its SVG drawing, else its PNG, else none."""
    svg, png = card_path.with_suffix(".svg"), card_path.with_suffix(".png")
    if svg.is_file():
        return svg, "image/svg+xml"
    return (png, "image/png") if png.is_file() else (None, "image/png")


def _parse(data: bytes, voice: str | None) -> Card:
    if len(data) > MAX_CHARX_BYTES:
        raise CardError("too_large", f"the upload is over {MAX_CHARX_BYTES} bytes")
    card = load_card(data)
    if voice is not None:
        card.set_voice(voice or None)
    return card
