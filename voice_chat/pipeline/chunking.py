"""Turn a stream of LLM tokens into speakable chunks for TTS.

The first chunk is cut early, at a clause or word boundary after a few words, so speech starts
quickly; the second may end at a clause, so its speech is ready before the first's has played;
later chunks are whole sentences. Stage directions such as ``(laughs)`` or
``*smiles*``, markdown and emoji are removed because they would be read aloud.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

_SENTENCE_END = re.compile(r"[.!?…]+[\"')\]]*(?=\s)")
_CLAUSE_END = re.compile(r"[,;:—–]+(?=\s)")
_STAGE = re.compile(r"\([^()]*\)|\*[^*]*\*|\[[^\[\]]*\]")
_OPEN_STAGE = re.compile(r"[(*\[][^)*\]]*$")
_EMOJI = re.compile("[\U0001f000-\U0001faff\u2600-\u27bf\ufe0f]")
_SPEAKER_PREFIX = re.compile(r"^\s*[A-Z][\w .'-]{0,30}:\s+")
_SPACES = re.compile(r"\s+")
SECOND_MIN_WORDS = 3  # the second chunk ends at a clause once it has this many words


def clean_for_speech(text: str) -> str:
    """Drop stage directions, markdown and emoji; squeeze white space."""
    text = _STAGE.sub(" ", text)
    text = _EMOJI.sub("", text)
    text = text.replace("#", " ").replace("_", " ").replace("`", "")
    text = text.replace('"', "").replace("\u201c", "").replace("\u201d", "")
    return _SPACES.sub(" ", text).strip()


def count_sentences(text: str) -> int:
    return len(_SENTENCE_END.findall(text + " "))


@dataclass
class Chunker:
    """Accumulates text deltas and yields chunks ready for synthesis.

    ``first_min_words``/``first_max_words`` shape the first chunk; ``max_sentences`` caps the
    reply: once that many sentences are complete, :attr:`capped` turns true and the caller
    stops generating.
    """

    first_min_words: int = 2
    first_max_words: int = 4
    max_sentences: int = 3
    _buf: str = ""
    _emitted: int = 0
    _sentences: int = 0
    capped: bool = False
    spoken: list[str] = field(default_factory=list)

    def feed(self, delta: str) -> Iterator[str]:
        if self.capped:
            return
        self._buf += delta
        if not self._emitted:
            self._buf = _SPEAKER_PREFIX.sub("", self._buf.lstrip(), count=1)
        yield from self._drain(final=False)

    def flush(self) -> Iterator[str]:
        # a stage direction or quote left open when the reply stopped is not read out
        self._buf = _OPEN_STAGE.sub(" ", self._buf)
        yield from self._drain(final=True)

    def _drain(self, final: bool) -> Iterator[str]:
        while not self.capped:
            cut = self._find_cut(final)
            if cut is None:
                return
            piece, self._buf = self._buf[:cut], self._buf[cut:]
            ended_sentence = bool(_SENTENCE_END.search(piece.rstrip() + " "))
            text = clean_for_speech(piece)
            if ended_sentence:
                self._sentences += 1
                if self._sentences >= self.max_sentences:
                    self.capped = True
            if text and re.search(r"\w", text) and not self._repeats(text):
                self.spoken.append(text)
                self._emitted += 1
                yield text

    def _repeats(self, text: str) -> bool:
        """A whole sentence said already in this reply ("I'm sorry. I'm sorry.") is dropped."""
        key = re.sub(r"\W+", " ", text.lower()).strip()
        said = {re.sub(r"\W+", " ", t.lower()).strip() for t in self.spoken}
        return len(key.split()) >= 2 and key in said

    def _find_cut(self, final: bool) -> int | None:
        buf = self._buf
        if _OPEN_STAGE.search(buf) and not final:
            # Wait for a stage direction to close before cutting inside it.
            head = _OPEN_STAGE.split(buf)[0]
            return self._cut_in(head, allow_words=False)
        if final:
            return len(buf) if buf.strip() else None
        return self._cut_in(buf, allow_words=True)

    def _cut_in(self, buf: str, allow_words: bool) -> int | None:
        m = _SENTENCE_END.search(buf)
        if m:
            return m.end()
        if self._emitted == 1:
            # The second chunk may end at a clause too: after a short first chunk ("Oh,
            # well,") a long rest of the sentence kept its TTS waiting for the LLM, and the
            # first chunk's audio ran out before it (a playback stall).
            clause = _CLAUSE_END.search(buf)
            if clause and len(buf[: clause.end()].split()) >= SECOND_MIN_WORDS:
                return clause.end()
        if self._emitted == 0:
            words = len(buf.split())
            clause = _CLAUSE_END.search(buf)
            if clause and len(buf[: clause.end()].split()) >= self.first_min_words:
                return clause.end()
            if allow_words and words > self.first_max_words:
                # cut after the first_max_words-th word, at the following space
                spaces = [i for i, ch in enumerate(buf) if ch.isspace() and i > 0]
                idx = [i for i in spaces if not buf[i - 1].isspace()]
                if len(idx) >= self.first_max_words:
                    return idx[self.first_max_words - 1]
        return None
