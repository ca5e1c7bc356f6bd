"""Parse and validate card JSON (V1, V2, V3) into a :class:`Card`. All-or-nothing.

Detection: ``spec == "chara_card_v3"`` -> V3, ``"chara_card_v2"`` -> V2, no ``spec`` but a
``name`` (or the old Pygmalion ``char_name``) -> V1. Any other ``spec`` is rejected.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from .assets import embedded_path
from .charx import check_member_path
from .errors import CardError
from .limits import (
    MAX_JSON_BYTES,
    MAX_JSON_DEPTH,
    MAX_LIST_ITEMS,
    MAX_NAME_BYTES,
    MAX_TEXT_FIELD_BYTES,
)
from .lorebook import parse_lorebook
from .model import (
    V1_FIELDS,
    V2_FIELDS,
    V2_TEXT_FIELDS,
    V3_ONLY_FIELDS,
    Card,
    SourceSpec,
)
from .png import image_size, is_png

LIST_FIELDS = ("alternate_greetings", "tags", "group_only_greetings", "source")
PYGMALION_ALIASES = {
    "char_name": "name",
    "char_persona": "personality",
    "world_scenario": "scenario",
    "char_greeting": "first_mes",
    "example_dialogue": "mes_example",
}


def _reject_constant(name: str) -> Any:
    raise CardError("invalid_json", f"card JSON contains {name}, which is not valid JSON")


def parse_json_bytes(raw: bytes | str, *, what: str = "card JSON") -> Any:
    """Decode JSON with the size and depth limits. Raises ``CardError``."""
    size = len(raw.encode("utf-8")) if isinstance(raw, str) else len(raw)
    if size > MAX_JSON_BYTES:
        raise CardError("too_large", f"{what} is {size} bytes; the limit is {MAX_JSON_BYTES}")
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise CardError("invalid_json", f"{what} is not UTF-8: {exc}") from None
    try:
        value = json.loads(raw, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise CardError("invalid_json", f"{what} is not valid JSON: {exc}") from None
    except (RecursionError, ValueError) as exc:
        raise CardError("invalid_json", f"{what} could not be decoded: {exc}") from None
    _check_depth(value)
    return value


def _check_depth(value: Any) -> None:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise CardError("too_deep", f"card JSON nests deeper than {MAX_JSON_DEPTH} levels")
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)


def _check_text(key: str, value: Any, limit: int = MAX_TEXT_FIELD_BYTES) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise CardError("invalid_field", f"field '{key}' must be a string")
    if len(value.encode("utf-8")) > limit:
        raise CardError("field_too_long", f"field '{key}' is over {limit} bytes")
    return value


def _check_list(key: str, value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise CardError("invalid_field", f"field '{key}' must be a list of strings")
    if len(value) > MAX_LIST_ITEMS:
        raise CardError("too_many_items", f"field '{key}' has over {MAX_LIST_ITEMS} items")
    for i, item in enumerate(value):
        _check_text(f"{key}[{i}]", item)
    return value


def _validate_data(data: dict[str, Any]) -> None:
    """Check and clean known fields in place; unknown fields are left untouched."""
    for key in V2_TEXT_FIELDS:
        if key in data:
            data[key] = _check_text(key, data[key])
    name = _check_text("name", data.get("name"), MAX_NAME_BYTES).strip()
    if not name:
        raise CardError("missing_name", "the card has no name")
    if "nickname" in data:
        data["nickname"] = _check_text("nickname", data["nickname"], MAX_NAME_BYTES)
    for key in LIST_FIELDS:
        if key in data:
            data[key] = _check_list(key, data[key])
    if data.get("extensions") is None:
        data["extensions"] = {}
    elif not isinstance(data["extensions"], dict):
        raise CardError("invalid_field", "field 'extensions' must be an object")
    notes = data.get("creator_notes_multilingual")
    if notes is not None and not (
        isinstance(notes, dict) and all(isinstance(v, str) for v in notes.values())
    ):
        raise CardError("invalid_field", "'creator_notes_multilingual' must map to strings")
    for key in ("creation_date", "modification_date"):
        value = data.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise CardError("invalid_field", f"field '{key}' must be a number")
    _validate_assets(data.get("assets"))


def _validate_assets(assets: Any) -> None:
    if assets is None:
        return
    if not isinstance(assets, list) or len(assets) > MAX_LIST_ITEMS:
        raise CardError("invalid_field", f"'assets' must be a list of at most {MAX_LIST_ITEMS}")
    for i, asset in enumerate(assets):
        if not isinstance(asset, dict):
            raise CardError("invalid_field", f"assets[{i}] must be an object")
        for key in ("type", "uri", "name", "ext"):
            if not isinstance(asset.get(key, ""), str):
                raise CardError("invalid_field", f"assets[{i}].{key} must be a string")
            _check_text(f"assets[{i}].{key}", asset.get(key, ""), 8 * MAX_TEXT_FIELD_BYTES)
        path = embedded_path(asset.get("uri", ""))
        if path is not None:
            try:
                check_member_path(path)
            except CardError:
                uri = asset["uri"][:80]
                raise CardError(
                    "unsafe_asset_uri",
                    f"assets[{i}].uri {uri!r} leaves the card: an embedded asset is a "
                    "relative path inside the CHARX, without '..', '/' at the start or '\\'",
                ) from None


def split_card_dict(obj: Any) -> tuple[SourceSpec, dict[str, Any], dict[str, Any]]:
    """``(spec, data, root_extras)`` of a decoded card object (deep copies)."""
    if not isinstance(obj, dict):
        raise CardError("invalid_spec", "a card must be a JSON object")
    spec = obj.get("spec")
    if spec in ("chara_card_v2", "chara_card_v3"):
        data = obj.get("data")
        if not isinstance(data, dict):
            raise CardError("invalid_spec", f"{spec} card has no 'data' object")
        known = {*V2_FIELDS, *V3_ONLY_FIELDS, "spec", "spec_version", "data"}
        kept = {k: copy.deepcopy(v) for k, v in obj.items() if k not in known}
        return ("v3" if spec == "chara_card_v3" else "v2"), copy.deepcopy(data), kept
    if spec is not None:
        raise CardError("invalid_spec", f"unsupported card spec {spec!r}")
    if "name" not in obj and "char_name" not in obj:
        raise CardError("invalid_spec", "not a character card: no 'spec' and no 'name'")
    data = {k: copy.deepcopy(v) for k, v in obj.items() if k in V1_FIELDS}
    extras: dict[str, Any] = {}
    for key, value in obj.items():
        target = PYGMALION_ALIASES.get(key)
        if target is not None and target not in data:
            data[target] = copy.deepcopy(value)
        elif key not in V1_FIELDS:
            extras[key] = copy.deepcopy(value)
    return "v1", data, extras


def card_from_dict(
    obj: Any, *, files: dict[str, bytes] | None = None, image: bytes | None = None
) -> Card:
    """Validate a decoded card object and build a :class:`Card`. Raises ``CardError``."""
    spec, data, extras = split_card_dict(obj)
    _validate_data(data)
    book = data.get("character_book")
    lorebook = None
    if book is not None:
        if not isinstance(book, dict):
            raise CardError("invalid_field", "'character_book' must be an object")
        lorebook = parse_lorebook(book)
    card = Card(data, spec=spec, root_extras=extras, files=files, image=image, lorebook=lorebook)
    for asset in card.assets:  # embedded pictures are checked like an uploaded PNG
        if asset.data is not None and asset.uri != "ccdefault:" and is_png(asset.data):
            image_size(asset.data)
    return card


def card_from_json(raw: bytes | str, **kwargs: Any) -> Card:
    """Parse JSON text/bytes into a :class:`Card`."""
    return card_from_dict(parse_json_bytes(raw), **kwargs)
