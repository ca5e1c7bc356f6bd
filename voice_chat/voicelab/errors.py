"""Error codes of voice registration.

Every failure is a ``voice_chat.engines.voices.VoiceError(code, message)``; the message says
what was wrong and what to do. The codes and their HTTP statuses are listed, with every other
code of the API, in :data:`voice_chat.errors.HTTP_STATUS`.
"""

from __future__ import annotations

from voice_chat.engines.voices import VoiceError
from voice_chat.errors import HTTP_STATUS, status_for

__all__ = ["HTTP_STATUS", "VoiceError", "status_for"]
