"""The character registry on disk: ids, atomic and concurrent writes, round trips, shipped cards."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from voice_chat.cards import CardError, export_card, load_card
from voice_chat.cards.library import slugify
from voice_chat.characters.registry import CharacterError, CharacterRegistry
from voice_chat.settings import REPO_ROOT


def card_bytes(name: str, **data: object) -> bytes:
    body = {"name": name, "first_mes": "Hi {{user}}.", "extensions": {"x": {"y": [1]}}, **data}
    return json.dumps(
        {"spec": "chara_card_v2", "spec_version": "2.0", "data": body, "top": 1}
    ).encode()


@pytest.fixture
def registry(tmp_path: Path) -> CharacterRegistry:
    return CharacterRegistry(REPO_ROOT / "characters", tmp_path / "characters")


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("Zoë the Bard", "zoe-the-bard"),
        ("../../etc/passwd", "etc-passwd"),
        ("  --Nova--  ", "nova"),
        ("日本語", "character"),
        ("A" * 100, "a" * 48),
        ("con\0trol\nchars", "con-trol-chars"),
    ],
)
def test_slug(name: str, slug: str) -> None:
    assert slugify(name) == slug


def test_ids_are_unique_and_never_shipped(registry: CharacterRegistry) -> None:
    ids = [registry.add(card_bytes("Nova")).id for _ in range(3)]
    assert ids == ["nova-2", "nova-3", "nova-4"]
    assert registry.get("nova").shipped and not registry.get("nova-2").shipped
    assert registry.add(card_bytes("../../x")).id == "x"
    for bad in ("../nova-2", "NOVA-2", "nova-2/", "", ".staging", "a" * 65):
        with pytest.raises(CharacterError):
            registry.get(bad)


def test_concurrent_imports_get_distinct_ids(tmp_path: Path) -> None:
    # Separate registries (no shared lock), like the CLI and the server at the same time.
    registries = [CharacterRegistry(REPO_ROOT / "characters", tmp_path / "c") for _ in range(8)]
    got: list[str] = []

    def add(r: CharacterRegistry) -> None:
        got.append(r.add(card_bytes("Same Name")).id)

    threads = [threading.Thread(target=add, args=(r,)) for r in registries]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == sorted(["same-name", *(f"same-name-{n}" for n in range(2, 9))])
    assert not list((tmp_path / "c" / ".staging").iterdir())


def test_round_trip_keeps_everything_and_edits_are_atomic(registry: CharacterRegistry) -> None:
    c = registry.add(card_bytes("Keeper", alternate_greetings=["Yo."]), voice="joe")
    assert c.voice == "joe" and c.greeting == "Hi User." and c.greeting_count == 2
    out = json.loads(registry.export(c.id, "v2"))
    assert out["top"] == 1 and out["data"]["extensions"]["x"] == {"y": [1]}
    registry.set_voice(c.id, None)
    assert registry.get(c.id).voice is None
    files = sorted(p.name for p in (registry.user_dir / c.id).iterdir())
    assert len(files) == 3 and "meta.json" in files  # old revision pruned: meta, card, source
    with pytest.raises(CardError):
        registry.replace(c.id, b"{broken")
    assert registry.get(c.id).name == "Keeper"
    png = export_card(load_card(card_bytes("Pictured")), "png")
    assert registry.replace(c.id, png).name == "Pictured" and registry.get(c.id).avatar
    assert load_card(registry.export(c.id, "png")).name == "Pictured"


def test_shipped_cards_are_read_only_but_take_a_voice(registry: CharacterRegistry) -> None:
    with pytest.raises(CharacterError) as err:
        registry.delete("sage")
    assert err.value.status == 403
    with pytest.raises(CharacterError):
        registry.replace("sage", card_bytes("Sage"))
    shipped_voice = registry.get("sage").voice
    c = registry.set_voice("sage", "joe")
    assert c.voice == "joe" and c.customized and c.shipped
    assert [x.id for x in registry.list()].count("sage") == 1
    restored = registry.delete("sage")
    assert restored is not None and restored.voice == shipped_voice and not restored.customized


def test_a_broken_user_card_does_not_hide_the_others(registry: CharacterRegistry) -> None:
    good = registry.add(card_bytes("Good")).id
    broken = registry.add(card_bytes("Broken")).id
    meta = json.loads((registry.user_dir / broken / "meta.json").read_text())
    (registry.user_dir / broken / meta["card"]).write_text("{not json")
    (registry.user_dir / good).rename(registry.user_dir / "other")
    (registry.user_dir / "other" / "meta.json").write_text("[")
    fresh = CharacterRegistry(registry.shipped_dir, registry.user_dir)
    assert {c.id for c in fresh.list()} == {"aria", "nova", "pip", "sage"}
    with pytest.raises(CharacterError) as err:
        fresh.get(broken)
    assert err.value.code == "broken_character"


def test_prompt_keeps_the_persona_and_the_newest_turns(registry: CharacterRegistry) -> None:
    from voice_chat.pipeline.conversation import Turn
    from voice_chat.pipeline.prompting import build_messages

    turns = [
        Turn(i, "user" if i % 2 else "assistant", f"message {i} " + "word " * 40)
        for i in range(200)
    ]
    turns.append(Turn(999, "assistant", "  "))  # a reply cut before a word was heard

    def count(text: str) -> int:
        return len(text.split())

    msgs = build_messages(
        registry.get("nova"), turns, user_name="Sam", count_tokens=count, budget_tokens=600
    )
    assert msgs[0]["role"] == "system" and "Nova" in msgs[0]["content"]
    # No default post-history reminder (small models answer it instead of the user): the
    # newest turn is last.
    assert msgs[-1]["role"] == "user" and msgs[-1]["content"].startswith("message 199 ")
    kept = [m["content"].split()[1] for m in msgs if m["content"].startswith("message ")]
    assert kept == [str(i) for i in range(200 - len(kept), 200)] and 3 < len(kept) < 20
    assert sum(count(m["content"]) + 4 for m in msgs) <= 600
    assert build_messages(registry.get("nova"), turns, count_tokens=count, budget_tokens=600) == (
        build_messages(registry.get("nova"), turns, count_tokens=count, budget_tokens=600)
    )
