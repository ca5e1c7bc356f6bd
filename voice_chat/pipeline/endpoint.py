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

import asyncio
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
import structlog

if TYPE_CHECKING:
    from voice_chat.pipeline.ports import Engines, SessionConfig
    from voice_chat.pipeline.turns import TurnDetector

log = structlog.get_logger(__name__)

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
    "i was thinking",
    "i think",
    "i guess",
    "i mean",
    "i was wondering",
    "you know",
    "what i want",
    "the thing is",
    "i would like",
    "i'd like",
    "i want",
    "tell me",
    "can you",
    "could you",
    "do you",
    "what do you",
    "how about",
    "i feel like",
)
# Continuation words that a question may end on ("What music do you like?", "Where are you
# from?", "Do you know who they are?"). "about" is not one: "Can you tell me about?" is
# Whisper writing a question mark on a fragment far more often than a finished question.
STRANDED = frozenset(
    "like for from with to at of by is are am was were be been since before after".split()
)
SHORT_ANSWERS = frozenset(
    """
    yes yeah yep yup no nope okay ok sure thanks thank hi hello hey bye goodbye maybe fine
    great good right cool nice absolutely definitely course agreed exactly true false never
    always later now please sorry wow totally perfect awesome done
    """.split()
)
SUBJECTS = frozenset("i you we they he she it that this there".split())
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
    if words[-1] in CONTINUATIONS:
        if words[-1] in STRANDED and t[-1] in "?.":
            return "complete" if t[-1] == "?" else "unsure"
        return "incomplete"
    if any(tail.endswith(p) for p in OPENERS):
        return "unsure" if t[-1] == "?" else "incomplete"  # "Do you?", "Can you?"
    if t[-1] == "?":
        return "complete"
    if t[-1] not in ".!":
        return "unsure"
    # Whisper puts a full stop after a fragment too ("Those days."): a very short statement
    # is complete only as a known short answer or with a verb contraction ("I'm tired.").
    subject = words[0] in SUBJECTS and len(words) >= 2  # "I love it.", "It works."
    if len(words) < 4 and not subject and not any(w in SHORT_ANSWERS or "'" in w for w in words):
        return "unsure"
    return "complete"


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
        # Unsure words wait even when the sound says "done": measured on six synthetic
        # voices, that shortcut ended 4% more paused utterances early (docs/performance.md).
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
        base.confident_ms,
        base.complete_ms,
        base.unsure_ms,
        cap,
        base.audio_threshold,
        base.use_text,
        use_audio,
    )


class Endpointer:
    """What the words and the sound said about the turn during this pause."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Speech (re)started: what was judged no longer holds."""
        self.verdict: Verdict | None = None
        self.p_audio: float | None = None
        self.text = ""

    def on_text(self, text: str) -> None:
        self.text = text
        self.verdict = text_verdict(text)

    def on_audio(self, p_complete: float | None) -> None:
        self.p_audio = p_complete

    def silence_ms(self, policy: EndpointPolicy) -> int:
        return policy.silence_ms(self.verdict, self.p_audio)


class SemanticEndpoint:
    """Moves a turn detector's endpoint as the pause's words and sound are judged.

    ``semantic_vad`` only: the detector waits for the cap until something is known, then for
    the silence the policy gives. Judgements of an earlier pause are ignored.
    """

    def __init__(self, config: SessionConfig, detector: TurnDetector, engines: Engines) -> None:
        self.config, self.detector, self.engines = config, detector, engines
        self.state = Endpointer()
        self._pause_no = 0
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def active(self) -> bool:
        return self.config.turn.semantic and not self.config.naive

    def policy(self) -> EndpointPolicy:
        turn = self.config.turn
        return policy_for(turn.eagerness, max_ms=turn.max_wait_ms)

    def listen_again(self) -> None:
        """Speech (re)started: forget the pause's verdicts; wait for the cap until judged."""
        self._pause_no += 1
        self.state.reset()
        self.detector.endpoint_ms = self.policy().max_ms if self.active else None

    def judge_words(self, text: str, audio: np.ndarray) -> None:
        """The speculative transcript of this pause; the sound is judged only if it can count.

        The sound model runs after the words, not beside them: it would slow down the
        transcription the reply waits for, and it only moves a turn whose words are complete.
        """
        if not self.active:
            return
        self.state.on_text(text)
        self._moved()
        if self.state.verdict == "complete" or not self.policy().use_text:
            self.judge_sound(audio)

    def judge_sound(self, audio: np.ndarray) -> None:
        """Run the sound model on the turn so far, in the background."""
        if not self.active:
            return
        pause = self._pause_no

        async def judge() -> None:
            try:
                p = await self.engines.turn_probability(audio)
            except Exception as exc:  # noqa: BLE001 - the words still decide
                log.warning("turn analysis failed", error=str(exc))
                return
            if pause == self._pause_no:
                self.state.on_audio(p)
                self._moved()

        task = asyncio.create_task(judge())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _moved(self) -> None:
        if self.active and self.detector.endpoint_ms is not None:
            self.detector.endpoint_ms = self.state.silence_ms(self.policy())

    def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
