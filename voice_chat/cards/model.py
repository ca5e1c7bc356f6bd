"""The normalized card model: one :class:`Card` for V1, V2 and V3 cards.

``Card.data`` is the card's ``data`` object in the V3 shape (a superset of V2), *including every
unknown field and every ``extensions`` key* so that export never loses anything. Fields that
were only at the top level of the original file (e.g. SillyTavern's ``avatar``/``chat`` or
``create_date``) are kept in ``Card.root_extras`` and written back to the top level on export.
Build a card with :func:`voice_chat.cards.normalize.card_from_dict` (validated), not by hand.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any, Literal

from .assets import Asset, VoiceSample, find_avatar, find_voice_sample, resolve_assets
from .errors import CardError
from .limits import MAX_VOICE_ID_CHARS

if TYPE_CHECKING:
    from .lorebook import Lorebook

SourceSpec = Literal["v1", "v2", "v3"]

V1_FIELDS = (
    "name",
    "description",
    "personality",
    "scenario",
    "first_mes",
    "mes_example",
)
V2_TEXT_FIELDS = (
    *V1_FIELDS,
    "creator_notes",
    "system_prompt",
    "post_history_instructions",
    "creator",
    "character_version",
)
V2_FIELDS = (
    *V2_TEXT_FIELDS,
    "alternate_greetings",
    "character_book",
    "tags",
    "extensions",
)
V3_ONLY_FIELDS = (
    "assets",
    "nickname",
    "creator_notes_multilingual",
    "source",
    "group_only_greetings",
    "creation_date",
    "modification_date",
)
#: the project's own namespaced extension key: ``data.extensions.voice_chat``
EXTENSION_KEY = "voice_chat"


class Card:
    """A character card. Read fields through the properties; ``data`` holds everything."""

    def __init__(
        self,
        data: dict[str, Any],
        *,
        spec: SourceSpec = "v3",
        root_extras: dict[str, Any] | None = None,
        files: dict[str, bytes] | None = None,
        image: bytes | None = None,
        lorebook: Lorebook | None = None,
    ) -> None:
        self.data = data
        self.spec: SourceSpec = spec
        self.root_extras = root_extras or {}
        self.files = files or {}  # embedded files by zip path (CHARX), card.json excluded
        self.image = image  # the PNG the card came in: the ``ccdefault:`` icon
        self._lorebook = lorebook

    # --- text fields
    def _text(self, key: str) -> str:
        value = self.data.get(key)
        return value if isinstance(value, str) else ""

    @property
    def name(self) -> str:
        return self._text("name")

    @property
    def nickname(self) -> str:
        return self._text("nickname")

    @property
    def display_name(self) -> str:
        """What ``{{char}}`` expands to: the V3 ``nickname`` if set, else ``name``."""
        return self.nickname.strip() or self.name

    @property
    def description(self) -> str:
        return self._text("description")

    @property
    def personality(self) -> str:
        return self._text("personality")

    @property
    def scenario(self) -> str:
        return self._text("scenario")

    @property
    def first_mes(self) -> str:
        return self._text("first_mes")

    @property
    def mes_example(self) -> str:
        return self._text("mes_example")

    @property
    def system_prompt(self) -> str:
        return self._text("system_prompt")

    @property
    def post_history_instructions(self) -> str:
        return self._text("post_history_instructions")

    @property
    def creator_notes(self) -> str:
        return self._text("creator_notes")

    # --- list fields
    def _strings(self, key: str) -> list[str]:
        value = self.data.get(key)
        return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []

    @property
    def alternate_greetings(self) -> list[str]:
        return self._strings("alternate_greetings")

    @property
    def group_only_greetings(self) -> list[str]:
        return self._strings("group_only_greetings")

    @property
    def tags(self) -> list[str]:
        return self._strings("tags")

    @property
    def extensions(self) -> dict[str, Any]:
        """The live ``data.extensions`` dict (created if missing)."""
        ext = self.data.get("extensions")
        if not isinstance(ext, dict):
            ext = self.data["extensions"] = {}
        return ext

    @property
    def lorebook(self) -> Lorebook | None:
        """The parsed ``character_book`` (validated at import), or None."""
        book = self.data.get("character_book")
        if self._lorebook is None and isinstance(book, dict):
            from .lorebook import parse_lorebook

            self._lorebook = parse_lorebook(book)
        return self._lorebook

    # --- the project's extension
    @property
    def voice(self) -> str | None:
        """Voice id at ``data.extensions.voice_chat.voice``, or None."""
        ours = self.extensions.get(EXTENSION_KEY)
        voice = ours.get("voice") if isinstance(ours, dict) else None
        return voice if isinstance(voice, str) and voice.strip() else None

    def set_voice(self, voice: str | None) -> None:
        """Set (or with None, remove) the voice id, keeping other ``voice_chat`` keys."""
        ours = self.extensions.get(EXTENSION_KEY)
        if not isinstance(ours, dict):
            ours = {}
        if voice is None:
            ours.pop("voice", None)
        else:
            if not isinstance(voice, str) or not voice.strip():
                raise CardError("invalid_field", "voice must be a non-empty string")
            if len(voice) > MAX_VOICE_ID_CHARS:
                raise CardError("field_too_long", f"voice is over {MAX_VOICE_ID_CHARS} chars")
            ours["voice"] = voice
        self.extensions[EXTENSION_KEY] = ours

    # --- assets
    @property
    def assets(self) -> list[Asset]:
        """V3 assets with embedded bytes resolved (``embeded://``, ``ccdefault:``, ``data:``)."""
        return resolve_assets(self.data.get("assets"), self.files, self.image)

    def avatar(self) -> tuple[bytes, str] | None:
        """The character's picture as ``(bytes, media type)``, or None.

        A PNG is returned without its card chunks, so it can be served as a plain image.
        """
        found = find_avatar(self.assets)
        if found is not None and found[1] == "image/png":
            from .png import strip_card_chunks

            return strip_card_chunks(found[0]), found[1]
        return found

    def voice_sample(self) -> VoiceSample | None:
        """An audio asset usable to register a voice, or None."""
        return find_voice_sample(self.assets)

    # --- export
    def to_v2(self) -> dict[str, Any]:
        """A ``chara_card_v2`` object. V3-only and unknown fields stay in ``data``."""
        data = copy.deepcopy(self.data)
        data.setdefault("extensions", {})
        for key in ("alternate_greetings", "tags"):
            data.setdefault(key, [])
        for key in V2_TEXT_FIELDS:
            data.setdefault(key, "")
        return self._wrap("chara_card_v2", "2.0", data)

    def to_v3(self) -> dict[str, Any]:
        """A ``chara_card_v3`` object."""
        v2 = self.to_v2()
        v2["data"].setdefault("group_only_greetings", [])
        return self._wrap("chara_card_v3", "3.0", v2["data"])

    def _wrap(self, spec: str, version: str, data: dict[str, Any]) -> dict[str, Any]:
        out = copy.deepcopy(self.root_extras)
        out.update({"spec": spec, "spec_version": version, "data": data})
        return out

    def copy(self) -> Card:
        """A deep copy (e.g. to edit the voice without touching a shared card)."""
        return Card(
            copy.deepcopy(self.data),
            spec=self.spec,
            root_extras=copy.deepcopy(self.root_extras),
            files=dict(self.files),
            image=self.image,
            lorebook=self._lorebook,
        )

    def __repr__(self) -> str:
        return f"Card(name={self.name!r}, spec={self.spec!r})"
