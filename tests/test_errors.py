"""The one error tree and the one HTTP exception handler."""

from __future__ import annotations

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from voice_chat.cards import CardError
from voice_chat.characters.registry import CharacterError
from voice_chat.engines.base import EngineError
from voice_chat.engines.voices import VoiceError
from voice_chat.errors import HTTP_STATUS, VoiceChatError
from voice_chat.memory import MemoryStoreError
from voice_chat.server.api.deps import ApiError, api_error, read_capped
from voice_chat.server.protocol import ProtocolError


def test_every_error_is_a_voice_chat_error_and_keeps_its_old_base() -> None:
    assert isinstance(CardError("invalid_json", "x"), ValueError)
    assert isinstance(CharacterError("unknown_character", "x"), ValueError)
    assert isinstance(VoiceError("unknown_voice", "x"), ValueError)
    assert isinstance(EngineError("no model"), RuntimeError)
    assert isinstance(MemoryStoreError("locked", "x"), RuntimeError)
    for exc in (CardError, CharacterError, VoiceError, MemoryStoreError, ApiError, ProtocolError):
        assert issubclass(exc, VoiceChatError)
    assert str(EngineError("no model")) == "no model" and EngineError("x").code == "engine_failed"


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (CardError("invalid_field", "x"), 422),  # a card's default
        (CardError("too_large", "x"), 413),
        (ApiError("invalid_field", "x"), 400),  # a request's default
        (CharacterError("unknown_character", "x"), 404),
        (CharacterError("shipped_character", "x"), 403),
        (VoiceError("unknown_voice", "x"), 404),
        (VoiceError("unknown_voice", "x", status=422), 422),  # a route's override
        (VoiceError("voice_in_use", "x"), 409),
        (VoiceError("invalid_voice", "x"), 500),
        (EngineError("x"), 422),
        (ApiError("memory_unavailable", "x"), 503),
    ],
)
def test_status_comes_from_one_map(error: VoiceChatError, status: int) -> None:
    assert error.status == status
    assert set(HTTP_STATUS.values()) <= {
        400,
        401,
        403,
        404,
        409,
        413,
        415,
        421,
        422,
        429,
        500,
        501,
        503,
    }


def test_card_messages_stay_short() -> None:
    assert len(CardError("invalid_field", "x" * 5000).message) == 300


def _app() -> FastAPI:
    app = FastAPI()
    app.add_exception_handler(VoiceChatError, api_error)
    app.add_exception_handler(OSError, api_error)

    @app.get("/voice")
    async def voice() -> None:
        raise VoiceError("voice_shipped", "shipped voices cannot be deleted")

    @app.get("/disk")
    async def disk() -> None:
        raise PermissionError(13, "Permission denied")

    @app.post("/echo")
    async def echo(request: Request) -> dict[str, int]:
        return {"bytes": len(await read_capped(request, 10, "this body is limited to 10 bytes"))}

    return app


def test_one_handler_answers_with_the_error_body() -> None:
    client = TestClient(_app())
    r = client.get("/voice")
    assert r.status_code == 403
    assert r.json() == {
        "error": {"code": "voice_shipped", "message": "shipped voices cannot be deleted"}
    }
    r = client.get("/disk")
    assert r.status_code == 500 and r.json()["error"]["code"] == "storage_error"
    assert "Permission denied" in r.json()["error"]["message"]


def test_capped_reader_refuses_early_and_while_streaming() -> None:
    client = TestClient(_app())
    assert client.post("/echo", content=b"0123456789").json() == {"bytes": 10}
    r = client.post("/echo", content=b"x" * 11)
    assert r.status_code == 413 and r.json()["error"]["code"] == "too_large"

    def chunks():  # no Content-Length: refused once the 11th byte arrives
        yield b"01234"
        yield b"56789"
        yield b"!"

    r = client.post("/echo", content=chunks())
    assert r.status_code == 413 and "limited to 10 bytes" in r.json()["error"]["message"]
