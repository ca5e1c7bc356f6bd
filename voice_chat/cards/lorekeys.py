"""Lorebook key matching: plain keys and V3 ``use_regex`` keys.

Regex keys are written ``/pattern/flags`` (flags ``i m s x u g y``; ``g``, ``y`` and ``u`` are
accepted and ignored) or as a bare pattern. They are compiled at import with the ``regex``
module: a pattern that does not compile, or is longer than ``MAX_REGEX_CHARS``, rejects the
card. Matching runs with ``timeout=REGEX_TIMEOUT_S``; a search that runs out of time counts as
no match (Python's ``re`` cannot be interrupted, ``regex`` can, so catastrophic backtracking
costs at most that much per key and message window, and all regex searches of one scan
share ``REGEX_SCAN_BUDGET_S``).
"""

from __future__ import annotations

import logging
import re
import time
from functools import lru_cache

import regex

from .errors import CardError
from .limits import MAX_REGEX_CHARS, MAX_SCAN_CHARS, REGEX_TIMEOUT_S

log = logging.getLogger(__name__)

_FLAGS = {
    "i": regex.IGNORECASE,
    "m": regex.MULTILINE,
    "s": regex.DOTALL,
    "x": regex.VERBOSE,
}
_IGNORED_FLAGS = set("guy")


def compile_regex_key(key: str, *, case_sensitive: bool) -> regex.Pattern[str]:
    """Compile one ``use_regex`` key. Raises ``CardError('invalid_regex')``."""
    if len(key) > MAX_REGEX_CHARS:
        raise CardError("invalid_regex", f"regex key is over {MAX_REGEX_CHARS} chars")
    pattern, flags = key, 0 if case_sensitive else regex.IGNORECASE
    end = key.rfind("/")
    if key.startswith("/") and end > 0 and set(key[end + 1 :]) <= set(_FLAGS) | _IGNORED_FLAGS:
        pattern, flags = key[1:end], 0
        for letter in key[end + 1 :]:
            flags |= _FLAGS.get(letter, 0)
    try:
        return regex.compile(pattern, flags | regex.V0)
    except (regex.error, ValueError, OverflowError, RecursionError) as exc:
        raise CardError("invalid_regex", f"regex key {key!r} does not compile: {exc}") from None


def regex_search(pattern: regex.Pattern[str], text: str, deadline: float) -> bool:
    """Search with the per-search limit and the scan's ``deadline`` (``time.monotonic``).

    A timeout, or a search that has no time left, is no match (and is logged).
    """
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        log.warning("lorebook regex time budget used up; %r not run", pattern.pattern)
        return False
    try:
        return pattern.search(text, timeout=min(REGEX_TIMEOUT_S, remaining)) is not None
    except TimeoutError:
        log.warning("lorebook regex %r timed out; treated as no match", pattern.pattern)
        return False


@lru_cache(maxsize=1024)
def _word_pattern(key: str, case_sensitive: bool) -> re.Pattern[str]:
    return re.compile(rf"(?<!\w){re.escape(key)}(?!\w)", 0 if case_sensitive else re.IGNORECASE)


class ScanText:
    """Text scanned for keys (its newest ``MAX_SCAN_CHARS``), casefolded once when needed."""

    def __init__(self, text: str) -> None:
        self.text = text[-MAX_SCAN_CHARS:]
        self._folded: str | None = None

    @property
    def folded(self) -> str:
        if self._folded is None:
            self._folded = self.text.casefold()
        return self._folded


def key_in_text(key: str, text: ScanText, *, case_sensitive: bool, whole_words: bool) -> bool:
    """Plain key: substring (or whole-word) match; blank keys never match."""
    key = key.strip()
    if not key:
        return False
    if whole_words:
        return _word_pattern(key, case_sensitive).search(text.text) is not None
    if case_sensitive:
        return key in text.text
    return key.casefold() in text.folded
