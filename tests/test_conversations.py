"""Several conversations per (user, character): the store, the migration, the API, the socket.

Conversations are keyed by (user, character, conversation id); the messages stored before ids
existed are the ``default`` conversation, which is also the one used when none is named.
"""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path

import httpx
import pytest
import websockets

from voice_chat.client.rtclient import RealtimeClient
from voice_chat.memory import MemoryStoreError, Store
from voice_chat.memory.migrations import SCHEMA_VERSION, migrate


def test_conversations_are_kept_apart_and_listed(tmp_path: Path) -> None:
    with Store(tmp_path / "m.db") as store:
        store.append("u1", "nova", "assistant", "Hey, it's Nova.")
        store.append("u1", "nova", "user", "Hi!")
        store.append("u1", "nova", "assistant", "A new chat.", conversation="c-2")
        store.append("u1", "sage", "assistant", "Sit by the fire.", conversation="c-3")
        store.append("u2", "nova", "assistant", "Someone else's.")
        assert [m.text for m in store.history("u1", "nova")] == ["Hey, it's Nova.", "Hi!"]
        assert [m.text for m in store.history("u1", "nova", conversation="c-2")] == ["A new chat."]
        listed = store.conversations("u1")
        assert [(c["character_id"], c["conversation_id"]) for c in listed] == [
            ("sage", "c-3"),
            ("nova", "c-2"),
            ("nova", "default"),
        ]
        assert listed[2]["message_count"] == 2
        assert listed[2]["last_message"] == {"role": "user", "text": "Hi!"}
        assert listed[0]["updated_at"] >= listed[0]["started_at"] > 0
        # Forgetting one conversation keeps the others.
        assert store.reset("u1", "nova", "c-2") == 1
        assert [c["conversation_id"] for c in store.conversations("u1")] == ["c-3", "default"]
        with pytest.raises(MemoryStoreError, match="conversation"):
            store.history("u1", "nova", conversation="Bad Id!")


def test_migration_keeps_old_messages_as_the_default_conversation(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    assert migrate(conn, target=2) == [1, 2]
    conn.execute(
        "INSERT INTO messages (user_id, character_id, role, text, created_at)"
        " VALUES ('u', 'pip', 'user', 'from before', 1.0)"
    )
    conn.close()
    with Store(path) as store:
        assert store.schema_version == SCHEMA_VERSION
        (old,) = store.history("u", "pip")
        assert old.text == "from before" and old.conversation_id == "default"
        assert store.conversations("u")[0]["conversation_id"] == "default"


@pytest.mark.slow
async def test_a_conversation_id_over_the_socket_and_http(live_server) -> None:
    user = f"conv-{uuid.uuid4().hex[:8]}"
    params = {"character": "pip", "user": user}
    async with RealtimeClient.connect(live_server.ws_url, **params, conversation="c-one") as rt:
        created = await rt.wait_for("session.created", timeout=10)
        conv = created.event["session"]["conversation"]
        assert conv == {"id": "c-one", "resumed": False, "turns": []}
        await rt.wait_for("response.done", timeout=60)  # the greeting
    async with RealtimeClient.connect(live_server.ws_url, **params, conversation="c-two") as rt:
        assert (await rt.wait_for("session.created", timeout=10)).event["session"]["conversation"][
            "resumed"
        ] is False  # a second conversation starts afresh: the first is kept
        await rt.wait_for("response.done", timeout=60)
    async with RealtimeClient.connect(live_server.ws_url, **params, conversation="c-one") as rt:
        conv = (await rt.wait_for("session.created", timeout=10)).event["session"]["conversation"]
        assert conv["id"] == "c-one" and conv["resumed"] and conv["turns"][0]["role"] == "assistant"
    listed = httpx.get(live_server.url + "/v1/conversations", params={"user": user}).json()
    ids = [c["conversation_id"] for c in listed["conversations"]]
    assert sorted(ids) == ["c-one", "c-two"]
    assert all(c["last_message"]["text"] for c in listed["conversations"])
    one = httpx.get(
        live_server.url + "/v1/conversations",
        params={"user": user, "character": "pip", "conversation": "c-one"},
    ).json()
    assert one["conversation_id"] == "c-one" and one["message_count"] == 1
    r = httpx.delete(
        live_server.url + "/v1/conversations",
        params={"user": user, "character": "pip", "conversation": "c-two"},
    )
    assert r.status_code == 200 and r.json()["deleted"] == 1
    # A bad id is refused with a clear message, on the socket and over HTTP.
    r = httpx.get(
        live_server.url + "/v1/conversations",
        params={"user": user, "character": "pip", "conversation": "../x"},
    )
    assert r.status_code == 400 and "conversation" in r.json()["error"]["message"]
    url = f"{live_server.ws_url}/v1/realtime?character=pip&user={user}&conversation=NOPE%20x"
    async with websockets.connect(url) as ws:
        refusal = await ws.recv()
        assert "conversation" in str(refusal)
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await ws.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008


async def _say(rt: RealtimeClient, text: str) -> dict:
    mark = rt.mark()
    item = {"type": "message", "role": "user", "text": text}
    await rt.send({"type": "conversation.item.create", "item": item})
    return (await rt.wait_for("response.done", timeout=60, since=mark)).event["response"]


@pytest.mark.slow
async def test_regenerate_keeps_only_the_new_reply(live_server) -> None:
    user = f"regen-{uuid.uuid4().hex[:8]}"
    params = {"character": "nova", "user": user, "conversation": "c-regen"}
    async with RealtimeClient.connect(live_server.ws_url, **params) as rt:
        await rt.wait_for("response.done", timeout=60)  # the greeting
        first = await _say(rt, "Tell me one thing about the sea.")
        mark = rt.mark()
        await rt.send({"type": "response.regenerate"})
        again = (await rt.wait_for("response.done", timeout=60, since=mark)).event["response"]
        assert again["id"] != first["id"] and again["status"] == "completed"
        assert rt.events("response.audio.started")  # spoken again
    q = {"user": user, "character": "nova", "conversation": "c-regen"}
    stored = httpx.get(live_server.url + "/v1/conversations", params=q).json()["messages"]
    roles = [m["role"] for m in stored]
    assert roles == ["assistant", "user", "assistant"], stored
    assert stored[1]["text"] == "Tell me one thing about the sea."
    assert stored[2]["text"] == again["text"]
