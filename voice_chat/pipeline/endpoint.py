"""Semantic end of turn: has the user finished, or only paused?

Two signals, each cheap, are combined into *how much silence ends this turn*:

* the words so far (the speculative transcript made during the pause): a turn that ends in
  "and", "about", "the", "I was thinking", a comma or "..." is unfinished; one that ends in
  a full stop or question mark on a content word is finished; one with no closing
  punctuation is unsure (Whisper leaves it off fragments);
* the sound (a :class:`~voice_chat.engines.base.TurnAnalyzer`, Smart Turn v3.2): the
  probability that the speaker's intonation and pace say "done".

A complete turn ends quickly (no longer than the plain 300 ms endpoint, shorter when both
signals agree); an unsure one waits longer; an unfinished one waits up to a cap, then ends
anyway. ``eagerness`` (the OpenAI Realtime API's ``semantic_vad`` names) scales the waits.
See docs/turns.md for the measurements behind the numbers.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np

from voice_chat.engines.base import TurnAnalyzer

Eagerness = Literal["low", "medium", "high", "auto"]
Verdict = Literal["complete", "unsure", "incomplete"]

# Words after which an English sentence almost never ends.
CONTINUATIONS = frozenset(
    """
    a an the and but or nor because cause if than that which whose whether although though
    unless until since as like about above across after against along among at before behind
    below beneath beside besides between beyond by despite during except for from into near
    of onto per through to toward towards upon versus via with within without is are was
    were am be been being would shall should could may might must my your his her its our
    their every each very i we they she i'm we're you're they're there's let's gonna wanna
    um uh er erm
    """.split()
)
# Phrases after which the speaker is still building the sentence.
OPENERS = (
    "i was thinking", "i think", "i guess", "i mean", "i was wondering", "you know",
    "what i want", "the thing is", "i would like", "i'd like", "i want", "tell me",
    "can you", "could you", "do you", "what do you", "how about", "i feel like",
)
_WORD = re.compile(r"[a-z']+")


def text_verdict(text: str) -> Verdict:
    """How finished a (partial) transcript reads."""
    t = text.strip().lower()
    if not t:
        return "unsure"
    if t.endswith(("...", "…", ",", "-", "—", ";", ":")):
        return "incomplete"
    words = _WORD.findall(t)
    if not words:
        return "unsure"
    tail = " ".join(words[-4:])
    if words[-1] in CONTINUATIONS or any(tail.endswith(p) for p in OPENERS):
        return "incomplete"
    return "complete" if t[-1] in ".?!" else "unsure"


@dataclass(frozen=True)
class EndpointPolicy:
    """Silence (ms) that ends a turn, by verdict. ``None`` signal: not used."""

    confident_ms: int  # complete, and the sound agrees
    complete_ms: int  # complete by the words
    unsure_ms: int  # no closing punctuation, sound not sure either
    max_ms: int  # unfinished: wait this long, then end anyway
    audio_threshold: float = 0.5
    use_text: bool = True
    use_audio: bool = True

    def silence_ms(self, verdict: Verdict | None, p_audio: float | None) -> int:
        """How long a silence ends the turn, given what is known so far."""
        sound = None if (p_audio is None or not self.use_audio) else p_audio
        if not self.use_text:
            verdict = None
        if verdict is None:
            if not self.use_text and sound is not None:  # the sound alone decides
                return self.complete_ms if sound >= self.audio_threshold else self.max_ms
            return self.max_ms  # the words are not in yet
        if verdict == "incomplete":
            return self.max_ms
        if verdict == "complete":
            if sound is None or sound >= self.audio_threshold:
                return self.confident_ms if sound is not None else self.complete_ms
            return self.complete_ms
        if sound is not None and sound >= 0.8:
            return self.complete_ms
        return self.unsure_ms


POLICIES: dict[str, EndpointPolicy] = {
    "high": EndpointPolicy(confident_ms=128, complete_ms=224, unsure_ms=608, max_ms=1500),
    "medium": EndpointPolicy(confident_ms=192, complete_ms=288, unsure_ms=896, max_ms=2500),
    "low": EndpointPolicy(confident_ms=288, complete_ms=480, unsure_ms=1216, max_ms=4000),
}
POLICIES["auto"] = POLICIES["medium"]


def policy_for(
    eagerness: str, *, max_ms: int | None = None, use_audio: bool = True
) -> EndpointPolicy:
    base = POLICIES[eagerness]
    cap = max(base.unsure_ms, max_ms) if max_ms else base.max_ms
    return EndpointPolicy(
        base.confident_ms, base.complete_ms, base.unsure_ms, cap, base.audio_threshold,
        base.use_text, use_audio,
    )


Runner = Callable[[Callable[[], float]], Awaitable[float]]


class Endpointer:
    """The state of one turn's end: what the words and the sound said during this pause."""

    def __init__(
        self, policy: EndpointPolicy, analyzer: TurnAnalyzer | None, run: Runner | None
    ) -> None:
        self.policy = policy
        self.analyzer = analyzer if policy.use_audio else None
        self._run = run
        self.reset()

    def reset(self) -> None:
        """Speech (re)started: what was judged no longer holds."""
        self.verdict: Verdict | None = None
        self.p_audio: float | None = None
        self.text = ""

    def on_text(self, text: str) -> int:
        self.text = text
        self.verdict = text_verdict(text)
        return self.silence_ms()

    async def on_audio(self, audio: np.ndarray) -> int:
        """Run the sound model (in its worker thread) on the turn so far."""
        if self.analyzer is not None and self._run is not None and len(audio):
            analyzer = self.analyzer
            self.p_audio = await self._run(lambda: analyzer.probability(audio))
        return self.silence_ms()

    def silence_ms(self) -> int:
        return self.policy.silence_ms(self.verdict, self.p_audio)
