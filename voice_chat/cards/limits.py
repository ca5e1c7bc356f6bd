"""Limits applied to every imported card. Anything over a limit raises ``CardError``.

They are deliberately generous for real cards and small enough that a hostile upload cannot
exhaust memory or CPU. Sizes are bytes unless named otherwise.
"""

from __future__ import annotations

KIB = 1024
MIB = 1024 * KIB

# --- JSON
MAX_JSON_BYTES = 2 * MIB  # the card JSON itself (card.json, PNG chunk, .json upload)
MAX_JSON_DEPTH = 64  # nesting of objects/arrays (extensions are free-form)
MAX_TEXT_FIELD_BYTES = 64 * KIB  # any single text field, UTF-8 encoded
MAX_NAME_BYTES = 256  # name and nickname
MAX_LIST_ITEMS = 256  # alternate_greetings, group_only_greetings, tags, source, assets
MAX_VOICE_ID_CHARS = 128  # data.extensions.voice_chat.voice

# --- lorebook
MAX_LORE_ENTRIES = 1024
MAX_KEYS_PER_ENTRY = 128
MAX_KEY_CHARS = 1024
MAX_TOTAL_KEYS = 4096  # keys + secondary keys + @@additional/@@exclude keys, whole book
MAX_REGEX_KEYS = 256  # use_regex keys, whole book
MAX_REGEX_CHARS = 512  # a use_regex key, slashes and flags included
REGEX_TIMEOUT_S = 0.05  # wall-clock cap for one regex search (``regex`` module timeout)
REGEX_SCAN_BUDGET_S = 0.25  # wall-clock cap for all regex searches of one scan
MAX_SCAN_CHARS = 32 * KIB  # scanned text: the newest chars of the window (and of recursion)

# --- PNG
MAX_PNG_BYTES = 20 * MIB
MAX_PNG_CHUNKS = 20_000
MAX_IMAGE_SIDE = 8192  # width and height from IHDR
MAX_IMAGE_PIXELS = 32 * 1024 * 1024  # width * height
MAX_PNG_TEXT_BYTES = 4 * MIB  # decompressed/decoded card text over all card chunks

# --- CHARX (zip)
MAX_CHARX_BYTES = 32 * MIB  # the .charx file
MAX_ZIP_ENTRIES = 256
MAX_ASSET_BYTES = 16 * MIB  # one unpacked member
MAX_UNPACKED_BYTES = 64 * MIB  # all unpacked members together
MAX_COMPRESSION_RATIO = 100  # unpacked/packed, checked for members over RATIO_FLOOR_BYTES
RATIO_FLOOR_BYTES = 1 * MIB
MAX_DATA_URI_BYTES = 8 * MIB  # a base64 ``data:`` asset URI, decoded
