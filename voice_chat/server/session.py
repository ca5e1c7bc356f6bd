"""One realtime session over a websocket: frames in, events dispatched, events out."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import structlog
from starlette.websockets import WebSocket, WebSocketDisconnect

from voice_chat.audio.pcm import MODEL_RATE
from voice_chat.cards import CardError, choose_greeting
from voice_chat.characters.registry import Character, CharacterError
from voice_chat.pipeline.conversation import Conversation, conversation_info
from voice_chat.pipeline.pipeline import Pipeline
from voice_chat.runtime.local import Runtime
from voice_chat.server.protocol import (
    Clear,
    Commit,
    ItemCreate,
    ProtocolError,
    ResponseCancel,
    SessionUpdate,
    Truncate,
    error_event,
    parse_client_event,
)

log = structlog.get_logger(__name__)


class WebSocketOutbox:
    """Serialises sends; silently drops them once the socket is gone."""

    def __init__(self, ws: WebSocket) -> None:
        self.ws = ws
        self._lock = asyncio.Lock()
        self.closed = False

    async def _send(self, kind: str, data: Any) -> None:
        if self.closed:
            return
        async with self._lock:
            try:
                if kind == "text":
                    await self.ws.send_text(data)
                else:
                    await self.ws.send_bytes(data)
            except (WebSocketDisconnect, RuntimeError, OSError):
                self.closed = True

    async def event(self, payload: dict[str, Any]) -> None:
        await self._send("text", json.dumps(payload, ensure_ascii=False))

    async def audio(self, pcm: bytes) -> None:
        await self._send("bytes", pcm)

    async def error(self, code: str, message: str) -> None:
        log.info("client error", code=code, message=message)
        await self.event(error_event(code, message))


class AudioRateGuard:
    """Drops input audio that arrives much faster than real time, sustained."""

    def __init__(self, max_speed: float, burst_s: float = 10.0) -> None:
        self.max_speed, self.burst_s = max_speed, burst_s
        self.start = time.monotonic()
        self.audio_s = 0.0
        self._last_warn = 0.0

    def admit(self, seconds: float) -> bool:
        allowed = (time.monotonic() - self.start) * self.max_speed + self.burst_s
        if self.audio_s + seconds > allowed:
            return False
        self.audio_s += seconds
        return True

    def should_warn(self) -> bool:
        now = time.monotonic()
        if now - self._last_warn > 5.0:
            self._last_warn = now
            return True
        return False


class RealtimeSession:
    def __init__(
        self,
        runtime: Runtime,
        ws: WebSocket,
        character: Character,
        query: dict[str, str],
        input_rate: int = MODEL_RATE,
    ):
        """Use :meth:`open`, which also loads the conversation."""
        self.runtime = runtime
        self.ws = ws
        self.outbox = WebSocketOutbox(ws)
        self.id = "sess_" + uuid.uuid4().hex[:12]
        self.user_id = query.get("user") or "anonymous"
        self.user_name = query.get("user_name") or "User"
        self.input_rate = input_rate
        self.output_rate: int | None = None
        self.manual = query.get("turn_detection") == "manual"
        self.guard = AudioRateGuard(runtime.settings.max_audio_speed)
        self.log = log.bind(session=self.id, character=character.id)
        self.pipeline: Pipeline

    @classmethod
    async def open(
        cls,
        runtime: Runtime,
        ws: WebSocket,
        character: Character,
        query: dict[str, str],
        input_rate: int = MODEL_RATE,
    ) -> RealtimeSession:
        session = cls(runtime, ws, character, query, input_rate)
        session.pipeline = await session._new_pipeline(character)
        return session

    async def _conversation(self, character: Character) -> Conversation:
        store = self.runtime.store
        return await store.open_conversation(self.user_id, character.id, self.outbox.error)

    async def _new_pipeline(self, character: Character) -> Pipeline:
        await self.runtime.prepare_voice(character.voice)  # loads off the event loop
        return Pipeline(
            self.runtime,
            self.outbox,
            character,
            await self._conversation(character),
            user_name=self.user_name,
            input_rate=self.input_rate,
            output_rate=self.output_rate,
            manual=self.manual,
        )

    def describe(self) -> dict[str, Any]:
        p, s = self.pipeline, self.runtime.settings
        out_rate = self.output_rate or self.runtime.synthesizer(p.voice_id).sample_rate
        return {
            "id": self.id,
            "character": p.character.id,
            "character_name": p.character.name,
            "voice": p.voice_id,
            "user": {"id": self.user_id, "name": self.user_name},
            "turn_detection": {
                "type": "manual" if self.manual else "server_vad",
                "silence_duration_ms": p.detector.silence_ms,
                "threshold": p.detector.threshold,
            },
            "input_audio_format": {"encoding": "pcm16", "sample_rate": self.input_rate},
            "output_audio_format": {"encoding": "pcm16", "sample_rate": out_rate},
            "limits": {
                "max_frame_bytes": s.max_frame_bytes,
                "max_text_bytes": s.max_text_bytes,
                "max_utterance_s": s.max_utterance_s,
                "max_text_chars": s.max_text_chars,
            },
            "conversation": conversation_info(p.conversation),
        }

    async def run(self) -> None:
        self.log.info("session started", user=self.user_id)
        await self.outbox.event({"type": "session.created", "session": self.describe()})
        await self._start_conversation()
        try:
            while True:
                message = await self.ws.receive()
                if message["type"] == "websocket.disconnect":
                    break
                if message.get("bytes") is not None:
                    await self._on_audio(message["bytes"])
                elif message.get("text") is not None:
                    await self._on_text(message["text"])
        except WebSocketDisconnect:
            pass
        finally:
            self.outbox.closed = True
            await self.pipeline.close()
            self.log.info("session ended")

    async def _on_audio(self, data: bytes) -> None:
        s = self.runtime.settings
        if len(data) > s.max_frame_bytes:
            await self.outbox.error(
                "frame_too_large",
                f"audio frame of {len(data)} bytes; the limit is {s.max_frame_bytes}",
            )
            return
        if len(data) % 2:
            await self.outbox.error(
                "invalid_audio", "audio frames are PCM16: an even number of bytes"
            )
            return
        if not self.guard.admit(len(data) / 2 / self.input_rate):
            if self.guard.should_warn():
                await self.outbox.error(
                    "audio_rate_exceeded",
                    f"audio is arriving faster than {s.max_audio_speed}x real time; excess dropped",
                )
            return
        await self.pipeline.push_audio(data)

    async def _on_text(self, text: str) -> None:
        s = self.runtime.settings
        if len(text.encode("utf-8", "replace")) > s.max_text_bytes:
            await self.outbox.error("frame_too_large", f"text frame over {s.max_text_bytes} bytes")
            return
        try:
            event = parse_client_event(text)
        except ProtocolError as exc:
            await self.outbox.error(exc.code, str(exc))
            return
        p = self.pipeline
        if isinstance(event, SessionUpdate):
            await self._update(event)
        elif isinstance(event, Commit):
            await p.commit()
        elif isinstance(event, Clear):
            await p.clear()
        elif isinstance(event, ItemCreate):
            body = event.item.full_text().strip()
            if not body or len(body) > s.max_text_chars:
                await self.outbox.error(
                    "invalid_event", f"text must be 1 to {s.max_text_chars} characters"
                )
                return
            item = {"id": "item_" + uuid.uuid4().hex[:12], "role": "user", "text": body}
            await self.outbox.event({"type": "conversation.item.created", "item": item})
            await p.user_text(body)
        elif isinstance(event, ResponseCancel):
            if p.reply is not None and event.response_id in (None, p.reply.id):
                await p.interrupt()
        elif isinstance(event, Truncate):
            await p.truncate(event.response_id, event.audio_end_ms)

    async def _update(self, event: SessionUpdate) -> None:
        cfg = event.session
        old_user = self.user_id
        if cfg.user is not None:
            self.user_id = cfg.user.id or self.user_id
            self.user_name = cfg.user.name or self.user_name
            self.pipeline.user_name = self.user_name
        if cfg.input_audio_format is not None:
            self.input_rate = cfg.input_audio_format.sample_rate
            self.pipeline.set_input_rate(self.input_rate)
        if cfg.output_audio_format is not None:
            self.output_rate = cfg.output_audio_format.sample_rate
            self.pipeline.output_rate = self.output_rate
        if cfg.turn_detection is not None:
            td = cfg.turn_detection
            self.manual = self.pipeline.manual = td.type == "manual"
            if td.silence_duration_ms:
                self.pipeline.detector.silence_ms = td.silence_duration_ms
            if td.threshold:
                self.pipeline.detector.threshold = td.threshold
        if cfg.character is not None and cfg.character != self.pipeline.character.id:
            try:
                character = self.runtime.characters.get(cfg.character)
            except CharacterError as exc:
                await self.outbox.error(exc.code, str(exc))
                return
            await self.pipeline.close()
            self.pipeline = await self._new_pipeline(character)
            await self.outbox.event({"type": "session.updated", "session": self.describe()})
            await self._start_conversation(pinned=False)
            return
        if self.user_id != old_user:
            await self._switch_user()
            return
        await self.outbox.event({"type": "session.updated", "session": self.describe()})

    async def _start_conversation(self, *, pinned: bool = True) -> None:
        """After ``session.created``/``updated``: report memory problems, greet a new conversation.

        The greeting is chosen at random among the card's greetings, or pinned with
        ``?greeting=N`` (``pinned``: on connect only). The pipeline stores it as the first
        assistant turn.
        """
        conv = self.pipeline.conversation
        for code, message in conv.pending:
            await self.outbox.error(code, message)
        conv.pending = []
        if conv.turns():
            return  # resumed: no greeting replay
        card = self.pipeline.character.card
        raw = self.ws.query_params.get("greeting") if pinned else None
        try:
            index = int(raw) if raw is not None else None
            greeting = choose_greeting(card, index, user_name=self.user_name)
        except (ValueError, CardError):
            await self.outbox.error(
                "invalid_greeting", f"greeting must be 0 to {len(card.alternate_greetings)}"
            )
            greeting = choose_greeting(card, user_name=self.user_name)
        if greeting is not None:
            await self.pipeline.greet(greeting.text)

    async def _switch_user(self) -> None:
        """A ``session.update`` changed the user id: continue that user's conversation."""
        await self.pipeline.interrupt()
        self.pipeline.conversation = await self._conversation(self.pipeline.character)
        await self.outbox.event({"type": "session.updated", "session": self.describe()})
        await self._start_conversation(pinned=False)
