"""The three small interfaces every engine implements.

STT and TTS are synchronous and CPU-bound: the pipeline calls them in worker threads.
The chat model is asynchronous because one backend is an HTTP server; the embedded backend
runs its own worker thread and checks ``cancel`` between tokens.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from voice_chat.errors import VoiceChatError


class EngineError(VoiceChatError, RuntimeError):
    """An engine could not be loaded or failed; the message says what to do."""

    def __init__(self, message: str, code: str = "engine_failed") -> None:
        super().__init__(code, message)


class SpeechToText(Protocol):
    def transcribe(self, audio: np.ndarray, *, retry: bool = True) -> str:
        """16 kHz mono float32 audio to text; ``retry=False``: one quick pass, no second try
        where the engine doubts its first (a live preview, not the turn's transcript)."""
        ...


@dataclass(frozen=True)
class GenerationOptions:
    max_tokens: int = 80
    temperature: float = 0.3
    repeat_penalty: float = 1.15  # small models loop without it; engines that lack it ignore it
    stop: tuple[str, ...] = ()
    #: texts not to repeat (earlier replies, the user's words): engines that can steer
    #: generation forbid every ``avoid_ngram``-token run of them; others ignore it
    avoid: tuple[str, ...] = ()
    avoid_ngram: int = 5
    #: earlier replies whose openings a new reply may not reuse
    openings: tuple[str, ...] = ()
    #: phrases the reply may not contain (assistant talk for a character that is no AI)
    banned: tuple[str, ...] = ()
    #: the reply's opening: an engine that can continue from it puts it at the end of the
    #: prompt and yields it as the reply's first delta; others ignore it
    reply_prefix: str = ""


Message = dict[str, str]  # {"role": "system"|"user"|"assistant", "content": str}


class ChatModel(Protocol):
    name: str

    def stream(
        self, messages: list[Message], options: GenerationOptions, cancel: threading.Event
    ) -> AsyncIterator[str]:
        """Yield text deltas of the reply; stop early when ``cancel`` is set."""
        ...

    async def warm(self, messages: list[Message], *, background: bool = False) -> None:
        """Pre-compute what can be cached for this prompt prefix (no-op where not possible)."""
        ...

    def count_tokens(self, text: str) -> int: ...

    def count_prompt(self, messages: list[Message]) -> int:
        """Tokens of the whole prompt as the model sees it (chat template included)."""
        ...


class TurnAnalyzer(Protocol):
    """Judges from the sound of a turn whether the speaker has finished (CPU-bound)."""

    name: str

    def probability(self, audio: np.ndarray) -> float:
        """16 kHz mono float32 audio of the turn so far to P(the turn is complete)."""
        ...


class Synthesizer(Protocol):
    sample_rate: int

    def synthesize(self, text: str) -> Iterator[np.ndarray]:
        """Yield float32 mono chunks at ``sample_rate`` for the text."""
        ...
