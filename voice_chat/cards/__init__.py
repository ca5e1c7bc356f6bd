"""Character Card V1/V2/V3 library: import, export, lorebooks and prompt assembly.

Supported features and limits are described in ``docs/cards.md``.
"""

from __future__ import annotations

from .assets import Asset, VoiceSample, sniff_media_type
from .errors import CardError
from .io import (
    FILE_EXTENSIONS,
    MEDIA_TYPES,
    ExportFormat,
    export_card,
    load_card,
    load_card_file,
)
from .lorebook import Lorebook, LoreEntry, LoreResult, parse_lorebook, scan
from .macros import substitute
from .model import EXTENSION_KEY, Card
from .normalize import card_from_dict, card_from_json
from .prompt import (
    DEFAULT_POST_HISTORY,
    DEFAULT_SYSTEM_PROMPT,
    Greeting,
    build_messages,
    choose_greeting,
)

__all__ = [
    "DEFAULT_POST_HISTORY",
    "DEFAULT_SYSTEM_PROMPT",
    "EXTENSION_KEY",
    "FILE_EXTENSIONS",
    "MEDIA_TYPES",
    "Asset",
    "Card",
    "CardError",
    "ExportFormat",
    "Greeting",
    "LoreEntry",
    "LoreResult",
    "Lorebook",
    "VoiceSample",
    "build_messages",
    "card_from_dict",
    "card_from_json",
    "choose_greeting",
    "export_card",
    "load_card",
    "load_card_file",
    "parse_lorebook",
    "scan",
    "sniff_media_type",
    "substitute",
]
