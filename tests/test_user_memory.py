"""Remembering the user: facts from what they say, kept per (user, character), corrupt rows."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from voice_chat.memory import SCHEMA_VERSION, Store
from voice_chat.memory.conversations import CORRUPT, ConversationMemory
from voice_chat.memory.facts import UserMemory, extract_facts, find_name


def test_names_are_found_and_moods_are_not_names() -> None:
    assert find_name("I'm Maya, by the way.") == "Maya"
    assert find_name("my name is Tomas") == "Tomas"
    assert find_name("Hi, this is Ravi here.") == "Ravi"
    assert find_name("You can call me Jo") == "Jo"
    assert find_name("I'm tired.") is None
    assert find_name("I'm Fine, thanks") is None
    assert find_name("What did I tell you my name was?") is None


def test_first_person_statements_are_facts_and_questions_are_not() -> None:
    facts = extract_facts("I'm Maya. I have a dog called Biscuit. Do you like dogs?")
    assert facts == [("name", "Maya"), ("fact", "I have a dog called Biscuit")]
    assert extract_facts("How are you?") == []


def test_memory_keeps_one_name_and_the_newest_facts() -> None:
    memory = UserMemory()
    assert memory.learn("I'm Maya.") == [("name", "Maya")]
    assert memory.learn("I'm Maya.") == []  # nothing new
    for i in range(12):
        memory.learn(f"I went to the market number {i} today.")
    assert memory.name == "Maya" and len(memory.facts) == 8
    assert memory.facts[-1] == "I went to the market number 11 today"
    assert "Maya" in memory.render("Maya")


def test_store_keeps_memory_per_user_and_reset_forgets_it(tmp_path: Path) -> None:
    with Store(tmp_path / "m.db") as store:
        assert store.schema_version == SCHEMA_VERSION
        store.remember("alice", "nova", "name", "Alice")
        store.remember("bob", "nova", "name", "Bob")
        assert store.memory("alice", "nova") == ([("name", "Alice")], [])
        assert store.memory("alice", "sage") == ([], [])
        assert store.conversation("bob", "nova")["memory"] == [{"kind": "name", "value": "Bob"}]
        store.reset("alice", "nova")
        assert store.memory("alice", "nova") == ([], [])
        assert store.memory("bob", "nova") == ([("name", "Bob")], [])


def test_a_corrupt_row_is_reported_skipped_and_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    with Store(path) as store:
        store.remember("alice", "nova", "name", "Alice")
    conn = sqlite3.connect(path)
    conn.execute(
        "INSERT INTO user_memory (user_id, character_id, kind, value, created_at)"
        " VALUES ('alice', 'nova', 'name', x'00ff', 0), ('alice', 'nova', '??', 'x', 0)"
    )
    conn.commit()
    conn.close()

    async def session() -> tuple[list[tuple[str, str]], str | None]:
        memory = ConversationMemory(f"sqlite:///{path}")

        async def report(code: str, message: str) -> None:
            pass

        conv = await memory.open_conversation("alice", "nova", report)
        conv.add("user", "I have a cat called Tiger.")
        await memory.call(lambda s: None)  # the writes queued before it are done
        memory.close()
        return conv.pending, conv.user_memory.name

    pending, name = asyncio.run(session())
    assert name == "Alice"
    assert len(pending) == 2 and all(code == CORRUPT for code, _ in pending)
    conn = sqlite3.connect(path)
    rows = conn.execute("SELECT kind, value FROM user_memory ORDER BY id").fetchall()
    conn.close()
    assert rows[1:3] == [("name", b"\x00\xff"), ("??", "x")]  # left as they were
    assert rows[-1] == ("fact", "I have a cat called Tiger")


def test_stored_memory_comes_back_in_a_new_session(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"

    async def talk(user: str, line: str | None) -> UserMemory:
        memory = ConversationMemory(url)

        async def report(code: str, message: str) -> None:
            pass

        conv = await memory.open_conversation(user, "nova", report)
        if line:
            conv.add("user", line)
        await memory.call(lambda s: None)
        memory.close()
        return conv.user_memory

    asyncio.run(talk("maya1", "Hi, I'm Maya. I love hiking in the hills."))
    again = asyncio.run(talk("maya1", None))
    assert again.name == "Maya" and again.facts == ["I love hiking in the hills"]
    stranger = asyncio.run(talk("someone-else", None))
    assert not stranger


def test_a_question_for_the_users_own_name_opens_the_reply_with_it() -> None:
    from voice_chat.pipeline.openings import name_answer

    asked = [
        "What did I tell you my name was?",
        "What's my name?",
        "do you remember my name",
        "Who am I?",
        "So, what do you call me?",
        "Can you say my name?",
        "Hey, do you still know who I am?",
        "Do you know what I'm called?",
        "Remember what to call me?",
        "What did I say you should call me?",
    ]
    for line in asked:
        assert name_answer(line, "Jonas") == "You're Jonas", line
    not_asked = [
        "My name is Maya, remember?",  # tells it
        "I'm Maya. What's yours?",
        "I never liked my name much.",  # mentions it, asks nothing
        "What is your name?",
        "Tell me about your day.",
        "What would you call me if I were a cat?",
        "",
    ]
    for line in not_asked:
        assert name_answer(line, "Jonas") == "", line
    assert name_answer("What's my name?", None) == ""  # not known: the model answers
