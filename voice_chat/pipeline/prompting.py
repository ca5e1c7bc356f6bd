"""Character + conversation → chat messages for the LLM (see ``voice_chat.cards.prompt``).

The prompt always fits: it is counted exactly as the model sees it (``count_prompt``: the
chat template applied and tokenised) against ``budget_tokens``, which already leaves room for
the reply. When the conversation outgrows it, the oldest turns are dropped *in blocks*: the
history is cut at fixed boundaries, each about half the history budget apart, counted from the
start of the conversation. The window start therefore moves only once every many turns, and
between two moves every prompt begins with the same tokens, so the LLM's KV cache keeps
serving the persona and the older turns. What the user told about themselves outlives the
window: :class:`~voice_chat.memory.facts.UserMemory` goes into the prompt.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from voice_chat import cards
from voice_chat.characters.registry import Character
from voice_chat.engines.base import Message
from voice_chat.memory.facts import UserMemory
from voice_chat.pipeline.conversation import Turn

#: chat-template tokens per message (ChatML: ``<|im_start|>role\n`` … ``<|im_end|>\n``); used
#: only to estimate where to cut, the final prompt is counted exactly
PER_MESSAGE_TOKENS = 5
#: room kept for the next user line when a prefill (``warm``) chooses the window
NEXT_LINE_TOKENS = 96

PERSONA_RULES = (
    "You are {{char}}, talking with {{user}} in a live voice conversation. Stay in character "
    "as {{char}} at all times. Everything you write is spoken aloud, so answer briefly: one "
    "to three short sentences of natural speech. No stage directions or actions, no emoji, "
    "no markdown, no lists."
)
NOT_AN_AI = (
    " You are {{char}}, not an AI, an assistant or a language model: never say you are one, "
    "even when asked. Never write {{user}}'s lines."
)
_MACHINE = re.compile(
    r"\b(ai|a\.i\.|robot|android|machine|computer|program|assistant|chatbot|bot)\b", re.I
)
#: assistant talk a character never says; a machine character may still call itself a robot
ASSISTANT_PHRASES = (
    "as an AI",
    "an AI language model",
    "a language model",
    "language model",  # also "a natural language model"
    "natural language",
    "assist you today",
    "How can I assist you",
    "How may I assist you",
    "I'm here to assist",
    "virtual assistant",
    "designed to assist",
    "designed to help",
    "programmed to",
    "assist users",
    "assist with",
    "a language AI",
    # measured on benchmarks/conversation.py: the ways SmolLM2 found around the above
    "assist you",
    "assist in",
    "my role is to assist",
    "my purpose is to",
    "trained on a vast",
    "amount of text data",
    "designed to provide",
    "a chat AI",
    "here to help",
    "provide assistance",
    "facilitate communication",
    "I cannot",
    "I can't help",
    "I'm unable to",
    "AI assistant",
    "How can I help",
    "How may I help",
    "help you today",
    # the words themselves, wherever they come ("a language learning assistant", "a chat
    # assistant"): a character is never anyone's assistant
    "assistant",
    "assistance",
    "assist",
)
NOT_MACHINE_PHRASES = (
    "I'm an AI",
    "I am an AI",
    "I'm just an AI",
    "an artificial intelligence",
    "a computer program",
    "I'm a chatbot",
    "I am a chatbot",
    "I'm a robot",
    "I am a robot",
    "I'm a machine",
    "I am a machine",
    "I'm a bot",
    "I'm an assistant",
    "I'm a program",
    "I don't have feelings",
    "I don't have a body",
    "I don't have personal",
    "an AI",  # also "I'm not an AI": the character says so in its own words instead
    "a helpful AI",
    "AI designed",
    "AI chatbot",
    "a chatbot",
    "and AI",
    "writing AI",
    "an artificial being",
    "I'm an artificial",
    # measured on benchmarks/conversation.py: "a creative AI", "a language learning AI",
    # "a supportive AI assistant": the word itself, wherever it comes
    "AI",
    "A.I.",
    "chat-bot",
    "chat bot",
    "app designed",
    "learning app",
    "a software",
    "artificial intelligence",
    "artificial entity",
)


@dataclass(frozen=True)
class PromptLayout:
    """How the persona is laid out; measured with benchmarks/conversation.py."""

    #: "before_user": a system note just before the line being answered (the prefill puts it
    #: at the end, where that line will come, so the persona and history prefix never change);
    #: "system": in the persona (each new fact re-evaluates the whole prompt)
    memory: str = "before_user"
    name_as_user: bool = False  # the user's name, once known, stands for {{user}}
    reminder: str = ""  # a short system line after the history ("" = none)
    #: an example exchange where the character answers "are you an AI?" in character (for
    #: cards that do not say the character is a machine), while the examples fit
    ai_example: bool = True


DEFAULT_LAYOUT = PromptLayout()


def is_machine(character: Character) -> bool:
    """The card itself says the character is an AI, a robot or a program."""
    card = character.card
    return bool(_MACHINE.search(" ".join([card.description, card.personality, card.scenario])))


def banned_phrases(character: Character, user_name: str | None = None) -> tuple[str, ...]:
    """Phrases this character never says: assistant talk, AI claims unless it is a machine,
    and the user's name as its own."""
    own = (f"I'm {user_name}", f"I am {user_name}", f"my name is {user_name}") if user_name else ()
    # nor the user's line: a reply that starts with the user's label stops at once, empty
    own += ("User:", *((f"{user_name}:",) if user_name else ()))
    return ASSISTANT_PHRASES + (() if is_machine(character) else NOT_MACHINE_PHRASES) + own


def _estimate(count_tokens: Callable[[str], int]) -> Callable[[list[Message]], int]:
    return lambda ms: sum(count_tokens(m["content"]) + PER_MESSAGE_TOKENS for m in ms) + 4


def build_messages(
    character: Character,
    turns: Sequence[Turn],
    *,
    user_name: str = "User",
    memory: UserMemory | None = None,
    count_tokens: Callable[[str], int] = lambda s: len(s) // 4 + 1,
    count_prompt: Callable[[list[Message]], int] | None = None,
    budget_tokens: int = 1500,
    layout: PromptLayout = DEFAULT_LAYOUT,
    instructions: str = "",
    replace_persona: bool = False,
) -> list[Message]:
    """Persona, lorebook and example dialogue, the user's memory, then the newest turns.

    The messages, counted by ``count_prompt`` (exact; an estimate from ``count_tokens`` when
    not given), are at most ``budget_tokens``. Turns whose text is blank (a reply cut before
    any of it was heard) are left out. The same character, memory and history always give the
    same messages. ``instructions`` (an API client's) are added to the persona's system
    message, or replace that message with ``replace_persona``.

    Where the window starts (and whether the example dialogue still fits) is decided on the
    history *before* the line being answered, with room kept for a line: the prefill after a
    reply and the next reply then choose the same start, and the cache holds.
    """
    history = [t for t in turns if t.text.strip()]
    instructions = instructions.strip()
    estimate = _estimate(count_tokens)  # the window choice: cheap, the same for every caller
    count = count_prompt or estimate  # the final check: exact
    if memory is not None and memory.name and layout.name_as_user:
        user_name = memory.name
    note = memory.render(user_name) if memory is not None else ""
    machine = is_machine(character)

    def build(part: Sequence[Turn], examples: bool) -> list[Message]:
        messages = cards.build_messages(
            character.card,
            part,
            user_name=user_name,
            count_tokens=count_tokens,
            max_context_tokens=1 << 30,  # trimmed here, with exact counts
            reply_reserve_tokens=0,
            default_system_prompt=PERSONA_RULES + ("" if machine else NOT_AN_AI),
            # No default post-history reminder: a trailing system turn makes small models
            # answer the reminder instead of the user. A card's own one still applies.
            default_post_history=layout.reminder,
            rng=random.Random(character.id),  # {{random}} stays put: a stable prompt prefix
            examples=examples,
        )
        if replace_persona and instructions:
            messages[0] = {"role": "system", "content": instructions}
        elif instructions:
            persona = messages[0]["content"]
            messages[0] = {"role": "system", "content": f"{persona}\n\n{instructions}"}
        if examples and layout.ai_example and not machine:
            messages[1:1] = [
                {"role": "user", "content": "Be honest, are you a bot?"},
                {"role": "assistant", "content": f"Ha, no! I'm {character.card.display_name}."},
            ]
        return _place_memory(messages, note, layout)

    pending = 1 if history and history[-1].role == "user" else 0
    base = history[: len(history) - pending]
    room = budget_tokens - NEXT_LINE_TOKENS
    options = [(0, True), (0, False)]
    persona = estimate(build([], False))
    options += [(s, False) for s in _block_starts(base, count_tokens, room - persona)]
    for start, examples in options:
        if start and start >= len(base):
            break
        if estimate(build(base[start:], examples)) > room:
            continue
        messages = build(history[start:], examples)
        if count(messages) <= budget_tokens:
            return messages
    return _shorten_newest(build(history[-1:], False), count, budget_tokens)


def _block_starts(
    history: Sequence[Turn], count_tokens: Callable[[str], int], room: int
) -> list[int]:
    """Window starts to try, oldest first: block boundaries, about half of ``room`` apart.

    Boundaries are where the running token count of the conversation crosses a multiple of
    half the room, so they do not move as turns are added.
    """
    costs = [count_tokens(t.text) + PER_MESSAGE_TOKENS for t in history]
    step = max(1, room // 2)
    boundaries, total, next_cut = [], 0, step
    for i, cost in enumerate(costs):
        total += cost
        if total >= next_cut and i + 1 < len(history):
            boundaries.append((i + 1, total))
            next_cut = (total // step + 1) * step
    fitting = [b for b, before in boundaries if total - before <= room]
    return fitting or [len(history) - 1] if history else []


def _place_memory(messages: list[Message], note: str, layout: PromptLayout) -> list[Message]:
    if not note:
        return messages
    if layout.memory == "before_user":
        at = len(messages)  # a prefill: where the next line will come
        if messages[-1]["role"] == "user":
            at -= 1
        return [*messages[:at], {"role": "system", "content": note}, *messages[at:]]
    system = {"role": "system", "content": messages[0]["content"] + "\n\n" + note}
    return [system, *messages[1:]]


class PromptTooLong(ValueError):
    """Even the persona with the newest line cut short does not fit the budget."""


def _shorten_newest(
    messages: list[Message], count: Callable[[list[Message]], int], budget: int
) -> list[Message]:
    """Only the newest turn is left and still too long: keep the end of it that fits."""
    turns = [i for i, m in enumerate(messages) if m["role"] in ("user", "assistant")]
    if turns:
        i = turns[-1]
        text = messages[i]["content"]
        while count(messages) > budget and len(text) > 1:
            text = text[len(text) // 4 + 1 :]
            messages[i] = {**messages[i], "content": text}
    if (need := count(messages)) > budget:
        raise PromptTooLong(
            f"the character's prompt needs {need} tokens but only {budget} are left once the "
            "reply has room: raise VOICE_CHAT_LLM_CONTEXT or lower VOICE_CHAT_MAX_REPLY_TOKENS"
        )
    return messages


#: how many of the character's latest replies a new reply may not repeat word for word
AVOID_REPLIES = 12


def avoid_texts(turns: Sequence[Turn]) -> tuple[str, ...]:
    """What a new reply must not repeat: the latest replies and the user's latest lines."""
    replies = [t.text for t in turns if t.role == "assistant" and t.text.strip()]
    user = [t.text for t in turns if t.role == "user" and t.text.strip()]
    return (*replies[-AVOID_REPLIES:], *user[-6:])


def opening_texts(turns: Sequence[Turn]) -> tuple[str, ...]:
    """The latest replies, whose openings a new reply may not reuse."""
    return tuple(t.text for t in turns if t.role == "assistant" and t.text.strip())[-6:]


def stop_strings(user_name: str) -> tuple[str, ...]:
    """The model starting to write the user's line ends the reply."""
    return tuple(dict.fromkeys(("\nUser:", f"\n{user_name}:", "User:", f"{user_name}:")))
