"""Voice names → ids: display names are kept, ids are slugs matching ``voices.VOICE_ID``."""

from __future__ import annotations

import re
import unicodedata

from voice_chat.engines.voices import VOICE_ID, VoiceError

_FORBIDDEN = ("\x00", "/", "\\", "..")


def clean_name(name: str) -> str:
    """The display name: control characters removed, whitespace collapsed, at most 100 chars."""
    if not isinstance(name, str):
        raise VoiceError("invalid_name", "the voice name must be a string")
    if any(bad in name for bad in _FORBIDDEN):
        raise VoiceError("invalid_name", "a voice name may not contain '/', '\\', '..' or NUL")
    cleaned = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    cleaned = re.sub(r"\s+", " ", cleaned).strip()[:100]
    if not cleaned:
        raise VoiceError("invalid_name", "the voice name is empty")
    return cleaned


def slugify(name: str) -> str:
    """``"Deep Joe (v2)!"`` → ``"deep-joe-v2"``; raises ``invalid_name`` if nothing is left."""
    ascii_name = unicodedata.normalize("NFKD", clean_name(name)).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9_]+", "-", ascii_name.lower()).strip("-_")[:64].strip("-_")
    if not slug or not VOICE_ID.match(slug):
        raise VoiceError("invalid_name", f"{name!r} gives no usable id: use letters or digits")
    return slug


def check_id(voice_id: str) -> str:
    if not isinstance(voice_id, str) or not VOICE_ID.match(voice_id):
        raise VoiceError(
            "invalid_name",
            "a voice id is 1-64 of a-z, 0-9, '-' and '_', starting with a letter or digit",
        )
    return voice_id
