"""Lorebook model and validation: ``character_book`` -> :class:`Lorebook` (all-or-nothing).

See :mod:`.lorebook` for the supported features.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import regex

from .decorators import Decorators, split_decorators
from .errors import CardError
from .limits import (
    MAX_KEY_CHARS,
    MAX_KEYS_PER_ENTRY,
    MAX_LORE_ENTRIES,
    MAX_REGEX_KEYS,
    MAX_TEXT_FIELD_BYTES,
    MAX_TOTAL_KEYS,
)
from .lorekeys import compile_regex_key

ST_ROLES = {0: "system", 1: "user", 2: "assistant"}


@dataclass(frozen=True)
class LoreEntry:
    index: int
    keys: tuple[str, ...]
    secondary_keys: tuple[str, ...]
    content: str  # decorators removed
    decorators: Decorators
    enabled: bool = True
    constant: bool = False
    selective: bool = False
    case_sensitive: bool = False
    use_regex: bool = False
    whole_words: bool = False
    insertion_order: float = 0
    priority: float | None = None
    position: str = "before_char"  # or "after_char", or "depth"
    depth: int = 0  # used when position == "depth"
    role: str = "system"
    scan_depth: int | None = None
    patterns: tuple[regex.Pattern[str], ...] = ()

    @property
    def rank(self) -> float:
        """Budget rank: higher is kept first."""
        return self.priority if self.priority is not None else self.insertion_order


@dataclass(frozen=True)
class Lorebook:
    entries: tuple[LoreEntry, ...]
    scan_depth: int | None = None
    token_budget: int | None = None
    recursive_scanning: bool = False


@dataclass
class LoreResult:
    before_char: list[str] = field(default_factory=list)
    after_char: list[str] = field(default_factory=list)
    at_depth: list[tuple[int, str, str]] = field(default_factory=list)  # (depth, role, text)
    activated: list[LoreEntry] = field(default_factory=list)


def _typed(where: str, value: Any, kinds: tuple[type, ...], default: Any) -> Any:
    if value is None:
        return default
    if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
        raise CardError("invalid_field", f"{where} has the wrong type")
    return value


def _keys(where: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str):  # some editors write "a, b"
        value = value.split(",")
    value = _typed(where, value, (list,), [])
    if len(value) > MAX_KEYS_PER_ENTRY:
        raise CardError("too_many_items", f"{where} has over {MAX_KEYS_PER_ENTRY} keys")
    for key in value:
        if not isinstance(key, str) or len(key) > MAX_KEY_CHARS:
            raise CardError("invalid_field", f"{where}: keys must be strings <= {MAX_KEY_CHARS}")
    return tuple(value)


def _int(where: str, value: Any) -> int | None:
    number = _typed(where, value, (int, float), None)
    return None if number is None else max(0, int(number))


def _entry(i: int, raw: Any) -> LoreEntry:
    where = f"character_book.entries[{i}]"
    if not isinstance(raw, dict):
        raise CardError("invalid_field", f"{where} must be an object")
    content = _typed(f"{where}.content", raw.get("content"), (str,), "")
    if len(content.encode("utf-8")) > MAX_TEXT_FIELD_BYTES:
        raise CardError("field_too_long", f"{where}.content is over {MAX_TEXT_FIELD_BYTES} bytes")
    ext = _typed(f"{where}.extensions", raw.get("extensions"), (dict,), {})
    decorators, text = split_decorators(content)
    flag = {
        k: bool(_typed(f"{where}.{k}", raw.get(k), (bool,), k == "enabled"))
        for k in ("enabled", "constant", "selective", "case_sensitive", "use_regex")
    }
    keys = _keys(f"{where}.keys", raw.get("keys"))
    patterns = ()
    if flag["use_regex"]:
        patterns = tuple(compile_regex_key(k, case_sensitive=flag["case_sensitive"]) for k in keys)
    position = "after_char" if raw.get("position") == "after_char" else "before_char"
    depth, role = 0, "system"
    if ext.get("position") == 4 and isinstance(ext.get("depth"), int):
        position, depth = "depth", max(0, ext["depth"])
        st_role = ext.get("role")
        role = ST_ROLES.get(st_role, "system") if isinstance(st_role, int) else "system"
    if decorators.has("depth"):
        position, depth = "depth", decorators.int("depth") or 0
    role = decorators.get("role") or role
    if decorators.has("position"):
        position = "before_char" if decorators.get("position") == "before_desc" else "after_char"
    scan_depth = decorators.int("scan_depth")
    if scan_depth is None and isinstance(ext.get("scan_depth"), int):
        scan_depth = max(0, ext["scan_depth"])
    return LoreEntry(
        index=i,
        keys=keys,
        content=text,
        decorators=decorators,
        secondary_keys=_keys(f"{where}.secondary_keys", raw.get("secondary_keys")),
        whole_words=ext.get("match_whole_words") is True,
        insertion_order=_typed(
            f"{where}.insertion_order", raw.get("insertion_order"), (int, float), 0
        ),
        priority=_typed(f"{where}.priority", raw.get("priority"), (int, float), None),
        position=position,
        depth=depth,
        role=role,
        scan_depth=scan_depth,
        patterns=patterns,
        **flag,
    )


def parse_lorebook(book: dict[str, Any]) -> Lorebook:
    """Validate a ``character_book`` object. Raises ``CardError``."""
    entries = _typed("character_book.entries", book.get("entries"), (list,), [])
    if len(entries) > MAX_LORE_ENTRIES:
        raise CardError("too_many_items", f"the lorebook has over {MAX_LORE_ENTRIES} entries")
    budget = _int("character_book.token_budget", book.get("token_budget"))
    parsed = tuple(_entry(i, raw) for i, raw in enumerate(entries))
    total = sum(
        len(e.keys)
        + len(e.secondary_keys)
        + len(e.decorators.list("additional_keys"))
        + len(e.decorators.list("exclude_keys"))
        for e in parsed
    )
    if total > MAX_TOTAL_KEYS:
        raise CardError("too_many_items", f"the lorebook has over {MAX_TOTAL_KEYS} keys")
    if sum(len(e.patterns) for e in parsed) > MAX_REGEX_KEYS:
        raise CardError("too_many_items", f"the lorebook has over {MAX_REGEX_KEYS} regex keys")
    return Lorebook(
        entries=parsed,
        scan_depth=_int("character_book.scan_depth", book.get("scan_depth")),
        token_budget=budget or None,
        recursive_scanning=book.get("recursive_scanning") is True,
    )
