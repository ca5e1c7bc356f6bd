"""The pipeline's two ports: the engines it calls, and the outbox it talks through.

Where an engine runs (in this process, a worker pool, a remote deployment) is the business of
whatever implements :class:`Engines`; the pipeline only awaits it. A session owns a
:class:`SessionConfig` and the pipeline reads it live, so a ``session.update`` takes effect at
the next frame or reply without copying settings into the pipeline.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol, TypeVar

import numpy as np

from voice_chat.audio.pcm import MODEL_RATE
from voice_chat.engines.base import GenerationOptions, Message
from voice_chat.pipeline.events import ServerEvent

if TYPE_CHECKING:
    from voice_chat.characters import Character

T = TypeVar("T")


class Engines(Protocol):
    """Speech-to-text, the chat model and speech synthesis, as the pipeline uses them."""

    async def transcribe(self, audio: np.ndarray) -> str:
        """16 kHz mono float32 audio to text."""
        ...

    async def transcribe_partial(self, audio: np.ndarray) -> str | None:
        """The words so far of speech still going on; None when STT is busy (best effort)."""
        ...

    def generate(
        self, messages: list[Message], options: GenerationOptions, cancel: threading.Event
    ) -> AsyncIterator[str]:
        """Text deltas of the reply; the model stops soon after ``cancel`` is set."""
        ...

    async def prefill(self, messages: list[Message]) -> None:
        """Pre-compute the model's cache for this prompt prefix (a no-op where impossible)."""
        ...

    def count_tokens(self, text: str) -> int: ...

    def count_prompt(self, messages: list[Message]) -> int:
        """Tokens of the whole prompt as the model sees it (its chat template applied)."""
        ...

    def prompt_budget(self, max_reply_tokens: int) -> int:
        """Prompt tokens available once ``max_reply_tokens`` are kept for the reply."""
        ...

    async def sample_rate(self, voice_id: str) -> int:
        """The native output rate of a voice (loads it off the event loop if needed)."""
        ...

    async def synthesize(self, voice_id: str, text: str) -> np.ndarray:
        """Float32 mono audio at :meth:`sample_rate` for one chunk of text."""
        ...

    async def analyse(self, job: Callable[[], T]) -> T:
        """Run a small CPU job of the listening path (VAD, turn analysis) off the loop."""
        ...

    async def turn_probability(self, audio: np.ndarray) -> float | None:
        """P(the speaker has finished) from the sound of the turn; None without a model."""
        ...


class Outbox(Protocol):
    """How the pipeline talks to its transport (a websocket, or a test)."""

    async def event(self, event: ServerEvent) -> None: ...
    async def audio(self, pcm: bytes) -> None: ...
    async def error(self, code: str, message: str) -> None: ...


@dataclass
class TurnConfig:
    """Turn detection, as ``session.update`` sets it (``turn_detection``)."""

    type: Literal["server_vad", "semantic_vad", "manual"] = "server_vad"
    threshold: float = 0.5
    silence_ms: int = 300  # server_vad: silence that ends a turn
    speculative_ms: int = 64  # silence after which a reply is prepared (0: never)
    eagerness: Literal["low", "medium", "high", "auto"] = "auto"  # semantic_vad
    max_wait_ms: int | None = None  # semantic_vad: an unfinished turn ends after this silence
    min_speech_ms: int = 0  # less voiced speech than this is no turn (a click, a breath)
    echo_guard: bool = False  # speech that is only the reply's own echo does not interrupt
    echo_cancel: bool = False  # with echo_guard: AEC3 removes the echo from the microphone
    backchannel_ms: int = 0  # shorter "mm-hmm"/"yeah"/laughs do not interrupt (0: all do)

    @property
    def manual(self) -> bool:
        return self.type == "manual"

    @property
    def semantic(self) -> bool:
        return self.type == "semantic_vad"


@dataclass
class SessionConfig:
    """Everything about one session that the pipeline reads; the session owns and updates it."""

    character: Character
    voice_id: str  # resolved once, when the session (or character) is prepared
    output_rate: int  # reply audio rate on the wire
    user_name: str = "User"
    input_rate: int = MODEL_RATE
    turn: TurnConfig = field(default_factory=TurnConfig)
    generation: GenerationOptions = field(default_factory=GenerationOptions)
    max_reply_sentences: int = 3
    max_utterance_s: float = 30.0
    naive: bool = False  # the benchmark baseline: no overlap between stages
    # --- set by the OpenAI Realtime dialect (the native protocol keeps the defaults)
    auto_respond: bool = True  # reply when a spoken turn ends (else: transcribe and store it)
    speak: bool = True  # synthesise replies (else text only)
    instructions: str = ""  # the client's instructions, added to the persona
    replace_persona: bool = False  # instructions replace the persona instead
