"""Character lorebooks (``character_book``): parsing, key scanning, token budget.

Supported, per the V2/V3 specs:

* ``keys`` (any one must appear), ``secondary_keys`` with ``selective`` (one of them must
  appear too), ``constant`` (always a match; ignored with ``use_regex`` as V3 says),
  ``enabled: false`` (never a match), ``case_sensitive`` (default: insensitive)
* ``scan_depth``: book level, overridden per entry by ``extensions.scan_depth`` (SillyTavern)
  or the ``@@scan_depth`` decorator; default ``DEFAULT_SCAN_DEPTH`` messages
* ``use_regex`` (V3): keys are regexes, see :mod:`.lorekeys`; secondary keys are then ignored
* ``token_budget`` (and the caller's budget): over it, the lowest ``priority`` entries are
  dropped first (``insertion_order`` stands in when ``priority`` is absent)
* ``insertion_order``: lower is earlier in the prompt
* ``position``: ``before_char`` / ``after_char`` (the character definitions)
* ``recursive_scanning``: activated contents can trigger other entries (up to 3 passes)
* decorators, see :mod:`.decorators`, incl. ``@@depth N`` (insert into the history)
* SillyTavern ``extensions``: ``match_whole_words``, ``scan_depth``, and ``position: 4`` with
  ``depth``/``role`` (0 system, 1 user, 2 assistant) meaning "at depth"

Not supported: ``selectiveLogic`` variants other than AND-ANY, groups, timed effects,
``@@instruct_depth`` and the other non-chat decorators.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from .limits import REGEX_SCAN_BUDGET_S
from .lorekeys import ScanText, key_in_text, regex_search
from .loreparse import Lorebook, LoreEntry, LoreResult, parse_lorebook

__all__ = ["LoreEntry", "LoreResult", "Lorebook", "parse_lorebook", "scan"]

DEFAULT_SCAN_DEPTH = 4
MAX_RECURSION_PASSES = 3


def _any_key(entry: LoreEntry, keys: Sequence[str], text: ScanText) -> bool:
    return any(
        key_in_text(k, text, case_sensitive=entry.case_sensitive, whole_words=entry.whole_words)
        for k in keys
    )


def _matches(
    entry: LoreEntry, text: ScanText, assistant_turns: int, greeting: int | None, deadline: float
) -> bool:
    dec = entry.decorators
    if not entry.enabled or not entry.content:
        return False
    if dec.has("activate"):
        return True
    if dec.has("dont_activate"):
        return False
    after, every, greet = (
        dec.int(n) for n in ("activate_only_after", "activate_only_every", "is_greeting")
    )
    if after is not None and assistant_turns < after:
        return False
    if every is not None and assistant_turns % every:
        return False
    if greet is not None and greeting is not None and greet != greeting:
        return False
    if entry.constant and not entry.use_regex:
        return True
    if entry.use_regex:
        hit = any(regex_search(p, text.text, deadline) for p in entry.patterns)
    else:
        hit = _any_key(entry, entry.keys, text)
        if hit and entry.selective and entry.secondary_keys:
            hit = _any_key(entry, entry.secondary_keys, text)
        if hit and dec.has("exclude_keys"):
            hit = not _any_key(entry, dec.list("exclude_keys"), text)
    if hit and dec.has("additional_keys"):
        hit = _any_key(entry, dec.list("additional_keys"), text)
    return hit


def scan(
    book: Lorebook,
    history: Sequence[tuple[str, str]],
    *,
    count_tokens: Callable[[str], int],
    token_budget: int | None = None,
    render: Callable[[str], str] = lambda text: text,
    greeting_index: int | None = None,
    default_scan_depth: int = DEFAULT_SCAN_DEPTH,
) -> LoreResult:
    """Find the entries triggered by ``history`` ((role, text), oldest first) within budget."""
    assistant_turns = sum(1 for role, _ in history if role == "assistant")
    base_depth = book.scan_depth if book.scan_depth is not None else default_scan_depth
    deadline = time.monotonic() + REGEX_SCAN_BUDGET_S
    found: list[LoreEntry] = []
    seen: set[int] = set()
    windows: dict[int, ScanText] = {}
    for _ in range(MAX_RECURSION_PASSES if book.recursive_scanning else 1):
        new = []
        for entry in book.entries:
            if entry.index in seen:
                continue
            depth = entry.scan_depth if entry.scan_depth is not None else base_depth
            if depth not in windows:
                recent = [text for _, text in history[-depth:]] if depth else []
                extra = [ScanText("\n".join(e.content for e in found)).text] if found else []
                windows[depth] = ScanText("\n".join([*extra, *recent]))  # keeps the newest
            if _matches(entry, windows[depth], assistant_turns, greeting_index, deadline):
                new.append(entry)
        if not new:
            break
        found.extend(new)
        seen.update(entry.index for entry in new)
        windows.clear()  # the next pass also scans the contents activated so far
    budgets = [b for b in (book.token_budget, token_budget) if b is not None]
    budget = min(budgets) if budgets else None
    result, used = LoreResult(), 0
    ranked = sorted(found, key=lambda e: (e.decorators.has("ignore_on_max_context"), -e.rank))
    rendered: dict[int, str] = {}
    for entry in ranked:
        text = render(entry.content)
        cost = count_tokens(text)
        if budget is not None and used + cost > budget:
            break  # everything ranked below this one is dropped too
        used += cost
        rendered[entry.index] = text
        result.activated.append(entry)
    result.activated.sort(key=lambda e: (e.insertion_order, e.index))
    for entry in result.activated:
        text = rendered[entry.index]
        if entry.position == "depth":
            result.at_depth.append((entry.depth, entry.role, text))
        elif entry.position == "after_char":
            result.after_char.append(text)
        else:
            result.before_char.append(text)
    return result
