"""Prompt assembly for a spoken conversation, following the V2/V3 card specs.

Message order::

    system     main prompt (the card's ``system_prompt``, ``{{original}}`` = our default)
               + lorebook ``before_char`` + description / personality / scenario
               + lorebook ``after_char``
    user/assistant   ``mes_example`` blocks (split on ``<START>``), as real turns
    user/assistant   greeting (if passed) and history, with ``@@depth`` lore inserted
    system     post-history instructions (the card's, ``{{original}}`` = our default)

History is trimmed by real token counts (``count_tokens``) to fit
``max_context_tokens - reply_reserve_tokens``: the system part, the post-history part and the
newest message are always kept, then older messages while they fit, then example blocks
(whole, in order) with what is left. Each message also costs ``per_message_tokens``
(chat-template overhead).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import CardError
from .examples import split_examples
from .lorebook import LoreResult, scan
from .macros import substitute
from .model import Card

DEFAULT_SYSTEM_PROMPT = (
    "You are {{char}}, talking with {{user}} in a live voice conversation. Stay in character. "
    "Everything you write is spoken aloud, so answer briefly: one to three short sentences "
    "of natural speech. No stage directions or actions, no emoji, no markdown, no lists."
)
DEFAULT_POST_HISTORY = "Reply as {{char}} in one to three short spoken sentences."

Message = dict[str, str]


@dataclass(frozen=True)
class Greeting:
    index: int  # 0 = first_mes, n = alternate_greetings[n - 1]
    text: str  # macros substituted


def choose_greeting(
    card: Card,
    index: int | None = None,
    rng: random.Random | None = None,
    *,
    user_name: str = "User",
) -> Greeting | None:
    """Pick the greeting: ``index`` pinned, else at random among the non-empty ones."""
    options = [card.first_mes, *card.alternate_greetings]
    if index is not None:
        if not 0 <= index < len(options):
            raise CardError("invalid_greeting", f"greeting index {index} is out of range")
        chosen = [(index, options[index])] if options[index].strip() else []
    else:
        chosen = [(i, text) for i, text in enumerate(options) if text.strip()]
    if not chosen:
        return None
    rng = rng or random.Random()
    i, text = chosen[0] if index is not None else rng.choice(chosen)
    return Greeting(i, substitute(text, char=card.display_name, user=user_name, rng=rng).strip())


def _turn(item: Any) -> Message:
    if isinstance(item, Mapping):
        role, text = item.get("role"), item.get("content", item.get("text"))
    else:
        role, text = getattr(item, "role", None), getattr(item, "text", None)
        text = getattr(item, "content", None) if text is None else text
    if role not in ("user", "assistant", "system") or not isinstance(text, str):
        raise ValueError(f"bad history item: {item!r}")
    return {"role": str(role), "content": text}


def _system_text(card: Card, main: str, lore: LoreResult, render: Callable[[str], str]) -> str:
    defs = [render(card.description)]
    if card.personality.strip():
        defs.append(render(f"{{{{char}}}}'s personality: {card.personality.strip()}"))
    if card.scenario.strip():
        defs.append(render(f"Scenario: {card.scenario.strip()}"))
    parts = [main, *lore.before_char, *defs, *lore.after_char]
    return "\n\n".join(p.strip() for p in parts if p.strip())


def _insert_depth(history: list[Message], lore: LoreResult) -> list[Message]:
    buckets: dict[int, list[Message]] = {}
    for depth, role, text in lore.at_depth:
        buckets.setdefault(max(0, len(history) - depth), []).append({"role": role, "content": text})
    out: list[Message] = []
    for i, message in enumerate(history):
        out += buckets.get(i, [])
        out.append(message)
    return out + buckets.get(len(history), [])


def build_messages(
    card: Card,
    history: Sequence[Any],
    *,
    user_name: str,
    count_tokens: Callable[[str], int],
    max_context_tokens: int,
    reply_reserve_tokens: int,
    greeting: str | None = None,
    greeting_index: int | None = None,
    lore_budget_tokens: int | None = None,
    per_message_tokens: int = 4,
    default_system_prompt: str = DEFAULT_SYSTEM_PROMPT,
    default_post_history: str = DEFAULT_POST_HISTORY,
    rng: random.Random | None = None,
    examples: bool = True,
) -> list[Message]:
    """Chat messages (``{"role", "content"}``) for the LLM. See the module docstring.

    ``history``: oldest first; dicts with ``role`` and ``content`` (or ``text``) or objects
    with ``.role`` and ``.text`` (e.g. :class:`voice_chat.memory.Message`). ``greeting``:
    the spoken greeting when it is not already the first message of ``history``.
    ``examples=False`` leaves the example dialogue out.
    """
    rng = rng or random.Random()
    char = card.display_name

    def render(text: str, original: str | None = None) -> str:
        return substitute(text, char=char, user=user_name, original=original, rng=rng).strip()

    cache: dict[str, int] = {}

    def cost(message: Message) -> int:
        text = message["content"]
        if text not in cache:
            cache[text] = count_tokens(text)
        return cache[text] + per_message_tokens

    turns = [_turn(item) for item in history]
    if greeting:
        turns.insert(0, {"role": "assistant", "content": greeting})
    lore = LoreResult()
    if card.lorebook is not None:
        lore = scan(
            card.lorebook,
            [(t["role"], t["content"]) for t in turns],
            count_tokens=count_tokens,
            token_budget=lore_budget_tokens,
            render=render,
            greeting_index=greeting_index,
        )
    default_main = render(default_system_prompt)
    main = render(card.system_prompt, default_main) if card.system_prompt.strip() else default_main
    system = {"role": "system", "content": _system_text(card, main, lore, render)}
    default_post = render(default_post_history)
    post_text = card.post_history_instructions
    post_text = render(post_text, default_post) if post_text.strip() else default_post
    post = [{"role": "system", "content": post_text}] if post_text else []
    injected = [{"role": r, "content": t} for _, r, t in lore.at_depth]
    available = max_context_tokens - reply_reserve_tokens
    available -= sum(cost(m) for m in [system, *post, *injected])
    kept: list[Message] = []
    for message in reversed(turns):
        if kept and cost(message) > available:
            break
        available -= cost(message)
        kept.insert(0, message)
    shown: list[Message] = []
    if examples and len(kept) == len(turns):  # examples only once the whole history fits
        for block in split_examples(card.mes_example, char=char, user=user_name):
            rendered = [{"role": t["role"], "content": render(t["content"])} for t in block]
            block_cost = sum(cost(m) for m in rendered)
            if block_cost > available:
                break
            available -= block_cost
            shown += rendered
    return [system, *shown, *_insert_depth(kept, lore), *post]
