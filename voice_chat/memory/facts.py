"""What the user said about themselves, kept as short facts: a running memory of the user.

:func:`extract_facts` reads one user line and returns the facts in it: the user's name
("I'm Maya", "my name is Maya", "call me Maya") and short first-person statements ("I have a
dog called Biscuit", "my sister is getting married", "I love jazz", "today I went hiking").
A :class:`UserMemory` keeps the newest facts, one name, and renders them for the prompt. It
is small and plain on purpose: small models recall a name they are *told* in the prompt, not
one buried twenty turns back in the history.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

KINDS = ("name", "fact")
MAX_FACTS = 8
MAX_FACT_CHARS = 160
_NAME = r"([A-Z][a-z]{1,20}(?:[-'][A-Z]?[a-z]+)?)"
_NAME_PATTERNS = [
    re.compile(r"\bmy name(?:'s| is)\s+" + _NAME, re.I),
    re.compile(r"\b(?:call me|name's)\s+" + _NAME, re.I),
    re.compile(
        r"\b(?:I'm|I am|this is|it's)\s+"
        + _NAME
        + r"(?=\s*(?:[,.!?;]|$|and\b|by the way\b|here\b))"
    ),
]
# capitalised words that follow "I'm" but are no name
_NOT_NAMES = {
    "a",
    "an",
    "the",
    "just",
    "so",
    "not",
    "really",
    "very",
    "fine",
    "good",
    "great",
    "okay",
    "ok",
    "sorry",
    "sure",
    "here",
    "back",
    "home",
    "tired",
    "happy",
    "sad",
    "glad",
    "well",
    "busy",
    "bored",
    "done",
    "ready",
    "afraid",
    "excited",
    "new",
    "also",
    "still",
    "going",
    "doing",
    "feeling",
    "alright",
    "lonely",
    "hungry",
    "sick",
    "cold",
    "hot",
    "late",
    "me",
    "you",
    "him",
    "her",
    "them",
    "nobody",
    "somebody",
    "everyone",
    "human",
    "honest",
    "curious",
    "confused",
    "worried",
    "nervous",
    "interested",
    "thinking",
    "listening",
    "nova",
    "sage",
    "aria",
    "pip",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
    "today",
    "tonight",
    "english",
    "american",
    "british",
}
_FIRST_PERSON = re.compile(
    r"^(?:and |but |so |well |also |oh |actually |today |yesterday |tonight |this morning )*"
    r"(?:i(?:'m| am| have| had| got| love| like| enjoy| hate| work| live| just| went| was"
    r"| started| play| study| moved| feel| really| never| always| used to| can't| don't| do)"
    r"|my )\b",
    re.I,
)
_SENTENCES = re.compile(r"[^.!?]+[.!?]?")


def find_name(text: str) -> str | None:
    for pattern in _NAME_PATTERNS:
        for m in pattern.finditer(text):
            name = m.group(1)
            if name.lower() not in _NOT_NAMES and name[0].isupper():
                return name
    return None


def extract_facts(text: str) -> list[tuple[str, str]]:
    """``(kind, value)`` pairs told in one user line: ``("name", "Maya")``, ``("fact", ...)``."""
    found: list[tuple[str, str]] = []
    name = find_name(text)
    if name:
        found.append(("name", name))
    for raw in _SENTENCES.findall(text):
        sentence = raw.strip()
        words = sentence.split()
        if not 3 <= len(words) <= 25 or sentence.endswith("?"):
            continue
        if name and find_name(sentence) == name and len(words) <= 5:
            continue  # "I'm Maya." is the name, already kept
        if _FIRST_PERSON.match(sentence):
            found.append(("fact", sentence.rstrip(".!")[:MAX_FACT_CHARS]))
    return found


@dataclass
class UserMemory:
    """The user's name and their newest facts, oldest first."""

    name: str | None = None
    facts: list[str] = field(default_factory=list)

    def add(self, kind: str, value: str) -> bool:
        """Keep one fact; False when nothing changed."""
        if kind == "name":
            if value == self.name:
                return False
            self.name = value
            return True
        if kind != "fact":
            return False
        key = value.lower()
        if any(f.lower() == key for f in self.facts):
            return False
        self.facts.append(value)
        del self.facts[:-MAX_FACTS]
        return True

    def learn(self, text: str) -> list[tuple[str, str]]:
        """Take the facts of one user line; return those that were new."""
        return [(k, v) for k, v in extract_facts(text) if self.add(k, v)]

    def __bool__(self) -> bool:
        return bool(self.name or self.facts)

    def render(self, user: str) -> str:
        """The memory as prompt text, in the third person where it is easy."""
        if not self:
            return ""
        lines = []
        if self.name:
            lines.append(f"Remember: you are talking with {self.name}; their name is {self.name}.")
        if self.facts:
            told = "; ".join(_third_person(f) for f in self.facts)
            who = self.name or user
            lines.append(f"{who} told you: {told}.")
        return " ".join(lines)


def _third_person(fact: str) -> str:
    return f'"{fact}"'
