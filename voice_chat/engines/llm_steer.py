"""Steer generation while it streams: never say again what was already said.

:class:`NgramBlocker` is a logits processor (the ``no_repeat_ngram`` idea, applied across
turns): it holds the token n-grams of texts the character must not repeat (its earlier
replies, the user's words) and, at each step, forbids every token that would complete one of
them. An earlier reply therefore cannot come out word for word again, nor can the user's own
sentence be echoed back, and a reply that would have repeated simply takes another turn of
phrase at the same speed: no second generation, nothing thrown away.

``banned`` phrases (assistant talk such as "as an AI") are blocked the same way: their last
token may not follow the rest of the phrase, and a one-token word ("AI") may not come at all.
``openings`` (earlier replies) keep a reply from
starting the way the last ones did.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence

import numpy as np

Tokenize = Callable[[str], list[int]]
#: what a voice cannot say: markdown, brackets of stage directions ("*smiles*", "(laughs)"),
#: code, emoji
MARKUP = re.compile("[*()\\[\\]#`<>_~{}|\\\\]|[\U0001f000-\U0001faff\u2600-\u27bf]")


def markup_tokens(detokenize: Callable[[int], bytes], n_vocab: int) -> frozenset[int]:
    """The vocabulary's tokens that hold markup (special tokens detokenize to "": kept).

    Emoji are 4-byte UTF-8 and often split across byte tokens: a token with a 4-byte lead
    byte (0xF0-0xF4) is one too."""

    def markup(raw: bytes) -> bool:
        return bool(MARKUP.search(raw.decode("utf-8", "ignore"))) or any(
            0xF0 <= b <= 0xF4 for b in raw
        )

    return frozenset(i for i in range(n_vocab) if markup(detokenize(i)))


class NgramBlocker:
    """Forbid token n-grams of ``avoid`` texts; forbid ``banned`` phrases outright.

    ``prompt_len``: generated tokens are ``input_ids[prompt_len:]``; only they form the
    context an n-gram is matched against, so the prompt's own text is never blocked.
    """

    def __init__(
        self,
        tokenize: Tokenize,
        avoid: Iterable[str],
        *,
        n: int = 5,
        banned: Iterable[str] = (),
        openings: Iterable[str] = (),
        prompt_len: int = 0,
        never: Iterable[int] = (),
    ) -> None:
        self.n = n
        self._never = set(never)  # tokens never allowed (markup)
        self.prompt_len = prompt_len
        self._next: dict[tuple[int, ...], set[int]] = {}
        for text in avoid:
            for variant in {text.strip(), " " + text.strip()}:
                self._add_ngrams(tokenize(variant), n)
        # a reply may not open like an earlier one: its first three tokens, or a two-token
        # opening that two earlier replies already used ("I'm so glad ...", "I'm so sorry ...")
        self._open: dict[tuple[int, ...], set[int]] = {}
        twos: dict[tuple[int, ...], int] = {}
        for text in openings:
            tokens = tokenize(text.strip())
            if len(tokens) >= 3:
                self._open.setdefault(tuple(tokens[:2]), set()).add(tokens[2])
            if len(tokens) >= 2:
                twos[tuple(tokens[:2])] = twos.get(tuple(tokens[:2]), 0) + 1
        for pair, uses in twos.items():
            if uses >= 2:
                self._open.setdefault(pair[:1], set()).add(pair[1])
        self._phrases: dict[tuple[int, ...], set[int]] = {}
        self._start: set[int] = set()  # tokens a reply may not begin with
        for phrase in banned:
            # " as an AI" and "As an AI" tokenise differently: block each spelling (only the
            # first letter changes: str.capitalize() would also lower "AI" and names)
            upper = phrase[:1].upper() + phrase[1:]
            for variant in {" " + phrase, phrase, " " + upper, upper}:
                tokens = tokenize(variant)
                if len(tokens) >= 2:  # the phrase's last token may not follow the rest
                    self._phrases.setdefault(tuple(tokens[:-1]), set()).add(tokens[-1])
                elif tokens and variant.startswith(" "):  # a one-token word (" AI"): nowhere
                    self._phrases.setdefault((), set()).add(tokens[0])
                elif tokens:  # "AI" without its space is also a piece of other words
                    self._start.add(tokens[0])
        self._prefix_lengths = sorted({len(k) for k in self._phrases})
        self.blocked = 0  # tokens forbidden so far (for tests and metrics)

    def _add_ngrams(self, tokens: Sequence[int], n: int) -> None:
        for i in range(len(tokens) - n + 1):
            self._next.setdefault(tuple(tokens[i : i + n - 1]), set()).add(tokens[i + n - 1])

    def forbidden(self, generated: Sequence[int]) -> set[int]:
        """Tokens that may not come next after ``generated``."""
        out: set[int] = set(self._never)
        tail = tuple(generated[-(self.n - 1) :]) if len(generated) >= self.n - 1 else None
        if tail is not None:
            out |= self._next.get(tail, set())
        for k in self._prefix_lengths:
            if k <= len(generated):  # k == 0: the one-token words
                out |= self._phrases.get(tuple(generated[len(generated) - k :]), set())
        if len(generated) <= 2:
            out |= self._open.get(tuple(generated), set())
        if not generated:
            out |= self._start
        return out

    def __call__(self, input_ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
        generated = input_ids[self.prompt_len :].tolist()
        ban = [t for t in self.forbidden(generated) if 0 <= t < len(scores)]
        if ban:
            self.blocked += len(ban)
            scores[ban] = -np.inf
        return scores
