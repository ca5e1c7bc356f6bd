"""Character + conversation → chat messages for the LLM (see ``voice_chat.cards.prompt``)."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

from voice_chat import cards
from voice_chat.characters.registry import Character
from voice_chat.engines.base import Message
from voice_chat.pipeline.conversation import Turn

#: ``budget_tokens`` already leaves room for the reply (``Engines.prompt_budget``); this covers
#: what per-message costs do not count: BOS and the chat template's generation prompt.
REPLY_RESERVE_TOKENS = 16


def build_messages(
    character: Character,
    turns: Sequence[Turn],
    *,
    user_name: str = "User",
    count_tokens: Callable[[str], int] = lambda s: len(s) // 4 + 1,
    budget_tokens: int = 1500,
    instructions: str = "",
    replace_persona: bool = False,
) -> list[Message]:
    """Persona, lorebook and example dialogue, then the newest turns that fit the budget.

    Trimming uses ``count_tokens`` (the LLM's real tokenizer in the server): the persona and
    the newest turn are always kept, older turns while they fit, examples with what is left.
    Turns whose text is blank (a reply cut before any of it was heard) are left out.
    ``instructions`` (an API client's) are added to the persona's system message, or replace
    that message with ``replace_persona``. The same character, instructions and history
    always give the same messages, so the LLM's prompt cache
    (see ``Pipeline._prefill``) stays valid from one turn to the next.
    """
    history = [t for t in turns if t.text.strip()]
    instructions = instructions.strip()
    extra = count_tokens(instructions) + 8 if instructions else 0
    messages = cards.build_messages(
        character.card,
        history,
        user_name=user_name,
        count_tokens=count_tokens,
        max_context_tokens=budget_tokens - extra,
        reply_reserve_tokens=REPLY_RESERVE_TOKENS,
        # No default post-history reminder: a trailing system turn makes small models answer
        # the reminder instead of the user. A card's own post_history_instructions still apply.
        default_post_history="",
        rng=random.Random(character.id),  # {{random}} stays put: a stable prompt prefix
    )
    if not instructions:
        return messages
    if replace_persona:
        return [{"role": "system", "content": instructions}, *messages[1:]]
    persona = messages[0]["content"]
    return [{"role": "system", "content": f"{persona}\n\n{instructions}"}, *messages[1:]]
