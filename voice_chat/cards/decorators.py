"""V3 lorebook decorators: ``@@name value`` lines inside an entry's ``content``.

Decorator lines are removed from the content. ``@@@name`` is a fallback for the decorator just
above it and is used only when that one was not recognized (chains of fallbacks work). For a
name given twice, the first wins. Recognized decorators (others are ignored, as the spec says):

* ``@@depth N``: insert the entry at depth N of the chat history (0 = after the last message)
* ``@@role user|assistant|system``: role of the message inserted by ``@@depth``
* ``@@position before_desc|after_desc|personality|scenario``: before (``before_desc``) or after
  the character definitions; overrides ``@@depth``
* ``@@scan_depth N``: scan only the last N messages for this entry
* ``@@activate`` / ``@@dont_activate``: always / never a match (``@@activate`` wins)
* ``@@additional_keys a,b``: also require one of these keys
* ``@@exclude_keys a,b``: no match when one of these keys is present
* ``@@activate_only_after N``: only once the character has sent N messages
* ``@@activate_only_every N``: only when the character's message count is a multiple of N
* ``@@is_greeting N``: only when the active greeting has index N (0 = ``first_mes``)
* ``@@ignore_on_max_context``: the first entry dropped when the token budget is exceeded
"""

from __future__ import annotations

from dataclasses import dataclass, field

INT_DECORATORS = frozenset(
    {"depth", "scan_depth", "activate_only_after", "activate_only_every", "is_greeting"}
)
FLAG_DECORATORS = frozenset({"activate", "dont_activate", "ignore_on_max_context"})
LIST_DECORATORS = frozenset({"additional_keys", "exclude_keys"})
ROLES = frozenset({"user", "assistant", "system"})
POSITIONS = frozenset({"before_desc", "after_desc", "personality", "scenario"})


@dataclass(frozen=True)
class Decorators:
    """The recognized decorators of one entry: name -> raw value ('' for flags)."""

    values: dict[str, str] = field(default_factory=dict)

    def has(self, name: str) -> bool:
        return name in self.values

    def int(self, name: str) -> int | None:
        value = self.values.get(name)
        return int(value) if value is not None else None

    def list(self, name: str) -> list[str]:
        value = self.values.get(name, "")
        return [part.strip() for part in value.split(",") if part.strip()]

    def get(self, name: str) -> str | None:
        return self.values.get(name)


def _valid(name: str, value: str) -> bool:
    if name in INT_DECORATORS:
        try:
            number = int(value)
        except ValueError:
            return False
        return number >= 0 and not (name == "activate_only_every" and number == 0)
    if name in FLAG_DECORATORS:
        return True
    if name in LIST_DECORATORS:
        return bool(value.strip())
    if name == "role":
        return value in ROLES
    if name == "position":
        return value in POSITIONS
    return False


def split_decorators(content: str) -> tuple[Decorators, str]:
    """Return the recognized decorators and the content with decorator lines removed."""
    values: dict[str, str] = {}
    kept: list[str] = []
    chain_done = True  # whether the current primary decorator (or a fallback) was used
    for line in content.splitlines():
        stripped = line.strip()
        if not stripped.startswith("@@"):
            kept.append(line)
            continue
        fallback = stripped.startswith("@@@")
        name, _, value = stripped.lstrip("@").partition(" ")
        name, value = name.lower(), value.strip()
        if fallback and chain_done:
            continue
        chain_done = _valid(name, value)
        if chain_done and name not in values:
            values[name] = value
    return Decorators(values), "\n".join(kept).strip()
