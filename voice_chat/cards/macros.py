"""Macro substitution ("curly braced syntax") for card text.

Case-insensitive, one pass (a substituted value is never expanded again, so a user named
``{{char}}`` stays literal):

* ``{{char}}``, ``<BOT>``, ``<CHAR>``: the character's nickname (V3) or name
* ``{{user}}``, ``<USER>``: the user's display name
* ``{{original}}``: the default prompt, only where the caller passes one
* ``{{random:a,b,c}}`` and ``{{pick:a,b,c}}``: one of the values (``\\,`` escapes a comma);
  ``pick`` is stable for the same text (seeded by it)
* ``{{roll:N}}`` / ``{{roll:dN}}``: a number from 1 to N
* ``{{// ...}}``, ``{{comment: ...}}``, ``{{hidden_key: ...}}``: removed

Any other ``{{...}}`` is left as it is.
"""

from __future__ import annotations

import random
import re
import zlib

_MACRO = re.compile(r"\{\{([^{}]{0,4096})\}\}|<(user|bot|char)>", re.IGNORECASE)
_SPLIT = re.compile(r"(?<!\\),")
MAX_ROLL = 1_000_000


def _choices(body: str) -> list[str]:
    return [part.replace("\\,", ",") for part in _SPLIT.split(body)]


def substitute(
    text: str,
    *,
    char: str,
    user: str,
    original: str | None = None,
    rng: random.Random | None = None,
) -> str:
    """Replace the macros in ``text``."""
    if "{{" not in text and "<" not in text:
        return text
    rng = rng or random.Random()

    def replace(match: re.Match[str]) -> str:
        legacy = match.group(2)
        if legacy is not None:
            return user if legacy.lower() == "user" else char
        inner = match.group(1)
        name, sep, arg = inner.partition(":")
        key = name.strip().lower()
        if not sep:
            if key == "char":
                return char
            if key == "user":
                return user
            if key == "original" and original is not None:
                return original
        if key.startswith("//") or (sep and key in ("comment", "hidden_key")):
            return ""
        if sep and key == "random":
            return rng.choice(_choices(arg))
        if sep and key == "pick":
            return random.Random(zlib.crc32(text.encode()) + match.start()).choice(_choices(arg))
        if sep and key == "roll":
            sides = arg.strip().lower().removeprefix("d")
            if (
                sides.isascii()
                and sides.isdigit()
                and len(sides) <= 7
                and 0 < int(sides) <= MAX_ROLL
            ):
                return str(rng.randint(1, int(sides)))
        return match.group(0)

    return _MACRO.sub(replace, text)
