"""The characters a user can talk to: shipped cards plus imported ones."""

from voice_chat.characters.registry import (
    CHARACTER_ID,
    Character,
    CharacterError,
    CharacterRegistry,
)

__all__ = ["CHARACTER_ID", "Character", "CharacterError", "CharacterRegistry"]
