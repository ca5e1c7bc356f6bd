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
import dataclasses
import re
import time
from dataclasses import dataclass

import numpy as np
import structlog

from voice_chat.audio.aec import EchoCanceller, make_canceller
from voice_chat.audio.echo import EchoReference
from voice_chat.audio.pcm import MODEL_RATE, StreamResampler, pcm16_to_float
from voice_chat.pipeline.reply import Reply

log = structlog.get_logger(__name__)
# Audio after a gap is placed this much before it is sent: the echo canceller's reference
# may come early (it estimates the delay), never after the echo.
REFERENCE_LEAD_S = 0.03
CLEAR_ECHO = 0.8  # an echo check this sure tells that the client echoes
RAW_KEEP = MODEL_RATE  # microphone audio kept as it came in (before the canceller)
# ... of which this much is judged: a person's first words soon show in a short window
RAW_WINDOW = MODEL_RATE * 192 // 1000
BACKCHANNELS = frozenset(
    """
    mm mmm mhm mm-hmm mmhmm hmm hm uh-huh uhhuh uh huh um yeah yea yep yup yes ya right
    alright okay ok k sure i see oh ah aha wow nice cool great true exactly totally got it
    gotcha indeed ha haha hahaha heh hehe no way really interesting all
    damn gosh whoa jeez geez ooh man wild
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
# A hum ("mm", "mm-hmm") that Whisper wrote as a word: m, n and h syllables, one short vowel
# each, at most one consonant before them ("mam", "memm", "amen", "them", "damn", "bam").
_HUM = re.compile(r"^(?:[bcdkpt]|th|wh)?h?(?:[aeiou]?[mnh]+)+$")
FILLERS = frozenset("and then so well oh the it its a an".split())
# Thanks said over a reply acknowledge it (and are what Whisper makes of a murmur, or of the
# faint rest of our echo): they let it go on, as "mm-hmm" does.
THANKS = frozenset({"thank you", "thanks", "you", "thank you very much", "thanks a lot"})


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
    if " ".join(w for w in words if w not in BACKCHANNELS) in THANKS:  # "Oh, thank you."
        return True
    content = [w for w in words if not (w in BACKCHANNELS or _sound(w) or len(w) == 1)]
    if len(words) > 6:
        return False
    vague = all(w in FILLERS for w in content)
    hummed = vague and len(content) < len(words)  # "And mmmm...", "Mm, and mm"
    return not content or hummed or (voiced_ms <= 800 and vague and len(words) <= 4)


def _sound(word: str) -> bool:
    return bool(_SOUND.match(word) or ("m" in word and _HUM.match(word)))


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
    judge_after_ms: int = 0  # voiced audio after which it is judged before it ends
    watchdog: asyncio.Task[None] | None = None  # lets the reply go on if never judged


class BargeIn:
    """The echo reference, the echo canceller and the overlap being judged, for one pipeline.

    ``cancel_echo``: WebRTC AEC3 on the microphone (:mod:`voice_chat.audio.aec`), made in the
    listening pool at the first audio (it is a native module), where it can be loaded.
    """

    def __init__(self, echo: EchoReference | None = None, *, cancel_echo: bool = False) -> None:
        self.echo = echo or EchoReference()
        self.canceller: EchoCanceller | None = None
        self._want_canceller = cancel_echo
        self.cancelling = False  # the VAD and STT hear the canceller's output
        self.echo_turn = False  # the VAD is hearing only our own reply coming back
        self.overlap: Overlap | None = None
        self._resampler: StreamResampler | None = None
        self._ref_end = 0.0  # monotonic time the last reference sample plays
        self._next_check = 0.0
        self._doubt = 0
        self._echo_heard = 0  # checks that found our echo in the microphone
        self._raw = np.zeros(0, np.float32)  # the last second of microphone, not cancelled
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
        """Reply audio as it is sent. It plays after what was sent before it; or, where that
        has played out (the reply was held, or a chunk came late), as soon as it arrives: the
        silence in between is in the reference too, so the echo canceller's delay holds."""
        if self._resampler is None:
            return
        now = time.monotonic() - REFERENCE_LEAD_S
        if now > self._ref_end:
            self.echo.add_reply(np.zeros(round((now - self._ref_end) * MODEL_RATE), np.float32))
            self._ref_end = now
        audio = self._resampler.process(pcm16_to_float(pcm))
        self.echo.add_reply(audio)
        self._ref_end += len(audio) / MODEL_RATE

    # --- the microphone
    def hear(self, audio16k: np.ndarray, *, in_speech: bool = False) -> np.ndarray:
        """Microphone audio in; the audio to listen to. Blocking: run it in the listening pool.

        With a canceller, the microphone always goes through it (so it stays adapted), and
        its output is what is heard while the reply's echo may come in, once this client is
        known to echo. (Where there is no echo, AEC3 takes the user for echo and removes
        them for the first seconds: a headset or a browser's own canceller must not go
        through it.) The choice changes between utterances or during an echo turn, never in
        the user's speech: the output is a few milliseconds behind the raw audio.
        """
        spoken_until = self.echo.clock(len(audio16k))
        heard = audio16k
        self._raw = np.concatenate([self._raw, audio16k.astype(np.float32)])[-RAW_KEEP:]
        if self._want_canceller:
            self._want_canceller, self.canceller = False, make_canceller()
        if self.canceller is not None:
            clean = self.canceller.process(audio16k, spoken_until, self.echo.playing)
            if not in_speech or self.echo_turn:
                self.cancelling = self.echoing and self.echo_possible()
            if self.cancelling:
                heard = clean
        self.echo.keep_mic(heard)
        return heard

    def echo_possible(self, tail_s: float = 1.0) -> bool:
        """Reply audio is playing, or stopped so lately that its echo may still come in."""
        return self.echo.active and time.monotonic() < self._ref_end + tail_s

    def is_echo(self) -> bool:
        """Blocking (about 10 ms): run it in the listening pool.

        Where this client is known to echo, one check that is not echo is not enough: two
        in a row are (64 ms apart). Once its echo is cancelled, one is: what is left of the
        echo is far quieter than a person.
        """
        verdict = self.echo.explains(cancelled=self.cancelling)
        log.debug("echo check", cancelled=self.cancelling, **vars(verdict))
        if self.cancelling and not verdict.echo:
            # What the canceller left is not faint: while it adapts, its rest of the echo can
            # be as loud as a person. Before the canceller, the microphone tells them apart:
            # our echo alone correlates with the reply (0.86-0.94 measured), a person talking
            # over it does not (0.54-0.77).
            raw = self.echo.explains(source=self._raw[-RAW_WINDOW:])
            log.debug("echo check before the canceller", **vars(raw))
            if raw.correlation >= CLEAR_ECHO:
                verdict = dataclasses.replace(raw, echo=True)
        elif verdict.echo and not self.echoing and verdict.correlation < CLEAR_ECHO:
            # From a client never heard to echo, a sound only somewhat like the reply is the
            # user (a voice like the character's, right after the greeting), not our echo.
            verdict = dataclasses.replace(verdict, echo=False)
        if verdict.echo:
            self._doubt = 0
            # only clear echo counts: a person's voice correlates with the reply's up to ~0.7
            self._echo_heard += not self.cancelling and verdict.correlation >= CLEAR_ECHO
            return True
        self._doubt += 1
        return self.echo.learned and not self.cancelling and self._doubt < 2

    @property
    def echoing(self) -> bool:
        """This client's microphone picks up the reply (heard clearly in three checks)."""
        return self._echo_heard >= 3 or self.echo.learned

    def check_due(self, every_s: float = 0.064) -> bool:
        now = time.monotonic()
        if now < self._next_check:
            return False
        self._next_check = now + every_s
        return True
