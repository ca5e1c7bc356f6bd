"""A conversation's turns, as the pipeline sees them. Persistent stores implement the same."""

from __future__ import annotations

import itertools
from typing import Protocol

from voice_chat.memory.facts import UserMemory
from voice_chat.memory.turns import Turn

__all__ = ["Conversation", "InMemoryConversation", "Turn", "conversation_info"]


class Conversation(Protocol):
    """The turns of one conversation; a stored one also says whether it was resumed."""

    id: str  # the conversation's id among the user's conversations with the character
    resumed: bool  # it had turns when the session opened it
    pending: list[tuple[str, str]]  # (code, message) problems to report once the session is up
    user_memory: UserMemory  # what the user told about themselves (learnt from user turns)

    def turns(self) -> list[Turn]: ...
    def add(self, role: str, text: str) -> int: ...
    def update(self, turn_id: int, text: str) -> None: ...
    def remove(self, turn_id: int) -> None: ...


class InMemoryConversation:
    """Turns kept for the life of one session."""

    _ids = itertools.count(1)

    def __init__(self, conversation_id: str = "default") -> None:
        self.id = conversation_id
        self._turns: list[Turn] = []
        self.user_memory = UserMemory()
        self.resumed = False
        self.pending: list[tuple[str, str]] = []

    def turns(self) -> list[Turn]:
        return list(self._turns)

    def add(self, role: str, text: str) -> int:
        turn = Turn(next(self._ids), role, text)
        self._turns.append(turn)
        if role == "user":
            self.user_memory.learn(text)
        return turn.id

    def update(self, turn_id: int, text: str) -> None:
        for turn in self._turns:
            if turn.id == turn_id:
                turn.text = text

    def remove(self, turn_id: int) -> None:
        self._turns = [t for t in self._turns if t.id != turn_id]


def conversation_info(conv: Conversation, shown: int = 20) -> dict[str, object]:
    """``session.created.session.conversation``: id, resumed or not, the last ``shown`` turns."""
    return {
        "id": conv.id,
        "resumed": conv.resumed,
        "turns": [{"role": t.role, "text": t.text} for t in conv.turns()[-shown:]],
    }
