"""The OpenAI Realtime dialect driven by the official ``openai`` SDK against the real server."""

from __future__ import annotations

import asyncio
import uuid
from contextlib import asynccontextmanager

import httpx
import openai
import pytest
from ga_client import GALog, client, hear, send_speech, words
from speech import espeak

pytestmark = pytest.mark.slow


@asynccontextmanager
async def session(live_server, model: str = "nova", **session_fields):
    """An SDK connection with its event log; ``session_fields`` go into a session.update."""
    api = client(live_server.url)
    async with api.realtime.connect(model=model) as conn:
        log = GALog(conn).start()
        try:
            created = await log.wait_for("session.created", timeout=20)
            if session_fields:
                await conn.session.update(session={"type": "realtime", **session_fields})
                await log.wait_for("session.updated", timeout=20)
            yield conn, log, created["session"]
            assert not log.invalid, log.invalid[:5]
        finally:
            await log.stop()


def _ids_consistent(log: GALog, response_id: str) -> str:
    """Every event of a response names the same output item; returns that item id."""
    added = log.of("response.output_item.added", response_id=response_id)
    assert len(added) == 1
    item_id = added[0]["item"]["id"]
    for kind in (
        "response.content_part.added",
        "response.output_audio_transcript.delta",
        "response.output_audio.delta",
        "response.output_audio.done",
        "response.output_audio_transcript.done",
        "response.content_part.done",
    ):
        for e in log.of(kind, response_id=response_id):
            assert (e["item_id"], e["output_index"], e["content_index"]) == (item_id, 0, 0), e
    ids = [e["event_id"] for e in log.events]
    assert len(ids) == len(set(ids)), "event ids repeat"
    return item_id


async def test_models_are_the_characters(live_server) -> None:
    api = client(live_server.url)
    page = await api.models.list()
    ids = {m.id for m in page.data}
    assert {"nova", "aria", "sage", "pip"} <= ids
    assert all(m.object == "model" for m in page.data)
    sage = await api.models.retrieve("sage")
    assert sage.id == "sage"
    with pytest.raises(openai.NotFoundError) as info:
        await api.models.retrieve("nobody-here")
    assert info.value.code == "model_not_found"
    raw = httpx.get(live_server.url + "/v1/models").json()
    assert raw["object"] == "list"


async def test_spoken_turn_at_real_time_pace(live_server) -> None:
    async with session(live_server, "nova") as (conn, log, created):
        assert created["type"] == "realtime" and created["model"] == "nova"
        assert created["audio"]["output"]["format"] == {"type": "audio/pcm", "rate": 24000}
        assert not log.of("response.created")  # no greeting: the API speaks when asked
        await send_speech(conn, espeak("What is your favorite kind of music?"))
        done = await log.wait_for("response.done", timeout=120)
        response = done["response"]
        assert response["status"] == "completed", response
        transcript = log.of("conversation.item.input_audio_transcription.completed")[-1]
        assert "music" in transcript["transcript"].lower(), transcript
        assert log.of("input_audio_buffer.speech_started")
        assert log.of("input_audio_buffer.speech_stopped")
        committed = log.of("input_audio_buffer.committed")[-1]
        assert committed["item_id"] == transcript["item_id"]
        item_id = _ids_consistent(log, response["id"])
        deltas = log.of("response.output_audio_transcript.delta", response_id=response["id"])
        said = "".join(d["delta"] for d in deltas)
        final = log.of("response.output_audio_transcript.done", response_id=response["id"])[0]
        assert said.split() == final["transcript"].split() and said.strip()
        assert response["output"][0]["id"] == item_id
        assert response["output"][0]["content"][0]["transcript"] == final["transcript"]
        assert response["usage"]["output_tokens"] > 0
        assert log.of("rate_limits.updated")
        audio = log.audio(response["id"])
        seconds = len(audio) / 24000
        assert 0.15 * len(said.split()) < seconds < len(said.split()) + 3, (seconds, said)
        heard = hear(audio, 24000)
        overlap = words(heard) & words(said)
        assert len(overlap) >= max(1, len(words(said)) // 3), (heard, said)


async def test_typed_turn_with_text_output_and_instructions(live_server) -> None:
    async with session(
        live_server, "pip", instructions="Always mention the moon.", output_modalities=["text"]
    ) as (conn, log, _):
        await conn.conversation.item.create(
            item={
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "Do you like pizza?"}],
            }
        )
        added = await log.wait_for("conversation.item.added", timeout=10)
        assert added["item"]["role"] == "user"
        assert not log.of("response.created")  # a created item does not answer itself
        await conn.response.create()
        done = await log.wait_for("response.done", timeout=120)
        response = done["response"]
        assert response["status"] == "completed"
        assert response["output_modalities"] == ["text"]
        text = "".join(d["delta"] for d in log.of("response.output_text.delta"))
        assert text.strip()
        assert log.of("response.output_text.done")[0]["text"] == text
        assert not log.of("response.output_audio.delta")
        retrieved_id = response["output"][0]["id"]
        await conn.conversation.item.retrieve(item_id=retrieved_id)
        got = await log.wait_for("conversation.item.retrieved", timeout=10)
        assert got["item"]["content"][0]["text"] == text
        # Per-response audio output on a text session.
        log.mark()
        await conn.response.create(
            response={"output_modalities": ["audio"], "instructions": "Answer in one sentence."}
        )
        second = await log.wait_for("response.done", timeout=120)
        assert second["response"]["output_modalities"] == ["audio"]
        assert log.of("response.output_audio.delta", response_id=second["response"]["id"])


async def test_cancel_and_truncate_during_a_reply(live_server) -> None:
    async with session(live_server, "sage") as (conn, log, created):
        assert created["audio"]["output"]["voice"] == "sage"
        await conn.conversation.item.create(
            item={
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "Tell me a long story about a fox."}],
            }
        )
        await conn.response.create()
        first = await log.wait_for("response.output_audio.delta", timeout=120)
        item_id, response_id = first["item_id"], first["response_id"]
        await asyncio.sleep(0.8)
        await conn.conversation.item.truncate(item_id=item_id, content_index=0, audio_end_ms=600)
        truncated = await log.wait_for("conversation.item.truncated", timeout=10)
        assert (truncated["item_id"], truncated["audio_end_ms"]) == (item_id, 600)
        await conn.response.cancel()
        done = await log.wait_for("response.done", timeout=20, response_id=response_id)
        assert done["response"]["status"] == "cancelled"
        assert done["response"]["status_details"]["reason"] == "client_cancelled"
        n_audio = len(log.of("response.output_audio.delta", response_id=response_id))
        await asyncio.sleep(1.0)
        assert len(log.of("response.output_audio.delta", response_id=response_id)) == n_audio
        await conn.conversation.item.retrieve(item_id=item_id)
        item = (await log.wait_for("conversation.item.retrieved", timeout=10))["item"]
        heard = item["content"][0]["transcript"]
        assert (
            len(heard.split())
            < len(done["response"]["output"][0]["content"][0]["transcript"].split()) + 1
        )
        # A cancel with nothing running is refused in the API's shape; the session goes on.
        await conn.response.cancel(event_id="evt_cancel_again")
        err = await log.wait_for("error", timeout=10)
        assert err["error"]["code"] == "response_cancel_not_active"
        assert err["error"]["event_id"] == "evt_cancel_again"


async def test_transcription_only_session(live_server) -> None:
    api = client(live_server.url)
    async with api.realtime.connect(model="nova") as conn:
        log = GALog(conn).start()
        await log.wait_for("session.created", timeout=20)
        await conn.session.update(
            session={
                "type": "transcription",
                "audio": {
                    "input": {
                        "format": {"type": "audio/pcm", "rate": 24000},
                        "turn_detection": {"type": "server_vad"},
                    }
                },
            }
        )
        updated = await log.wait_for("session.updated", timeout=20)
        assert updated["session"]["type"] == "transcription"
        await send_speech(conn, espeak("The quick brown fox jumps over the lazy dog."))
        await send_speech(conn, espeak("Please write this down."))
        done = await log.wait_for(
            "conversation.item.input_audio_transcription.completed", timeout=60
        )
        assert "dog" in done["transcript"].lower()
        second = await log.wait_for(
            "conversation.item.input_audio_transcription.completed", timeout=60
        )
        assert "write" in second["transcript"].lower()
        await asyncio.sleep(1.0)
        assert not log.of("response.created")  # transcripts only, no replies
        await log.stop()
        assert not log.invalid, log.invalid[:5]


async def test_g711_mu_law_in_and_out(live_server) -> None:
    fmt = {"type": "audio/pcmu"}
    async with session(
        live_server, "aria", audio={"input": {"format": fmt}, "output": {"format": fmt}}
    ) as (conn, log, _):
        updated = log.of("session.updated")[-1]["session"]
        assert updated["audio"]["input"]["format"] == fmt
        await send_speech(conn, espeak("What is your favorite color?"), "audio/pcmu")
        done = await log.wait_for("response.done", timeout=120)
        transcript = log.of("conversation.item.input_audio_transcription.completed")[-1]
        assert "color" in transcript["transcript"].lower(), transcript
        said = log.of("response.output_audio_transcript.done")[-1]["transcript"]
        audio = log.audio(done["response"]["id"], "audio/pcmu")
        assert len(audio) > 8000 * 0.5
        heard = hear(audio, 8000)
        overlap = words(heard) & words(said)
        assert len(overlap) >= max(1, len(words(said)) // 4), (heard, said)


async def test_bad_input_is_refused_in_the_api_shape(live_server) -> None:
    async with (
        session(live_server, "nova") as (conn, log, _),
        session(live_server, "pip") as (other, other_log, _),
    ):

        async def refused(event: dict, code: str, param: str | None) -> None:
            log.mark()
            await conn.send(event)
            err = (await log.wait_for("error", timeout=10))["error"]
            assert (err["code"], err["param"]) == (code, param), err
            assert err["event_id"] == event.get("event_id"), err
            assert err["type"] == "invalid_request_error" and err["message"]

        await refused(
            {"type": "input_audio_buffer.append", "audio": "%%%not-base64", "event_id": "e1"},
            "invalid_audio",
            "audio",
        )
        await refused(
            {
                "type": "input_audio_buffer.append",
                "audio": "AAEC",  # 3 bytes: not PCM16
                "event_id": "e2",
            },
            "invalid_audio",
            "audio",
        )
        await refused(
            {"type": "input_audio_buffer.append", "audio": "A" * 800_000, "event_id": "e3"},
            "frame_too_large",
            "audio",
        )
        await refused(
            {
                "type": "session.update",
                "event_id": "e4",
                "session": {"type": "realtime", "model": "nobody-here"},
            },
            "unknown_model",
            "session.model",
        )
        await refused(
            {
                "type": "session.update",
                "event_id": "e5",
                "session": {
                    "type": "realtime",
                    "audio": {"input": {"format": {"type": "audio/opus"}}},
                },
            },
            "invalid_event",
            "session.audio.input.format",
        )
        await refused(
            {
                "type": "conversation.item.truncate",
                "item_id": "item_nope",
                "content_index": 0,
                "audio_end_ms": 10,
                "event_id": "e6",
            },
            "item_truncate_invalid_item_id",
            "item_id",
        )
        await refused(
            {
                "type": "conversation.item.create",
                "event_id": "e7",
                "item": {"type": "function_call", "name": "f", "call_id": "c"},
            },
            "unknown_item",
            "item.type",
        )
        await refused({"type": "response.fly", "event_id": "e8"}, "unknown_event", "type")
        # Still alive, and the other session never saw any of it.
        await conn.session.update(session={"type": "realtime", "instructions": "Be brief."})
        await log.wait_for("session.updated", timeout=10)
        assert not other_log.of("error")
        await other.conversation.item.create(
            item={
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "Hello!"}],
            }
        )
        await other.response.create()
        done = await other_log.wait_for("response.done", timeout=120)
        assert done["response"]["status"] == "completed"


async def test_unknown_model_on_connect(live_server) -> None:
    api = client(live_server.url)
    async with api.realtime.connect(model="nobody-" + uuid.uuid4().hex[:6]) as conn:
        log = GALog(conn).start()
        err = await log.wait_for("error", timeout=10)
        assert err["error"]["code"] == "unknown_model"
        assert err["error"]["param"] == "model"
        await asyncio.sleep(0.5)
        assert log.closed  # no character to talk to: the session cannot go on
        assert not log.invalid


async def test_spoken_barge_in_cancels_the_reply(live_server) -> None:
    async with session(live_server, "pip") as (conn, log, _):
        await conn.conversation.item.create(
            item={
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "Tell me a long story about robots."}],
            }
        )
        await conn.response.create()
        first = await log.wait_for("response.output_audio.delta", timeout=120)
        await asyncio.sleep(0.5)
        await send_speech(conn, espeak("Stop. Tell me a joke instead."))
        done = await log.wait_for("response.done", timeout=30, response_id=first["response_id"])
        assert done["response"]["status"] == "cancelled"
        assert done["response"]["status_details"]["reason"] == "turn_detected"
        # "Stop." may end a turn of its own (answered, then cut by the rest): wait for a reply
        # that completes.
        await log.wait_for("response.done", timeout=120, status="completed")
        said = log.of("conversation.item.input_audio_transcription.completed")[-1]["transcript"]
        assert any(w in said.lower() for w in ("joke", "stop", "instead")), said


async def test_manual_turns_commit_then_response_create(live_server) -> None:
    """turn_detection null: the client commits and asks for the reply (push-to-talk, telephony)."""
    async with session(live_server, "aria", audio={"input": {"turn_detection": None}}) as (
        conn,
        log,
        _,
    ):
        assert log.of("session.updated")[-1]["session"]["audio"]["input"]["turn_detection"] is None
        await send_speech(conn, espeak("What is the weather like today?"), tail_s=0.3)
        await asyncio.sleep(0.5)
        assert not log.of("input_audio_buffer.speech_started")  # no VAD
        await conn.input_audio_buffer.commit()
        await conn.response.create()  # at once: the reply waits for the transcript
        done = await log.wait_for("response.done", timeout=120)
        assert done["response"]["status"] == "completed"
        committed = log.of("input_audio_buffer.committed")[-1]
        transcript = log.of("conversation.item.input_audio_transcription.completed")[-1]
        assert transcript["item_id"] == committed["item_id"]
        assert "weather" in transcript["transcript"].lower(), transcript
        # the reply came after the transcript, so it answered it
        kinds = [e["type"] for e in log.events]
        assert kinds.index("conversation.item.input_audio_transcription.completed") < kinds.index(
            "response.created"
        )
        # a commit with nothing buffered is refused in the API's words
        log.mark()
        await conn.input_audio_buffer.commit()
        err = await log.wait_for("error", timeout=10)
        assert err["error"]["code"] == "input_audio_buffer_commit_empty"


async def test_input_audio_item_is_transcribed_and_answered(live_server) -> None:
    import base64

    from voice_chat.audio.pcm import float_to_pcm16, resample

    speech = resample(espeak("Can you recommend a good book?"), 16000, 24000)
    async with session(live_server, "sage") as (conn, log, _):
        await conn.conversation.item.create(
            item={
                "type": "message",
                "role": "user",
                "content": [
                    {
                        "type": "input_audio",
                        "audio": base64.b64encode(float_to_pcm16(speech)).decode(),
                    }
                ],
            }
        )
        done = await log.wait_for("conversation.item.done", timeout=60)
        assert "book" in done["item"]["content"][0]["transcript"].lower(), done
        assert log.of("conversation.item.input_audio_transcription.completed")
        await conn.response.create()
        reply = await log.wait_for("response.done", timeout=120)
        assert reply["response"]["status"] == "completed"
        # deleting the item takes it out of the conversation; retrieving it then fails
        await conn.conversation.item.delete(item_id=done["item"]["id"])
        await log.wait_for("conversation.item.deleted", timeout=10)
        await conn.conversation.item.retrieve(item_id=done["item"]["id"], event_id="rci_x")
        err = await log.wait_for("error", timeout=10)
        assert err["error"]["code"] == "item_retrieve_invalid_item_id"
        assert err["error"]["event_id"] == "rci_x"
