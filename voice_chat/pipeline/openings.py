"""How a reply opens, where a small model gets a question about who is who wrong.

The engine puts the opening at the end of the prompt and goes on from it
(``GenerationOptions.reply_prefix``); the rest of the reply is the model's own.
"""

from __future__ import annotations

import re

from voice_chat.characters.registry import Character
from voice_chat.memory.facts import find_name
from voice_chat.pipeline.prompting import is_machine

_ASKS_OWN_NAME = re.compile(
    r"\b(?:my name|who am i|what(?:'s|(?: \w+){1,5})? call me(?=\W*$)|what am i called|"
    r"(?:what|how) i(?:'m| am) called|know who i am)\b",
    re.I,
)
_QUESTION_START = re.compile(
    r"^\s*(?:so,?\s+|and\s+|hey,?\s+|okay,?\s+)?(?:what|who|do|did|can|could|would|will|"
    r"remember|tell|say|guess|quick question)\b",
    re.I,
)


def name_answer(user_text: str, name: str | None) -> str:
    """How a reply opens when the user asks for their own name and the memory has it.

    SmolLM2 recalled a name the memory note put right before the question in 3 conversations
    of 5; it misspelt it ("Tumen" for Tomas) or gave its own. Starting the reply with the name
    (the engine continues from it) makes the answer right and leaves the rest to the model.
    A line that *tells* a name, or only mentions "my name" without asking, opens as usual.
    """
    text = user_text.strip()
    if not name or not text or not _ASKS_OWN_NAME.search(text):
        return ""
    if find_name(text) is not None:
        return ""  # "my name is Maya, remember?" tells it
    if not (text.endswith("?") or _QUESTION_START.match(text)):
        return ""
    return f"You're {name}"


_MACHINE_WORD = r"(?:ai|a\.i\.|bot|robot|machine|computer|program|chatbot|chat-?bot|artificial)"
_PERSON_WORD = r"(?:real|human|person|alive)"
# "are you an AI?", "you're a bot, aren't you?", "am I talking to a real person or a bot?"
_ASKS_WHAT_YOU_ARE = re.compile(
    r"\b(?:are you|aren't you|you're|you are|am i (?:talking|speaking|chatting) (?:to|with))"
    rf"\s+(?:[\w']+\s+){{0,2}}?(?:{_MACHINE_WORD}|{_PERSON_WORD})\b",
    re.I,
)


def identity_answer(user_text: str, character: Character) -> str:
    """How a reply opens when the user asks whether the character is a machine.

    Asked "are you an AI?", SmolLM2 called itself "a creative AI", "a language learning
    app" or "a chat-bot" in 2-3 of 5 conversations, whatever the persona said and however
    many wordings were blocked. A character whose card does not make it a machine answers
    as itself; one whose card does (a robot) is left to the model.
    """
    text = user_text.strip()
    if is_machine(character) or "?" not in text or not _ASKS_WHAT_YOU_ARE.search(text):
        return ""  # "You're a real friend." asks nothing
    me = character.name
    machine = re.search(rf"\b{_MACHINE_WORD}\b", text, re.I)
    person = re.search(rf"\b{_PERSON_WORD}\b", text, re.I)
    if machine and person:
        return f"As real as you are! I'm {me}"
    if machine:
        return f"No, I'm {me}"
    return f"Of course I'm real! I'm {me}"
