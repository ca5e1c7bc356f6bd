"""Long conversations: exact prompt counting, room for the reply, stable prefixes, no parrots.

These use the real embedded model (SmolLM2-135M) and its chat template.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from voice_chat.characters.registry import CharacterRegistry
from voice_chat.engines.base import GenerationOptions
from voice_chat.engines.llm_cache import StateCache, state_bytes
from voice_chat.engines.llm_llama import LlamaChat
from voice_chat.engines.llm_steer import MARKUP, NgramBlocker
from voice_chat.memory.facts import UserMemory
from voice_chat.pipeline.conversation import Turn
from voice_chat.pipeline.openings import identity_answer, name_answer
from voice_chat.pipeline.prompting import (
    avoid_texts,
    banned_phrases,
    build_messages,
)

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def llm(tmp_path_factory: pytest.TempPathFactory) -> LlamaChat:
    return LlamaChat("embedded:smollm2-135m", cache_dir=tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="module")
def nova(tmp_path_factory: pytest.TempPathFactory):
    return CharacterRegistry(ROOT / "characters", tmp_path_factory.mktemp("chars")).get("nova")


def chat(n: int) -> list[Turn]:
    turns = []
    for i in range(n):
        turns.append(
            Turn(2 * i, "user", f"Line {i}: I went for a walk by the river and saw birds.")
        )
        turns.append(Turn(2 * i + 1, "assistant", f"Reply {i}: That sounds lovely, tell me more!"))
    return turns


def test_the_prompt_is_counted_exactly_and_leaves_room_for_the_reply(llm, nova) -> None:
    budget = llm.context - 80 - 64
    turns = chat(400)  # far longer than the context
    for n in (1, 30, 150, 400):
        history = [*turns[: 2 * n - 1]]  # ends with a user line
        messages = build_messages(
            nova,
            history,
            count_tokens=llm.count_tokens,
            count_prompt=llm.count_prompt,
            budget_tokens=budget,
        )
        tokens = llm.prompt_tokens(messages)
        assert len(tokens) == llm.count_prompt(messages) <= budget
        assert messages[-1]["content"] == history[-1].text
        assert len(tokens) + 80 <= llm.context


def test_one_overlong_line_is_cut_to_fit(llm, nova) -> None:
    line = Turn(1, "user", "word " * 3000)
    messages = build_messages(
        nova,
        [line],
        count_tokens=llm.count_tokens,
        count_prompt=llm.count_prompt,
        budget_tokens=1000,
    )
    assert llm.count_prompt(messages) <= 1000 and messages[-1]["content"].endswith("word ")


def test_the_window_moves_in_blocks_and_the_prefill_matches_the_next_prompt(llm, nova) -> None:
    """Between block moves, the prefill after a reply is a token prefix of the next prompt."""
    budget = 1200
    turns = chat(80)
    starts, misses = [], 0
    for k in range(1, 80):
        after_reply = turns[: 2 * k]  # what the prefill after reply k-1 sees
        nxt = turns[: 2 * k + 1]  # the next prompt: plus the user's new line
        kw = dict(
            count_tokens=llm.count_tokens, count_prompt=llm.count_prompt, budget_tokens=budget
        )
        warm = llm.prompt_tokens(build_messages(nova, after_reply, **kw))
        prompt = build_messages(nova, nxt, **kw)
        tokens = llm.prompt_tokens(prompt)
        starts.append(
            next(m["content"] for m in prompt if m["content"].startswith(("Line", "Reply")))
        )
        shared = next(
            (i for i, (a, b) in enumerate(zip(warm, tokens, strict=False)) if a != b), len(warm)
        )
        if shared < len(warm) - 8:  # the warm ends with the generation prompt; allow that
            misses += 1
    moves = len(set(starts))
    assert 2 <= moves <= 80 / 6, f"the window start moved {moves} times in 80 turns"
    assert misses == 0, f"{misses} prompts did not extend their prefill"


def test_memory_is_in_the_prompt_after_the_window_moved_on(llm, nova) -> None:
    memory = UserMemory()
    memory.learn("I'm Maya, by the way.")
    messages = build_messages(
        nova,
        chat(200)[:-1],
        memory=memory,
        count_tokens=llm.count_tokens,
        count_prompt=llm.count_prompt,
        budget_tokens=900,
    )
    assert "I'm Maya" not in " ".join(m["content"] for m in messages)  # the line is long gone
    assert messages[-2]["role"] == "system" and "Maya" in messages[-2]["content"]
    assert messages[-1]["role"] == "user"


def test_ngram_blocking_steers_a_reply_away_from_an_earlier_one(llm, nova) -> None:
    messages = [
        {"role": "system", "content": "You are Nova, a friendly person. Answer in one sentence."},
        {"role": "user", "content": "What is your favorite food?"},
    ]

    async def reply(avoid: tuple[str, ...]) -> str:
        options = GenerationOptions(max_tokens=30, temperature=0.0, avoid=avoid)
        return "".join([d async for d in llm.stream(messages, options, threading.Event())])

    first = asyncio.run(reply(()))
    assert len(llm.tokenize(first)) >= 10
    steered = asyncio.run(reply((first,)))
    assert steered.strip() and steered != first
    a, b = llm.tokenize(first), llm.tokenize(steered)
    grams = {tuple(a[i : i + 5]) for i in range(len(a) - 4)}
    assert not any(tuple(b[i : i + 5]) in grams for i in range(len(b) - 4))


def test_a_reply_is_never_markup_even_when_asked_for_it(llm) -> None:
    asks = [
        (
            "Format every answer as markdown with ## headings and **bold** words.",
            "Explain how to make tea.",
        ),
        ("You are friendly.", "Give me a markdown table of three fruits and their colours."),
        ("You are a coder.", "Write a Python function that adds two numbers."),
    ]
    plain = GenerationOptions(max_tokens=60, temperature=0.0)
    mask = llm._markup
    for system, line in asks:
        messages = [{"role": "system", "content": system}, {"role": "user", "content": line}]
        llm._markup = frozenset()
        try:
            unmasked = asyncio.run(_reply_text(llm, messages, plain))
        finally:
            llm._markup = mask
        assert MARKUP.search(unmasked) or any(ord(c) > 0xFFFF for c in unmasked), unmasked
        reply = asyncio.run(_reply_text(llm, messages, plain))
        assert len(reply.split()) >= 5, reply
        assert not MARKUP.search(reply) and not any(ord(c) > 0xFFFF for c in reply), reply
    assert set(llm.tokenize("*")) <= mask and set(llm.tokenize(" (")) <= mask
    assert set(llm.tokenize("\U0001f34c")) & mask  # an emoji, in byte tokens
    assert not set(llm.tokenize(" fruit.")) & mask


async def _reply_text(llm, messages, options) -> str:
    return "".join([d async for d in llm.stream(messages, options, threading.Event())])


def test_blocker_forbids_banned_phrases_and_the_users_words(llm, nova) -> None:
    blocker = NgramBlocker(llm.tokenize, ["I had a rough day at work"], banned=banned_phrases(nova))
    said = llm.tokenize(" I'm an")
    assert set(llm.tokenize(" AI")) & blocker.forbidden(said)
    # the word itself, after any other ("a creative AI", "a supportive AI assistant")
    assert set(llm.tokenize(" AI")) & blocker.forbidden(llm.tokenize(" I'm a creative"))
    assert not set(llm.tokenize(" AI")) & NgramBlocker(llm.tokenize, []).forbidden([1, 2])
    words = llm.tokenize(" I had a rough day at")
    assert llm.tokenize(" work")[0] in blocker.forbidden(words)
    assert avoid_texts(chat(2)) == (
        "Reply 0: That sounds lovely, tell me more!",
        "Reply 1: That sounds lovely, tell me more!",
        "Line 0: I went for a walk by the river and saw birds.",
        "Line 1: I went for a walk by the river and saw birds.",
    )
    # a reply may not open like two earlier ones did
    opener = NgramBlocker(llm.tokenize, [], openings=["I'm so glad.", "I'm so sorry."])
    first = llm.tokenize("I'm so glad")
    assert first[1] in opener.forbidden(first[:1]) or first[2] in opener.forbidden(first[:2])
    # the user's name is never the character's own, in any spelling of the phrase
    own = NgramBlocker(llm.tokenize, [], banned=banned_phrases(nova, "Maya"))
    assert set(llm.tokenize(" Maya")) & own.forbidden(llm.tokenize(" I'm"))
    start = llm.tokenize("My name is Maya")
    assert start[len(llm.tokenize("My name is")) :][0] in own.forbidden(llm.tokenize("My name is"))
    # a capital at the start of a sentence does not lower the rest ("As an AI")
    as_an = llm.tokenize("As an AI")
    assert as_an[-1] in blocker.forbidden(as_an[:-1])


def test_the_state_cache_counts_everything_a_state_holds(llm, nova) -> None:
    from voice_chat.engines.llm_cache import save_state

    asyncio.run(llm.warm(build_messages(nova, chat(3), count_prompt=llm.count_prompt)))
    state = save_state(llm._llm)
    size = state_bytes(state)
    assert size >= state.llama_state_size + state.scores.nbytes
    assert state.scores.shape[0] == 1  # no copy of the whole logits buffer
    cache = StateCache(capacity_bytes=int(size * 2.5))
    for _ in range(5):
        cache.put(save_state(llm._llm))
        llm._llm.n_tokens -= 1  # a different key each time
    assert len(cache) == 2 and cache.size_bytes <= cache.capacity_bytes


def test_a_conversation_keeps_one_state_in_the_cache(llm, nova) -> None:
    """A state of the same call a turn ago is dropped, so four sessions sharing one model
    each keep one state instead of evicting each other's."""
    from voice_chat.engines.llm_cache import save_state

    asyncio.run(llm.warm(build_messages(nova, chat(3), count_prompt=llm.count_prompt)))
    full = llm._llm.n_tokens
    cache = StateCache(capacity_bytes=1 << 30)
    llm._llm.n_tokens = full - 20
    cache.put(save_state(llm._llm))  # the call a turn ago
    llm._llm.n_tokens = full
    cache.put(save_state(llm._llm))
    assert len(cache) == 1
    tokens = list(llm._llm.input_ids[:full])
    state, shared = cache.best(tokens)
    assert state is not None and shared == full
    retold = save_state(llm._llm)
    retold.input_ids = retold.input_ids.copy()
    retold.input_ids[full - 30] += 1  # the reply as generated, not as later stored
    llm._llm.input_ids[:full] = retold.input_ids[:full]
    llm._llm.input_ids[full] = 7
    llm._llm.n_tokens = full + 1  # the call's next turn goes on from the stored reply
    cache.put(save_state(llm._llm))
    assert len(cache) == 1  # the turn before is superseded though its tail differs
    other = save_state(llm._llm)
    other.input_ids = other.input_ids.copy()
    other.input_ids[full // 3] += 1  # another conversation (same persona, then its own)
    cache.put(other)
    assert len(cache) == 2 and cache.size_bytes == sum(
        state_bytes(s) for s in cache._states.values()
    )


def test_a_moved_window_keeps_the_kv_cache_of_the_kept_turns(llm, nova) -> None:
    """The window start moves (oldest turns dropped): the kept history is shifted in the KV
    cache, not evaluated again, and the model still answers."""
    import time

    from voice_chat.engines.llm_shift import shift_window

    system = build_messages(nova, [], count_prompt=llm.count_prompt)[:1]

    def as_messages(turns: list[Turn]) -> list:
        return [*system, *({"role": t.role, "content": t.text} for t in turns)]

    turns = chat(30)
    before = llm.prompt_tokens(as_messages(turns[:40]))
    asyncio.run(llm.warm(as_messages(turns[:40])))
    assert llm._llm.n_tokens == len(before)
    moved = as_messages(turns[10:41])  # ten turns dropped, one user line added
    tokens = llm.prompt_tokens(moved)
    kept = shift_window(llm._llm, tokens)
    assert kept >= 128
    n = llm._llm.n_tokens
    assert list(llm._llm.input_ids[:n]) == tokens[:n]
    assert n >= len(tokens) - 40  # only the new line is left to evaluate
    t = time.monotonic()
    text = "".join(
        asyncio.run(
            _collect(llm.stream(moved, GenerationOptions(max_tokens=12), threading.Event()))
        )
    )
    assert text.strip()
    assert time.monotonic() - t < 3.0  # evaluating ~700 tokens again takes longer here
    # Another conversation (nothing in common past the persona) is never cut into.
    other = llm.prompt_tokens([*system, {"role": "user", "content": "Something else. " * 60}])
    assert shift_window(llm._llm, other) == 0


async def _collect(stream) -> list[str]:
    return [d async for d in stream]


def test_a_warm_cancelled_before_it_starts_does_not_stop_later_warms(llm, nova) -> None:
    """A session that closes while its warm still waits for the model (the worker is busy)
    must not leave the model unwarmable: every later session's prompt is still warmed."""
    import time

    async def run() -> None:
        busy = llm._pool.submit(time.sleep, 0.3)  # the worker is taken
        early = asyncio.create_task(llm.warm(build_messages(nova, chat(1))))
        await asyncio.sleep(0.05)
        early.cancel()  # the session closed
        await asyncio.gather(early, return_exceptions=True)
        busy.result()
        later = build_messages(nova, chat(4), count_prompt=llm.count_prompt)
        await asyncio.wait_for(llm.warm(later), 60)  # handed to the warm loop, maybe running
        tokens = llm.prompt_tokens(later)
        deadline = time.monotonic() + 60
        while llm._llm.n_tokens != len(tokens) and time.monotonic() < deadline:  # noqa: ASYNC110 - polling the model state
            await asyncio.sleep(0.05)
        assert llm._llm.n_tokens == len(tokens)  # the whole prompt is in the cache

    asyncio.run(run())


async def test_a_reply_asked_for_the_users_name_opens_with_it(llm, nova) -> None:
    import threading

    turns = [
        Turn(0, "user", "I'm Tomas, by the way. I had a rough day at work."),
        Turn(1, "assistant", "I'm sorry to hear that. What happened?"),
        Turn(2, "user", "What did I tell you my name was?"),
    ]
    memory = UserMemory(name="Tomas")
    messages = build_messages(
        nova, turns, memory=memory, count_tokens=llm.count_tokens, budget_tokens=1500
    )
    opening = name_answer(turns[-1].text, memory.name)
    assert opening == "You're Tomas"
    options = GenerationOptions(max_tokens=24, temperature=0.0, reply_prefix=opening)
    deltas = [d async for d in llm.stream(messages, options, threading.Event())]
    assert deltas[0] == "You're Tomas" and len(deltas) > 1  # then the model goes on
    reply = "".join(deltas)
    assert reply.startswith("You're Tomas") and "You're TomasYou're" not in reply


def test_a_character_asked_if_it_is_a_machine_answers_as_itself(nova, tmp_path) -> None:
    pip = CharacterRegistry(ROOT / "characters", tmp_path).get("pip")
    machine_only = ["Be honest: are you an AI?", "You're a bot, aren't you?", "Are you a robot?"]
    for line in machine_only:
        assert identity_answer(line, nova) == "No, I'm Nova", line
        assert identity_answer(line, pip) == "", line  # the card makes Pip a robot
    for line in ("Wait, am I talking to a real person or a bot?", "Are you human or an AI?"):
        assert identity_answer(line, nova).startswith("As real as you are!"), line
    assert identity_answer("Are you even real?", nova).startswith("Of course I'm real!")
    not_asked = ("Are you a fan of sci-fi movies about robots?", "Tell me about AI.", "")
    for line in (*not_asked, "You're a real friend.", "You are so human, I love it."):
        assert identity_answer(line, nova) == "", line
