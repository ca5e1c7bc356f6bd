"""Strict automatic checks for one character reply (used by benchmarks/conversation.py).

Each check returns ``None`` when the reply passes, else a short reason. A reply *passes* when
every check passes. The checks read the reply as spoken (``response.done`` text).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

_WORD = re.compile(r"[a-z0-9']+")
ASSISTANT = re.compile(
    r"\b(as an ai|language model|how (can|may) i (assist|help) you|assist you|"
    r"i (cannot|can't|am unable to) (help|assist|do that|provide)|i cannot\b|"
    r"virtual assistant|ai assistant|i'm (here|designed|programmed) to (help|assist)|"
    r"(designed|programmed) to (provide|assist|help)|assist with)",
    re.I,
)
MACHINE_CLAIM = re.compile(
    r"\b(i'm|i am|as)\s+(?:(?!not\b|never\b|no\b)\w+\s+){0,3}?(ai|a\.i\.|artificial|"
    r"computer program|program|"
    r"chat-?\s?bot|chatbot|bot|robot|machine|assistant|language model)\b|"
    r"\b(i'm|i am)\s+an?\s+(\w+\s+){0,2}app\b|"
    r"\bi don't have (personal |real )?(feelings|emotions|experiences|a body)\b",
    re.I,
)
LABEL = r"(?:^|[\n.!?]\s*|\s)(?:User|Assistant|Human|AI|{names})\s*:"
UNCLEAN = re.compile("[*()\\[\\]#`<>_~{}|\\\\]|https?://|[\U0001f000-\U0001faff\u2600-\u27bf]")
VOCATIVE = re.compile(
    r"(?:^|[.!?]\s+)(?:Hi|Hey|Hello|Oh|Well|Thanks|Thank you|Yes|No|Sure|Okay|Ah|Aw),?\s+"
    r"([A-Z][a-z]{2,})\b|,\s+([A-Z][a-z]{2,})[!.?,]"
)
SELF_NAME = re.compile(r"\b(?:I'm|I am|my name is|call me|name's)\s+([A-Z][a-z]{2,})\b")
YOUR_NAME = re.compile(r"\byour name(?: is|'s| was)\s+([A-Z][a-z]{1,})\b", re.I)
COMMON_CAPS = {
    "I",
    "The",
    "It",
    "That",
    "This",
    "What",
    "How",
    "Why",
    "When",
    "Where",
    "Who",
    "There",
    "Today",
    "Tomorrow",
    "Yes",
    "No",
    "Oh",
    "Well",
    "Sure",
    "Okay",
    "And",
    "But",
    "So",
    "Just",
    "Sorry",
    "Thanks",
    "Thank",
    "Hello",
    "Hi",
    "Hey",
    "Friend",
    "Traveller",
    "Traveler",
    "Human",
    "Dear",
    "Buddy",
    "Pal",
    "Mate",
    "Sir",
    "Madam",
    "Captain",
    "Always",
    "Never",
    "Let",
    "Let's",
    "Maybe",
    "Really",
    "Great",
    "Good",
    "Nice",
    "Life",
    "Love",
    "Music",
    "Jazz",
    "Monday",
    "Friday",
    "Saturday",
    "Sunday",
    "English",
    "God",
    "Earth",
    "Sea",
    "Ocean",
    "Absolutely",
    "Definitely",
    "Indeed",
    "Ahoy",
    "Beep",
    "Boop",
    "Wow",
    "Ha",
    "Haha",
    "Aww",
    "Alright",
    "Right",
    "Not",
    "Here",
    "Together",
    "Fun",
    "Bye",
    "Goodbye",
    "Everyone",
    "Anyone",
    "Someone",
    "Nothing",
    "Everything",
    "Something",
    "Happy",
    "Have",
}


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower().replace("’", "'"))


def shared_run(a: str, b: str, n: int) -> bool:
    """``a`` and ``b`` share a run of at least ``n`` consecutive words."""
    wa, wb = words(a), words(b)
    grams = {tuple(wb[i : i + n]) for i in range(len(wb) - n + 1)}
    return any(tuple(wa[i : i + n]) in grams for i in range(len(wa) - n + 1))


@dataclass(frozen=True)
class Line:
    text: str  # what the user types ({name} is the user's name)
    kind: str  # smalltalk | name | about | story | ai | fact | recall
    expect: str = ""  # a regex the reply must match to count as responsive ({name})
    min_words: int = 2


@dataclass
class Context:
    char_name: str
    machine: bool  # the card says the character is a robot/AI
    user_name: str
    name_told: bool = False
    earlier: list[str] = field(default_factory=list)  # the character's earlier replies


def check_reply(reply: str, line: Line, user_line: str, ctx: Context) -> dict[str, str | None]:
    """Every check for one reply: ``{check: None or reason}``."""
    out: dict[str, str | None] = {}
    n = len(words(reply))
    out["length"] = None if max(2, line.min_words) <= n <= 70 else f"{n} words"
    m = ASSISTANT.search(reply)
    if m is None and not ctx.machine:
        m = MACHINE_CLAIM.search(reply)
    out["no_assistant_talk"] = f"says {m.group(0)!r}" if m else None
    out["no_role_confusion"] = _role_confusion(reply, user_line, ctx)
    m = UNCLEAN.search(reply)
    out["clean_speech"] = f"has {m.group(0)!r}" if m else None
    pattern = line.expect.format(name=re.escape(ctx.user_name))
    responsive = not pattern or re.search(pattern, reply, re.I)
    out["responsive"] = None if responsive else "does not answer the line"
    out["no_repeat"] = next(
        (
            f"repeats {e[:40]!r}"
            for e in ctx.earlier
            if words(e) == words(reply) or shared_run(reply, e, 6)
        ),
        None,
    )
    opening = words(reply)[:3]
    same = [e for e in ctx.earlier[-5:] if len(opening) == 3 and words(e)[:3] == opening]
    if out["no_repeat"] is None and len(same) >= 2:
        out["no_repeat"] = f"opens like {len(same)} earlier replies: {' '.join(opening)!r}"
    out["in_character"] = _in_character(reply, ctx)
    if line.kind == "recall":
        recalled = re.search(rf"\b{re.escape(ctx.user_name)}\b", reply, re.I)
        out["recall"] = None if recalled else f"no {ctx.user_name!r}"
    return out


def _role_confusion(reply: str, user_line: str, ctx: Context) -> str | None:
    names = "|".join(re.escape(x) for x in {ctx.user_name, ctx.char_name, "You", "Me"})
    if re.search(LABEL.format(names=names), reply):
        return "speaker label"
    if shared_run(reply, user_line, 5):
        return "says the user's words as its own"
    known = {ctx.char_name, *ctx.char_name.split()} | COMMON_CAPS
    if ctx.name_told:
        known.add(ctx.user_name)
    for m in VOCATIVE.finditer(reply):
        name = m.group(1) or m.group(2)
        if name not in known:
            return f"calls the user {name!r}"
    m = YOUR_NAME.search(reply)
    if m and m.group(1).lower() != ctx.user_name.lower():
        return f"says the user's name is {m.group(1)!r}"
    if re.search(r"\bUser\b", reply):
        return "calls the user 'User'"
    return None


def _in_character(reply: str, ctx: Context) -> str | None:
    for m in SELF_NAME.finditer(reply):
        name = m.group(1)
        if name not in ctx.char_name.split() and name not in COMMON_CAPS:
            if name.lower() == ctx.user_name.lower() or name[0].isupper():
                return f"calls itself {name!r}"
    if not ctx.machine and MACHINE_CLAIM.search(reply):
        return "a human character says it is a machine"
    return None


Check = Callable[[str, Line, str, Context], dict[str, str | None]]
CHECKS = (
    "length",
    "no_assistant_talk",
    "no_role_confusion",
    "clean_speech",
    "responsive",
    "no_repeat",
    "in_character",
    "recall",
)

#: the scripted lines: small talk, the name, a question about the character, a story or a
#: joke, "are you an AI?", and recall of the name
SCRIPT = (
    Line(
        "Hi! How has your day been so far?",
        "smalltalk",
        r"\b(day|good|great|fine|well|wonderful|lovely|busy|been|thanks|thank|glad|happy|"
        r"nice|you|yours|today|morning|sun|sea|fire|beep|fun)\b",
    ),
    Line(
        "I'm {name}, by the way. I had a rough day at work and I feel a bit down.",
        "name",
        r"\b(sorry|rough|tough|hard|hear|hope|feel|down|work|happen\w*|talk|better|here|"
        r"okay|day|{name})\b",
    ),
    Line(
        "What do you like to do when you're not talking to me?",
        "about",
        r"\b(I|I'm|I've|my|me)\b",
        min_words=5,
    ),
    Line(
        "Tell me a short joke or a little story.",
        "story",
        r"\b(why|what do you call|knock|once|there was|because|so|and|then|one day)\b",
        min_words=10,
    ),
    Line(
        "Be honest with me: are you an AI?",
        "ai",
        r"\b(no|not|yes|I'm|I am|just|human|person|robot|real|me|who|what)\b",
    ),
    Line("What did I tell you my name was?", "recall", ""),
)

#: the same six kinds in other words (a second set, to see that a change is not tuned to
#: the first one's wording)
OTHER_SCRIPT = (
    Line(
        "Hey there, what's new with you?",
        "smalltalk",
        SCRIPT[0].expect,
    ),
    Line(
        "My name's {name}. I just got back from a long trip and I'm worn out.",
        "name",
        r"\b(sorry|trip|tired|long|rest|hear|hope|feel|home|back|welcome|travel\w*|"
        r"relax|okay|worn|sleep|{name})\b",
    ),
    Line("What's your favourite thing in the whole world?", "about", r"\b(I|I'm|my|me)\b"),
    Line(
        "Can you make me laugh? Tell me something funny.",
        "story",
        SCRIPT[3].expect,
        min_words=10,
    ),
    Line(
        "Wait, am I talking to a real person or a bot?",
        "ai",
        SCRIPT[4].expect,
    ),
    Line("Do you remember my name?", "recall", ""),
)
SCRIPTS = {"main": SCRIPT, "other": OTHER_SCRIPT}
