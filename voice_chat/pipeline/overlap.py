"""Speech while the character is talking: its own echo, a backchannel, or an interruption.

* **Echo**: the server keeps the reply audio it sent (:class:`~voice_chat.audio.echo.
  EchoReference`); speech the VAD hears that is only that audio coming back is ignored, and
  checked again every few frames, so a person who starts talking over the echo still
  interrupts.
* **Backchannel**: other speech *holds* the reply at once (no more audio is sent) and is
  judged from what is heard: short (under ``backchannel_ms`` of voiced audio) and a
  backchannel ("mm-hmm", "yeah", "right", "okay") or no words at all (a laugh, a cough):
  the reply goes on from where it was held. Anything else is an interruption: the reply is
  cancelled and the speech is the user's next turn.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass

import numpy as np
import structlog

from voice_chat.audio.echo import EchoReference
from voice_chat.audio.pcm import MODEL_RATE, StreamResampler, pcm16_to_float
from voice_chat.pipeline.reply import Reply

log = structlog.get_logger(__name__)
BACKCHANNELS = frozenset(
    """
    mm mmm mhm mm-hmm mmhmm hmm hm uh-huh uhhuh uh huh um yeah yea yep yup yes ya right
    alright okay ok k sure i see oh ah aha wow nice cool great true exactly totally got it
    gotcha indeed ha haha hahaha heh hehe no way really interesting
    """.split()
)
_WORD = re.compile(r"[a-z]+(?:[-'][a-z]+)*")


def echoes(text: str, said: str) -> bool:
    """The transcript is the character's own words coming back (most words were just said)."""
    words = _WORD.findall(text.lower())
    if not words:
        return False
    spoken = {w[:4] for w in _WORD.findall(said.lower())}  # "friends" is "friend" misheard
    return sum(w[:4] in spoken for w in words) >= max(1, 0.5 * len(words))


# "mm", "mmm", "hmm", "mhm", "uh", "huh", "ah", "aha", "haha", "heh"
_SOUND = re.compile(r"^(h?m+|mhm+|h?u+h*|a?h?a+h*|(ha)+h?|heh|hehe)$")
FILLERS = frozenset("and then so well oh".split())


STOPS = frozenset(
    "stop wait hold hang no nope hey sorry excuse pardon what why how who where when "
    "but actually listen shut enough quiet".split()
)


def is_backchannel(text: str, voiced_ms: int = 10_000) -> bool:
    """Words that say "go on" rather than "stop": every word a backchannel word or sound,
    or (Whisper often mishears a murmur as "And then...") very short with no stop word."""
    words = [p for w in _WORD.findall(text.lower()) for p in re.split(r"[-']", w) if p]
    words = [w for i, w in enumerate(words) if i == 0 or w != words[i - 1]]  # "Mm-m-m-m"
    if any(w in STOPS for w in words) or "?" in text:
        return False
    content = [w for w in words if not (w in BACKCHANNELS or _SOUND.match(w) or len(w) == 1)]
    if len(words) > 6:
        return False
    vague = all(w in FILLERS for w in content)
    return not content or (voiced_ms <= 800 and vague and len(words) <= 4)


def echo_fragment(text: str) -> bool:
    """One lone word heard while our echo may still come in: most often a piece of it that
    Whisper misheard ("room." for "...a while"), not an interruption. Stop words and
    questions still interrupt."""
    words = _WORD.findall(text.lower())
    return len(words) == 1 and words[0] not in STOPS and "?" not in text


@dataclass
class Overlap:
    """User speech during a reply that is not judged yet (the reply is held meanwhile)."""

    started_ms: int  # stream time the speech began
    held_at: float  # monotonic time the reply was held
    watchdog: asyncio.Task[None] | None = None  # lets the reply go on if never judged


class BargeIn:
    """The echo reference and the overlap being judged, for one pipeline."""

    def __init__(self, echo: EchoReference | None = None) -> None:
        self.echo = echo or EchoReference()
        self.echo_turn = False  # the VAD is hearing only our own reply coming back
        self.overlap: Overlap | None = None
        self._resampler: StreamResampler | None = None
        self._ref_end = 0.0  # monotonic time the last reference sample plays
        self._next_check = 0.0
        self._doubt = 0
        self._replies: list[Reply] = []

    # --- the reply's audio, as it will play
    def said(self) -> str:
        """The words of the replies whose echo may still come in."""
        return " ".join(r.full_text for r in self._replies)

    def reply_starts(self, rate: int, reply: Reply | None = None) -> None:
        now = time.monotonic()
        if reply is not None:
            self._replies = [*self._replies[-1:], reply]
        self._resampler = StreamResampler(rate, MODEL_RATE)
        self.echo.start_reply(now)
        self._ref_end = now

    def reply_audio(self, pcm: bytes) -> None:
        if self._resampler is not None:
            audio = self._resampler.process(pcm16_to_float(pcm))
            self.echo.add_reply(audio)
            self._ref_end += len(audio) / MODEL_RATE

    def held_for(self, seconds: float) -> None:
        self.echo.shift(seconds)
        self._ref_end += seconds

    # --- the microphone
    def hear(self, audio16k: np.ndarray) -> None:
        self.echo.add_mic(audio16k)

    def echo_possible(self, tail_s: float = 1.0) -> bool:
        """Reply audio is playing, or stopped so lately that its echo may still come in."""
        return self.echo.active and time.monotonic() < self._ref_end + tail_s

    def is_echo(self) -> bool:
        """Blocking (about 10 ms): run it in the listening pool.

        Where this client is known to echo, one check that is not echo is not enough: two
        in a row are (64 ms apart).
        """
        verdict = self.echo.explains()
        log.debug("echo check", **vars(verdict))
        if verdict.echo:
            self._doubt = 0
            return True
        self._doubt += 1
        return self.echo.learned and self._doubt < 2

    def check_due(self, every_s: float = 0.064) -> bool:
        now = time.monotonic()
        if now < self._next_check:
            return False
        self._next_check = now + every_s
        return True
