"""Odd values in every known field: a card either loads and builds a prompt, or CardError."""

from __future__ import annotations

import copy
import json
import random
from typing import Any

import pytest

from voice_chat.cards import CardError, build_messages, card_from_dict, export_card, load_card

ODD_VALUES: list[Any] = [None, True, 0, -1, 1.5, 10**30, "", "x" * 300, [], ["a", 1], {}, {"a": []}]

BASE: dict[str, Any] = {
    "spec": "chara_card_v3",
    "spec_version": "3.0",
    "data": {
        "name": "Nova",
        "description": "d",
        "first_mes": "hi",
        "alternate_greetings": ["a"],
        "extensions": {"voice_chat": {"voice": "amy"}},
        "assets": [{"type": "icon", "uri": "ccdefault:", "name": "main", "ext": "png"}],
        "character_book": {
            "scan_depth": 2,
            "token_budget": 50,
            "extensions": {},
            "entries": [
                {
                    "keys": ["moon"],
                    "secondary_keys": ["sun"],
                    "content": "@@depth 1\nlore",
                    "extensions": {"position": 4, "depth": 1, "role": 1},
                    "enabled": True,
                    "insertion_order": 1,
                    "selective": True,
                    "priority": 3,
                    "position": "after_char",
                }
            ],
        },
    },
}


def paths(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(obj, dict):
        for key, value in obj.items():
            out += paths(value, (*prefix, key))
    elif isinstance(obj, list):
        for i, value in enumerate(obj):
            out += paths(value, (*prefix, i))
    return out


def replaced(path: tuple[Any, ...], value: Any, base: dict[str, Any] = BASE) -> dict[str, Any]:
    card = copy.deepcopy(base)
    target = card
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return card


def exercise(raw: dict[str, Any]) -> None:
    try:
        card = card_from_dict(raw)
    except CardError as err:
        assert err.code and len(err.message) <= 300
        return
    for fmt in ("v2", "v3", "png", "charx"):
        assert load_card(export_card(card, fmt)).to_v3() is not None  # type: ignore[arg-type]
    history = [{"role": "user", "content": "moon and sun"}]
    build_messages(
        card,
        history,
        user_name="U",
        count_tokens=lambda t: len(t),
        max_context_tokens=4000,
        reply_reserve_tokens=10,
    )
    assert card.voice is None or isinstance(card.voice, str)
    card.avatar()
    card.voice_sample()


@pytest.mark.parametrize("path", paths(BASE), ids=lambda p: ".".join(map(str, p)))
def test_odd_values_everywhere(path: tuple[Any, ...]) -> None:
    for value in ODD_VALUES:
        exercise(replaced(path, value))


def test_random_json_documents() -> None:
    rng = random.Random(1234)
    all_paths = paths(BASE)
    for _ in range(200):
        raw = copy.deepcopy(BASE)
        for _ in range(3):
            path = rng.choice(all_paths)
            try:
                raw = replaced(path, rng.choice(ODD_VALUES), raw)
            except (KeyError, IndexError, TypeError):
                continue
        exercise(json.loads(json.dumps(raw)))


def test_huge_spec_value_is_not_echoed() -> None:
    with pytest.raises(CardError) as err:
        card_from_dict({"spec": "x" * 100_000, "data": {}})
    assert len(err.value.message) <= 300
