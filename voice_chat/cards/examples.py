"""``mes_example`` parsing: ``<START>``-separated blocks of ``{{user}}:`` / ``{{char}}:`` turns.

Each block becomes a list of real chat turns (``user`` / ``assistant``). A line starting with
a speaker tag (``{{user}}:``, ``<USER>:``, ``{{char}}:``, ``<BOT>:``, ``<CHAR>:`` or the literal
user/character name followed by ``:``) starts a turn; other lines continue the current one
(text before any tag counts as the character's). Consecutive turns of one role are merged.
"""

from __future__ import annotations

import re

_START = re.compile(r"<START>", re.IGNORECASE)
_USER_TAGS = r"\{\{user\}\}|<user>"
_CHAR_TAGS = r"\{\{char\}\}|<bot>|<char>"


def _speaker_pattern(char: str, user: str) -> re.Pattern[str]:
    user_alt = f"{_USER_TAGS}|{re.escape(user)}" if user.strip() else _USER_TAGS
    char_alt = f"{_CHAR_TAGS}|{re.escape(char)}" if char.strip() else _CHAR_TAGS
    return re.compile(rf"^\s*(?:(?P<user>{user_alt})|(?P<char>{char_alt}))\s*:\s?", re.IGNORECASE)


def split_examples(mes_example: str, *, char: str, user: str) -> list[list[dict[str, str]]]:
    """Blocks of ``{"role", "content"}`` turns, macros *not* substituted."""
    speaker = _speaker_pattern(char, user)
    blocks: list[list[dict[str, str]]] = []
    for raw_block in _START.split(mes_example):
        turns: list[dict[str, str]] = []
        for line in raw_block.splitlines():
            match = speaker.match(line)
            if match:
                role = "user" if match.group("user") is not None else "assistant"
                text = line[match.end() :]
                if turns and turns[-1]["role"] == role:
                    turns[-1]["content"] += "\n" + text
                else:
                    turns.append({"role": role, "content": text})
            elif turns:
                turns[-1]["content"] += "\n" + line
            elif line.strip():
                turns.append({"role": "assistant", "content": line})
        for turn in turns:
            turn["content"] = turn["content"].strip()
        turns = [turn for turn in turns if turn["content"]]
        if turns:
            blocks.append(turns)
    return blocks
