"""Lorebook triggering: keys, secondary keys, case, scan depth, budget, regex, decorators."""

from __future__ import annotations

import time
from typing import Any

import pytest

from voice_chat.cards import LoreResult, build_messages, card_from_dict, parse_lorebook, scan
from voice_chat.cards.decorators import split_decorators


def words(text: str) -> int:
    return len(text.split())


def entry(keys: list[str], content: str, **kw: Any) -> dict[str, Any]:
    base = {
        "keys": keys,
        "content": content,
        "extensions": {},
        "enabled": True,
        "insertion_order": 10,
    }
    base.update(kw)
    return base


def run(
    entries: list[dict[str, Any]],
    said: list[str] | list[tuple[str, str]],
    book: dict[str, Any] | None = None,
    **kw: Any,
) -> LoreResult:
    history = [m if isinstance(m, tuple) else ("user", m) for m in said]
    lore = parse_lorebook({"entries": entries, "extensions": {}, **(book or {})})
    return scan(lore, history, count_tokens=words, **kw)


def texts(result: LoreResult) -> list[str]:
    return [*result.before_char, *result.after_char, *(t for _, _, t in result.at_depth)]


def test_key_triggers_case_insensitive_by_default() -> None:
    entries = [entry(["Dragon"], "Dragons breathe fire.")]
    assert texts(run(entries, ["I saw a DRAGON"])) == ["Dragons breathe fire."]
    assert texts(run(entries, ["I saw a lizard"])) == []


def test_case_sensitive() -> None:
    entries = [entry(["Dragon"], "lore", case_sensitive=True)]
    assert texts(run(entries, ["a dragon"])) == []
    assert texts(run(entries, ["a Dragon"])) == ["lore"]


def test_secondary_keys_with_selective() -> None:
    entries = [entry(["castle"], "castle lore", selective=True, secondary_keys=["king", "queen"])]
    assert texts(run(entries, ["the castle"])) == []
    assert texts(run(entries, ["the castle of the queen"])) == ["castle lore"]
    not_selective = [entry(["castle"], "lore", selective=False, secondary_keys=["king"])]
    assert texts(run(not_selective, ["the castle"])) == ["lore"]


def test_disabled_constant_and_empty() -> None:
    entries = [
        entry(["moon"], "never", enabled=False, constant=True),
        entry([], "always", constant=True),
        entry(["moon"], ""),
    ]
    assert texts(run(entries, ["the moon"])) == ["always"]
    assert texts(run(entries, [])) == ["always"]


def test_blank_keys_never_match() -> None:
    assert texts(run([entry(["", "  "], "x")], ["anything"])) == []


def test_scan_depth_book_entry_and_decorator() -> None:
    said = ["the sword", "hello", "how are you", "fine"]
    assert texts(run([entry(["sword"], "lore")], said, {"scan_depth": 3})) == []
    assert texts(run([entry(["sword"], "lore")], said, {"scan_depth": 4})) == ["lore"]
    per_entry = entry(["sword"], "lore", extensions={"scan_depth": 10})
    assert texts(run([per_entry], said, {"scan_depth": 1})) == ["lore"]
    decorated = entry(["sword"], "@@scan_depth 1\nlore")
    assert texts(run([decorated], said, {"scan_depth": 10})) == []
    assert texts(run([entry(["fine"], "lore")], said, {"scan_depth": 0})) == []
    assert texts(run([entry(["sword"], "lore")], said, default_scan_depth=1)) == []


def test_budget_drops_lowest_priority_first() -> None:
    entries = [
        entry(["a"], "one two three", priority=5, insertion_order=1),
        entry(["a"], "four five", priority=1, insertion_order=2),
        entry(["a"], "six seven", priority=9, insertion_order=3),
    ]
    result = run(entries, ["a"], {"token_budget": 5})
    assert texts(result) == ["one two three", "six seven"]  # in insertion order
    assert texts(run(entries, ["a"], {"token_budget": 100}, token_budget=2)) == ["six seven"]
    assert len(texts(run(entries, ["a"]))) == 3  # no budget


def test_budget_without_priority_uses_insertion_order_and_stops_at_overflow() -> None:
    entries = [
        entry(["a"], "low", insertion_order=1),
        entry(["a"], "big big big big", insertion_order=2),
        entry(["a"], "top", insertion_order=3),
    ]
    # "top" (rank 3) fits, "big..." (rank 2) does not: it and everything ranked lower go.
    assert texts(run(entries, ["a"], {"token_budget": 3})) == ["top"]


def test_insertion_order_and_positions() -> None:
    entries = [
        entry(["x"], "third", insertion_order=30),
        entry(["x"], "first", insertion_order=10),
        entry(["x"], "after", insertion_order=20, position="after_char"),
    ]
    result = run(entries, ["x"])
    assert result.before_char == ["first", "third"] and result.after_char == ["after"]


def test_regex_keys() -> None:
    entries = [entry(["/dr(a|e)g[o0]n/i"], "regex lore", use_regex=True)]
    assert texts(run(entries, ["a DREG0N appears"])) == ["regex lore"]
    assert texts(run(entries, ["a wyvern"])) == []
    bare = [entry(["Dragon$"], "bare", use_regex=True, case_sensitive=True)]
    assert texts(run(bare, ["a dragon"])) == []
    assert texts(run(bare, ["a Dragon"])) == ["bare"]
    multiline = [entry(["/^dragon/m"], "ml", use_regex=True)]
    assert texts(run(multiline, ["hi\ndragon"])) == ["ml"]
    # secondary keys are ignored for regex entries; constant too (V3)
    ignored = [entry(["/x/"], "r", use_regex=True, selective=True, secondary_keys=["zzz"])]
    assert texts(run(ignored, ["x"])) == ["r"]
    assert texts(run([entry(["/q/"], "c", use_regex=True, constant=True)], ["x"])) == []


def test_catastrophic_regex_times_out_as_no_match(caplog: pytest.LogCaptureFixture) -> None:
    entries = [entry(["/(a|aa)+$/"], "slow", use_regex=True), entry(["b"], "fast")]
    start = time.perf_counter()
    result = run(entries, ["a" * 5000 + "!b"])
    assert time.perf_counter() - start < 2.0
    assert texts(result) == ["fast"]
    assert "timed out" in caplog.text


def test_depth_decorator_inserts_into_history() -> None:
    book = {
        "entries": [entry(["moon"], "@@depth 2\n@@role user\nThe moon is cheese.")],
        "extensions": {},
    }
    card = card_from_dict(
        {"spec": "chara_card_v2", "data": {"name": "Nova", "character_book": book}}
    )
    history = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "the moon?"},
    ]
    msgs = build_messages(
        card,
        history,
        user_name="Bob",
        count_tokens=words,
        max_context_tokens=4000,
        reply_reserve_tokens=100,
    )
    contents = [m["content"] for m in msgs[1:-1]]
    assert contents == ["hi", "The moon is cheese.", "hello", "the moon?"]
    assert msgs[2]["role"] == "user"
    deep = run([entry(["moon"], "@@depth 99\nx")], ["moon"]).at_depth
    assert deep == [(99, "system", "x")]


def test_depth_zero_and_out_of_range_placement() -> None:
    book = {"entries": [entry(["moon"], "@@depth 0\nlast"), entry(["moon"], "@@depth 50\nfirst")]}
    card = card_from_dict(
        {"name": "Nova", "spec": "chara_card_v2", "data": {"name": "Nova", "character_book": book}}
    )
    msgs = build_messages(
        card,
        [{"role": "user", "content": "moon"}],
        user_name="U",
        count_tokens=words,
        max_context_tokens=999,
        reply_reserve_tokens=0,
    )
    assert [m["content"] for m in msgs[1:-1]] == ["first", "moon", "last"]


def test_sillytavern_extensions_depth_and_whole_words() -> None:
    st = entry(["sun"], "st lore", extensions={"position": 4, "depth": 1, "role": 2})
    assert run([st], ["sun"]).at_depth == [(1, "assistant", "st lore")]
    whole = [entry(["cat"], "felines", extensions={"match_whole_words": True})]
    assert texts(run(whole, ["a category"])) == []
    assert texts(run(whole, ["a cat."])) == ["felines"]
    assert texts(run([entry(["cat"], "sub")], ["a category"])) == ["sub"]


def test_decorators_activation_rules() -> None:
    assert texts(run([entry(["zzz"], "@@activate\non")], ["nothing"])) == ["on"]
    assert texts(run([entry(["moon"], "@@dont_activate\noff")], ["moon"])) == []
    excl = entry(["moon"], "@@exclude_keys sun, star\nx")
    assert texts(run([excl], ["moon"])) == ["x"]
    assert texts(run([excl], ["moon and star"])) == []
    add = entry(["moon"], "@@additional_keys night\nx")
    assert texts(run([add], ["moon"])) == []
    assert texts(run([add], ["moon at night"])) == ["x"]


def test_decorators_turn_counters_and_greeting() -> None:
    said = [("assistant", "hi"), ("user", "moon"), ("assistant", "yes"), ("user", "moon")]
    after = [entry(["moon"], "@@activate_only_after 3\nx")]
    assert texts(run(after, said)) == []
    assert texts(run(after, [*said, ("assistant", "ok"), ("user", "moon")])) == ["x"]
    every = [entry(["moon"], "@@activate_only_every 2\nx")]
    assert texts(run(every, said)) == ["x"]
    assert texts(run(every, said[:2])) == []
    greet = [entry(["moon"], "@@is_greeting 1\nx")]
    assert texts(run(greet, said, greeting_index=1)) == ["x"]
    assert texts(run(greet, said, greeting_index=0)) == []


def test_ignore_on_max_context_dropped_first() -> None:
    entries = [
        entry(["a"], "@@ignore_on_max_context\nfirst to go", priority=100),
        entry(["a"], "keep me", priority=1),
    ]
    assert texts(run(entries, ["a"], {"token_budget": 2})) == ["keep me"]


def test_recursive_scanning() -> None:
    entries = [entry(["king"], "The king lives in the castle."), entry(["castle"], "Castle lore.")]
    assert texts(run(entries, ["the king"])) == ["The king lives in the castle."]
    result = run(entries, ["the king"], {"recursive_scanning": True})
    assert texts(result) == ["The king lives in the castle.", "Castle lore."]


def test_split_decorators_and_fallbacks() -> None:
    decs, text = split_decorators("@@risu_only 4\n@@@depth 3\n@@role bogus\n@@@role user\n\nbody")
    assert text == "body"
    assert decs.int("depth") == 3 and decs.get("role") == "user"
    decs, _ = split_decorators("@@depth 2\n@@@depth 7\n@@depth 9\nx")
    assert decs.int("depth") == 2  # fallback skipped, first one wins
    decs, _ = split_decorators("@@depth many\n@@activate_only_every 0\nx")
    assert not decs.has("depth") and not decs.has("activate_only_every")


@pytest.mark.parametrize("keys", ["moon, sun", ["moon", "sun"]])
def test_comma_separated_keys_accepted(keys: Any) -> None:
    assert texts(run([entry(keys, "x")], ["sun"])) == ["x"]


def test_lorebook_renders_macros_before_budget() -> None:
    book = {"entries": [entry(["moon"], "{{char}} loves {{user}}.", position="after_char")]}
    card = card_from_dict(
        {
            "spec": "chara_card_v2",
            "data": {"name": "Nova", "description": "D", "character_book": book},
        }
    )
    msgs = build_messages(
        card,
        [{"role": "user", "content": "moon"}],
        user_name="Bob",
        count_tokens=words,
        max_context_tokens=999,
        reply_reserve_tokens=0,
    )
    assert msgs[0]["content"].endswith("D\n\nNova loves Bob.")


def test_regex_time_budget_per_scan(caplog: pytest.LogCaptureFixture) -> None:
    slow = [entry(["/(a|aa)+$/"] * 10, f"slow {i}", use_regex=True) for i in range(20)]
    start = time.perf_counter()
    result = run([*slow, entry(["b"], "fast")], ["a" * 3000 + "!b"])
    assert time.perf_counter() - start < 1.5  # 200 x 50 ms without the shared budget
    assert texts(result) == ["fast"]
    assert "budget used up" in caplog.text


def test_key_and_regex_caps() -> None:
    from voice_chat.cards import CardError

    many = [entry([f"k{i}-{j}" for j in range(100)], "x") for i in range(50)]
    with pytest.raises(CardError) as err:
        parse_lorebook({"entries": many})
    assert err.value.code == "too_many_items"
    regexes = [entry([f"/r{i}-{j}/" for j in range(100)], "x", use_regex=True) for i in range(3)]
    with pytest.raises(CardError) as err:
        parse_lorebook({"entries": regexes})
    assert err.value.code == "too_many_items"


def test_scanned_text_is_capped_to_the_newest_chars() -> None:
    old_key = "needle " + "x" * 40_000
    assert texts(run([entry(["needle"], "x")], [old_key])) == []
    assert texts(run([entry(["needle"], "x")], ["x" * 40_000 + " needle"])) == ["x"]
