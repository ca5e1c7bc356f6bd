"""Character + conversation → chat messages for the LLM."""

from __future__ import annotations

from collections.abc import Callable

from voice_chat.characters import Character
from voice_chat.conversation import Turn
from voice_chat.engines.base import Message

SPOKEN_STYLE = (
    "You are speaking out loud in a voice call. Answer in one to three short spoken sentences. "
    "No stage directions, no emoji, no lists, no markdown."
)


def _sub(text: str, char: str, user: str) -> str:
    for a, b in (("{{char}}", char), ("{{user}}", user), ("<BOT>", char), ("<USER>", user)):
        text = text.replace(a, b)
    return text


def build_messages(
    character: Character,
    turns: list[Turn],
    *,
    user_name: str = "User",
    count_tokens: Callable[[str], int] = lambda s: len(s) // 4,
    budget_tokens: int = 1500,
) -> list[Message]:
    """Persona and example dialogue first, then as many recent turns as fit the budget."""
    d = character.data
    name = character.name
    parts = [
        f"You are {name}.",
        str(d.get("description", "")),
        f"{name}'s personality: {d['personality']}" if d.get("personality") else "",
        f"Scenario: {d['scenario']}" if d.get("scenario") else "",
        SPOKEN_STYLE,
    ]
    default = "\n".join(p for p in parts if p)
    system = str(d.get("system_prompt") or "").replace("{{original}}", default) or default
    head: list[Message] = [{"role": "system", "content": _sub(system, name, user_name)}]
    for block in str(d.get("mes_example", "")).split("<START>"):
        for line in block.strip().splitlines():
            low = line.strip()
            if low.lower().startswith(("{{user}}:", "<user>:")):
                head.append(
                    {"role": "user", "content": _sub(low.split(":", 1)[1].strip(), name, user_name)}
                )
            elif low.lower().startswith(("{{char}}:", "<bot>:")):
                head.append(
                    {
                        "role": "assistant",
                        "content": _sub(low.split(":", 1)[1].strip(), name, user_name),
                    }
                )
    used = sum(count_tokens(m["content"]) for m in head)
    tail: list[Message] = []
    for turn in reversed(turns):
        cost = count_tokens(turn.text) + 4
        if used + cost > budget_tokens and tail:
            break
        used += cost
        tail.append({"role": turn.role, "content": turn.text})
    tail.reverse()
    post = str(d.get("post_history_instructions") or "")
    if post:
        tail.append(
            {"role": "system", "content": _sub(post.replace("{{original}}", ""), name, user_name)}
        )
    return head + tail
