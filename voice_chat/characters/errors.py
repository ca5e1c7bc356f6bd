"""The error of the character registry (its own module, so the helpers need no registry)."""

from __future__ import annotations

from voice_chat.errors import VoiceChatError


class CharacterError(VoiceChatError, ValueError):
    """No such character, a shipped one that cannot change, a stored one that is broken, or
    fields or a picture from the page that cannot be used."""
