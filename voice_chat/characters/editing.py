"""Characters written in the page: the fields a person fills in, checked, as a real V2 card.

:func:`parse_fields` checks a form's fields (a JSON object) against :data:`LIMITS` and says
plainly what is wrong; :func:`apply_fields` writes them into a new or an existing card, which
keeps every other field, extension and embedded file. Fields left out keep their old value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from voice_chat.cards import Card, card_from_dict

from .errors import CharacterError

#: character limits of the text fields (a greeting's limit is MAX_GREETING_CHARS, each)
LIMITS = {
    "name": 100,
    "description": 4000,
    "personality": 4000,
    "scenario": 4000,
    "mes_example": 8000,
}
MAX_GREETING_CHARS = 2000
MAX_GREETINGS = 16
LABELS = {
    "name": "The name",
    "description": "The description",
    "personality": "The personality",
    "scenario": "The scenario",
    "mes_example": "The example dialogue",
}
KNOWN = {*LIMITS, "greetings", "voice"}


@dataclass
class CharacterFields:
    """Only the fields that were sent; ``voice`` is ``...`` when it was not."""

    text: dict[str, str] = field(default_factory=dict)
    greetings: list[str] | None = None
    voice: Any = ...


def _error(code: str, message: str) -> CharacterError:
    return CharacterError(code, message)


def parse_fields(obj: Any, *, creating: bool) -> CharacterFields:
    """Check the fields of a create (``creating``) or an edit. Raises ``CharacterError``."""
    if not isinstance(obj, dict):
        raise _error("invalid_fields", "the fields must be a JSON object")
    unknown = sorted(set(obj) - KNOWN)
    if unknown:
        raise _error("invalid_fields", f"unknown field {unknown[0]!r}")
    out = CharacterFields()
    for key, limit in LIMITS.items():
        if key not in obj:
            continue
        value = obj[key]
        if not isinstance(value, str):
            raise _error("invalid_fields", f"{LABELS[key]} must be text.")
        value = value.replace("\r\n", "\n").strip()
        if len(value) > limit:
            raise _error(
                "field_too_long",
                f"{LABELS[key]} is {len(value):,} characters long; the limit is {limit:,}.",
            )
        out.text[key] = value
    if "name" in obj or creating:
        if not out.text.get("name"):
            raise _error("missing_name", "Give the character a name.")
    if "greetings" in obj:
        out.greetings = _greetings(obj["greetings"])
    if "voice" in obj:
        voice = obj["voice"]
        if voice is not None and not isinstance(voice, str):
            raise _error("invalid_fields", "voice must be a voice id or null")
        out.voice = voice or None
    return out


def _greetings(raw: Any) -> list[str]:
    if not isinstance(raw, list) or not all(isinstance(g, str) for g in raw):
        raise _error("invalid_fields", "greetings must be a list of texts")
    greetings = [g.replace("\r\n", "\n").strip() for g in raw]
    greetings = [g for g in greetings if g]
    if len(greetings) > MAX_GREETINGS:
        raise _error(
            "too_many_greetings", f"A character can have at most {MAX_GREETINGS} greetings."
        )
    for n, g in enumerate(greetings, 1):
        if len(g) > MAX_GREETING_CHARS:
            raise _error(
                "greeting_too_long",
                f"Greeting {n} is {len(g):,} characters long; the limit is "
                f"{MAX_GREETING_CHARS:,}. A greeting is spoken aloud: keep it short.",
            )
    return greetings


def new_card(fields: CharacterFields) -> Card:
    """A fresh ``chara_card_v2`` holding ``fields``."""
    card = card_from_dict(
        {
            "spec": "chara_card_v2",
            "spec_version": "2.0",
            "data": {"name": fields.text["name"], "tags": [], "extensions": {}},
        }
    )
    card.spec = "v2"
    return apply_fields(card, fields)


def apply_fields(card: Card, fields: CharacterFields) -> Card:
    """``card`` with ``fields`` written in (in place); returns it."""
    for key, value in fields.text.items():
        card.data[key] = value
    if fields.greetings is not None:
        card.data["first_mes"] = fields.greetings[0] if fields.greetings else ""
        card.data["alternate_greetings"] = fields.greetings[1:]
    if fields.voice is not ...:
        card.set_voice(fields.voice)
    return card


def set_picture(card: Card, png: bytes) -> None:
    """Make ``png`` the card's picture: the ``ccdefault:`` icon, replacing other icons."""
    card.image = png
    assets = card.data.get("assets")
    if isinstance(assets, list):
        rest = [a for a in assets if not (isinstance(a, dict) and a.get("type") == "icon")]
        icon = {"type": "icon", "uri": "ccdefault:", "name": "main", "ext": "png"}
        card.data["assets"] = [icon, *rest]
