"""Macros, example dialogue, greetings and prompt assembly with token trimming."""

from __future__ import annotations

import random
from typing import Any

import pytest

from voice_chat.cards import (
    DEFAULT_POST_HISTORY,
    CardError,
    Greeting,
    build_messages,
    card_from_dict,
    choose_greeting,
    substitute,
)
from voice_chat.cards.examples import split_examples
from voice_chat.memory import Message


def words(text: str) -> int:
    return len(text.split())


def make(**data: Any) -> Any:
    base = {
        "name": "Nova",
        "description": "{{char}} is a guide for {{user}}.",
        "personality": "warm",
        "scenario": "a café",
        "first_mes": "Hi {{user}}!",
    }
    base.update(data)
    return card_from_dict({"spec": "chara_card_v2", "spec_version": "2.0", "data": base})


def build(card: Any, history: list[Any], **kw: Any) -> list[dict[str, str]]:
    options: dict[str, Any] = {
        "user_name": "Bob",
        "count_tokens": words,
        "max_context_tokens": 10_000,
        "reply_reserve_tokens": 100,
    }
    options.update(kw)
    return build_messages(card, history, **options)


def turn(role: str, content: str) -> dict[str, str]:
    return {"role": role, "content": content}


# --- macros


def test_macros_case_insensitive_and_legacy() -> None:
    text = "{{char}} {{CHAR}} {{User}} <USER> <bot> <Char> {{ user }}"
    assert substitute(text, char="Nova", user="Bob") == "Nova Nova Bob Bob Nova Nova Bob"


def test_macros_single_pass_and_unknown_left_alone() -> None:
    assert substitute("hi {{user}}", char="N", user="{{char}}") == "hi {{char}}"
    assert substitute("{{unknown}} {{roll:abc}} {{original}}", char="N", user="U") == (
        "{{unknown}} {{roll:abc}} {{original}}"
    )
    assert substitute("a {{original}} b", char="N", user="U", original="X") == "a X b"


def test_macros_random_pick_roll_comments() -> None:
    rng = random.Random(1)
    assert substitute("{{random:a,b\\,c}}", char="N", user="U", rng=rng) in ("a", "b,c")
    first = substitute("{{pick:x,y,z}}", char="N", user="U")
    assert all(substitute("{{pick:x,y,z}}", char="N", user="U") == first for _ in range(5))
    for _ in range(20):
        assert 1 <= int(substitute("{{roll:d6}}", char="N", user="U")) <= 6
    assert substitute("a{{// hidden}}b{{comment: x}}c{{hidden_key:k}}", char="N", user="U") == "abc"
    assert substitute("{{roll:" + "9" * 5000 + "}}", char="N", user="U").startswith("{{roll:")


def test_nickname_is_char() -> None:
    card = card_from_dict(
        {
            "spec": "chara_card_v3",
            "spec_version": "3.0",
            "data": {"name": "Nova Prime", "nickname": "Nova", "first_mes": "I am {{char}}."},
        }
    )
    assert choose_greeting(card, 0) == Greeting(0, "I am Nova.")


# --- examples


def test_mes_example_split_into_turns() -> None:
    text = (
        "<START>\n{{user}}: Hi!\n{{char}}: Hello, {{user}}.\nSecond line.\n"
        "<start>\n<USER>: yo\n<BOT>: sup\n<BOT>: more\n"
        "<START>\nNova: I use my name\nBob: me too\n<START>\n\n"
    )
    blocks = split_examples(text, char="Nova", user="Bob")
    assert blocks == [
        [turn("user", "Hi!"), turn("assistant", "Hello, {{user}}.\nSecond line.")],
        [turn("user", "yo"), turn("assistant", "sup\nmore")],
        [turn("assistant", "I use my name"), turn("user", "me too")],
    ]
    assert split_examples("just narration", char="N", user="U") == [
        [turn("assistant", "just narration")]
    ]


def test_examples_become_chat_turns_with_macros() -> None:
    card = make(mes_example="<START>\n{{user}}: Hi!\n{{char}}: Hello, {{user}}.")
    msgs = build(card, [turn("user", "hey")])
    assert msgs[1:3] == [turn("user", "Hi!"), turn("assistant", "Hello, Bob.")]
    assert msgs[3] == turn("user", "hey")


# --- greetings


def test_choose_greeting_pinned_random_and_errors() -> None:
    card = make(alternate_greetings=["Yo {{user}}.", "  "])
    assert choose_greeting(card, 0, user_name="Bob") == Greeting(0, "Hi Bob!")
    assert choose_greeting(card, 1, user_name="Bob") == Greeting(1, "Yo Bob.")
    assert choose_greeting(card, 2) is None  # blank alternate
    seen = {choose_greeting(card, rng=random.Random(seed)).index for seed in range(30)}
    assert seen == {0, 1}
    with pytest.raises(CardError) as err:
        choose_greeting(card, 3)
    assert err.value.code == "invalid_greeting"
    assert choose_greeting(make(first_mes=""), rng=random.Random(0)) is None
    only_alt = make(first_mes="", alternate_greetings=["alt"])
    assert choose_greeting(only_alt) == Greeting(1, "alt")


# --- system prompt and post-history instructions


def test_default_system_prompt_has_defs_and_spoken_style() -> None:
    system = build(make(), [turn("user", "hi")])[0]
    assert system["role"] == "system"
    text = system["content"]
    assert "You are Nova, talking with Bob" in text and "spoken aloud" in text
    assert "no emoji" in text and "no markdown" in text and "three short sentences" in text
    assert "Nova is a guide for Bob." in text
    assert "Nova's personality: warm" in text and "Scenario: a café" in text


def test_card_system_prompt_replaces_default_with_original() -> None:
    replaced = build(make(system_prompt="Be {{char}}. Only."), [turn("user", "hi")])[0]["content"]
    assert replaced.startswith("Be Nova. Only.") and "spoken aloud" not in replaced
    assert "Nova is a guide for Bob." in replaced  # definitions stay
    wrapped = build(make(system_prompt="PRE {{original}} POST"), [turn("user", "hi")])[0]
    assert wrapped["content"].startswith("PRE You are Nova") and " POST" in wrapped["content"]


def test_post_history_instructions() -> None:
    msgs = build(make(), [turn("user", "hi")])
    assert msgs[-1] == turn("system", substitute(DEFAULT_POST_HISTORY, char="Nova", user="Bob"))
    msgs = build(make(post_history_instructions="{{original}} Stay calm, {{user}}."), [])
    assert msgs[-1]["content"].endswith("spoken sentences. Stay calm, Bob.")
    msgs = build(make(post_history_instructions="Only this."), [turn("user", "x")])
    assert msgs[-2:] == [turn("user", "x"), turn("system", "Only this.")]
    assert [m["role"] for m in build(make(), [], default_post_history="")] == ["system"]


# --- history, greeting and trimming


def test_history_from_memory_messages_and_greeting() -> None:
    history = [Message(1, "u", "c", "user", "hello", 0.0), {"role": "assistant", "text": "hey"}]
    msgs = build(make(), history, greeting="Hi Bob!")
    assert msgs[1:4] == [
        turn("assistant", "Hi Bob!"),
        turn("user", "hello"),
        turn("assistant", "hey"),
    ]
    with pytest.raises(ValueError):
        build(make(), [{"role": "narrator", "content": "x"}])


def test_trimming_keeps_system_and_newest_turns_within_budget() -> None:
    history = [
        turn("user" if i % 2 == 0 else "assistant", f"message number {i} " + "w " * 6)
        for i in range(40)
    ]
    card = make(mes_example="<START>\n{{user}}: example\n{{char}}: reply")
    limit, reserve, overhead = 300, 50, 4
    msgs = build(card, history, max_context_tokens=limit, reply_reserve_tokens=reserve)
    total = sum(words(m["content"]) + overhead for m in msgs)
    assert total <= limit - reserve
    assert msgs[0]["role"] == "system" and msgs[-1]["role"] == "system"
    kept = msgs[1:-1]
    assert kept == history[-len(kept) :]  # newest turns, in order; examples dropped
    assert 10 < len(kept) < 40
    # a bigger context keeps everything, and then the examples too
    msgs = build(card, history, max_context_tokens=100_000)
    assert msgs[1:3] == [turn("user", "example"), turn("assistant", "reply")]
    assert msgs[3:-1] == history


def test_trimming_uses_the_injected_counter() -> None:
    history = [turn("user", "abc"), turn("assistant", "abc"), turn("user", "abc")]
    calls: list[str] = []

    def chars(text: str) -> int:
        calls.append(text)
        return len(text)

    fixed = sum(chars(m["content"]) + 4 for m in build(make(), [], count_tokens=chars))
    msgs = build(
        make(), history, count_tokens=chars, max_context_tokens=fixed + 14, reply_reserve_tokens=0
    )
    assert [m["content"] for m in msgs[1:-1]] == ["abc", "abc"]
    assert calls


def test_newest_message_kept_even_when_persona_fills_context() -> None:
    card = make(description="long " * 500)
    msgs = build(
        card,
        [turn("user", "old"), turn("user", "newest")],
        max_context_tokens=100,
        reply_reserve_tokens=10,
    )
    assert [m["content"] for m in msgs[1:-1]] == ["newest"]


def test_hostile_card_text_stays_fast() -> None:
    import time

    card = make(
        description="{{" * 30_000,
        personality="{{x" * 20_000,
        scenario="<" * 60_000,
        mes_example=("<START>\n{{user}}:" + " " * 20 + "\n") * 1500,
        system_prompt="{{original}}" * 4000,
    )
    start = time.perf_counter()
    build(card, [turn("user", "{{" * 1000)])
    assert time.perf_counter() - start < 2.0
    assert substitute("{{" + "a" * 5000 + "}}", char="N", user="U").startswith("{{a")
