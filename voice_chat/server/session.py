"""One realtime session over a websocket: frames in, events dispatched, events out."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import structlog
from starlette.websockets import WebSocket

from voice_chat.audio.pcm import MODEL_RATE
from voice_chat.cards import CardError, choose_greeting
from voice_chat.characters.registry import Character, CharacterError
from voice_chat.memory.store import DEFAULT_CONVERSATION
from voice_chat.pipeline import events as ev
from voice_chat.pipeline.conversation import Conversation, conversation_info
from voice_chat.pipeline.endpoint import policy_for
from voice_chat.pipeline.pipeline import Pipeline
from voice_chat.runtime.local import SPEED_MARK, Runtime
from voice_chat.server.defaults import TurnType, session_config
from voice_chat.server.limits import EventGate
from voice_chat.server.outbox import AudioRateGuard, WebSocketOutbox
from voice_chat.server.protocol import (
    Clear,
    Commit,
    ItemCreate,
    ProtocolError,
    Regenerate,
    ResponseCancel,
    SessionUpdate,
    Truncate,
    parse_client_event,
)
from voice_chat.server.receiving import Handlers, receive_until_closed

log = structlog.get_logger(__name__)


class RealtimeSession:
    def __init__(
        self,
        runtime: Runtime,
        ws: WebSocket,
        character: Character,
        query: dict[str, str],
        input_rate: int = MODEL_RATE,
    ):
        """Use :meth:`open`, which also prepares the voice and loads the conversation."""
        s = runtime.settings
        self.runtime = runtime
        self.ws = ws
        self.outbox = WebSocketOutbox(ws)
        self.id = "sess_" + uuid.uuid4().hex[:12]
        # never a shared id: a session without one gets its own (server/app.py sets it, and
        # with auth on it is the API key's user, which session.update cannot change)
        self.user_id = query.get("user") or "anon-" + uuid.uuid4().hex
        self.user_locked = s.auth == "on"
        self.event_gate = EventGate(s.max_events_per_s, s.event_burst)
        self.conversation_id = query.get("conversation") or DEFAULT_CONVERSATION
        self.speed = float(query.get("speed") or 1.0)  # checked by the app before the session
        self.requested_output_rate: int | None = None  # set by output_audio_format
        self.config = session_config(
            s,
            character,
            output_rate=MODEL_RATE,
            input_rate=input_rate,
            turn_type=_turn_type(query.get("turn_detection")),
            user_name=query.get("user_name") or "User",
        )
        self.guard = AudioRateGuard(s.max_audio_speed)
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

    @property
    def user_name(self) -> str:
        return self.config.user_name

    async def _conversation(self, character: Character) -> Conversation:
        store = self.runtime.store
        return await store.open_conversation(
            self.user_id, character.id, self.outbox.error, self.conversation_id
        )

    async def _new_pipeline(self, character: Character) -> Pipeline:
        """Resolve the character's voice once (off the event loop), then build the pipeline."""
        voice_id, native_rate = await self.runtime.prepare_voice(character.voice, self.speed)
        cfg = self.config
        cfg.character, cfg.voice_id = character, voice_id
        cfg.output_rate = self.requested_output_rate or native_rate
        return Pipeline(self.runtime, self.outbox, cfg, await self._conversation(character))

    def describe(self) -> dict[str, Any]:
        cfg, s = self.config, self.runtime.settings
        return {
            "id": self.id,
            "character": cfg.character.id,
            "character_name": cfg.character.name,
            "voice": cfg.voice_id.partition(SPEED_MARK)[0],
            "speech_speed": self.speed,
            "user": {"id": self.user_id, "name": cfg.user_name},
            "turn_detection": {
                "type": cfg.turn.type,
                "silence_duration_ms": cfg.turn.silence_ms,
                "threshold": cfg.turn.threshold,
                "eagerness": cfg.turn.eagerness,
                "max_wait_ms": policy_for(cfg.turn.eagerness, max_ms=cfg.turn.max_wait_ms).max_ms,
            },
            "input_audio_format": {"encoding": "pcm16", "sample_rate": cfg.input_rate},
            "output_audio_format": {"encoding": "pcm16", "sample_rate": cfg.output_rate},
            "limits": {
                "max_frame_bytes": s.max_frame_bytes,
                "max_text_bytes": s.max_text_bytes,
                "max_utterance_s": s.max_utterance_s,
                "max_text_chars": s.max_text_chars,
                "max_events_per_s": s.max_events_per_s,
                "event_burst": s.event_burst,
                "idle_timeout_s": s.idle_timeout_s,
            },
            "conversation": conversation_info(self.pipeline.conversation),
        }

    async def run(self) -> None:
        self.log.info("session started", user=self.user_id)
        await self.outbox.event(ev.SessionCreated(self.describe()))
        await self._start_conversation()
        idle_s = self.runtime.settings.idle_timeout_s
        handlers = Handlers(self._on_text, self._on_audio, self._busy, lambda: self._idle(idle_s))
        try:
            await receive_until_closed(self.ws, idle_s, handlers)
        finally:
            self.outbox.closed = True
            await self.pipeline.close()
            self.log.info("session ended")

    def _busy(self) -> bool:
        reply = self.pipeline.reply
        return reply is not None and not reply.finished

    async def _idle(self, idle_s: float) -> None:
        message = (
            f"nothing received for {idle_s:g} s: the session is closed "
            "(VOICE_CHAT_IDLE_TIMEOUT_S); reconnect to go on"
        )
        self.log.info("idle session closed", idle_s=idle_s)
        await self.outbox.error("idle_timeout", message)
        self.outbox.closed = True

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
        if not self.guard.admit(len(data) / 2 / self.config.input_rate):
            if self.guard.should_warn():
                await self.outbox.error(
                    "audio_rate_exceeded",
                    f"audio is arriving faster than {s.max_audio_speed}x real time; excess dropped",
                )
            return
        await self.pipeline.push_audio(data)

    async def _on_text(self, text: str) -> None:
        s = self.runtime.settings
        refusal = self.event_gate.admit()
        if refusal is not None:
            await self.outbox.error("rate_limited", refusal)
            return
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
            await self.outbox.event(ev.ItemCreated(item))
            await p.user_text(body)
        elif isinstance(event, ResponseCancel):
            if p.reply is not None and event.response_id in (None, p.reply.id):
                await p.interrupt()
        elif isinstance(event, Regenerate):
            await self._regenerate()
        elif isinstance(event, Truncate):
            await p.truncate(event.response_id, event.audio_end_ms)

    async def _regenerate(self) -> None:
        """``response.regenerate``: the last reply made anew, or the greeting chosen anew."""
        p = self.pipeline
        if await p.regenerate():
            return
        turns = p.conversation.turns()
        if len(turns) == 1 and turns[0].role == "assistant":  # only the greeting so far
            p.conversation.remove(turns[0].id)
            greeting = choose_greeting(self.config.character.card, user_name=self.user_name)
            if greeting is not None:
                await p.greet(greeting.text)
                return
        await self.outbox.error("nothing_to_regenerate", "there is no reply to say again yet")

    async def _update(self, event: SessionUpdate) -> None:
        cfg, update = self.config, event.session
        old_user = self.user_id
        wanted = update.user.id if update.user is not None else None
        if self.user_locked and wanted and wanted != self.user_id:
            await self.outbox.error(
                "forbidden",
                f"this API key talks as user {self.user_id!r}; session.update cannot change it",
            )
            return
        if update.user is not None:
            self.user_id = update.user.id or self.user_id
            cfg.user_name = update.user.name or cfg.user_name
        if update.input_audio_format is not None:
            self.pipeline.set_input_rate(update.input_audio_format.sample_rate)
        if update.output_audio_format is not None:
            self.requested_output_rate = update.output_audio_format.sample_rate
            cfg.output_rate = self.requested_output_rate
        if update.turn_detection is not None:
            td = update.turn_detection
            cfg.turn.type = td.type
            if td.silence_duration_ms:
                cfg.turn.silence_ms = td.silence_duration_ms
            if td.threshold:
                cfg.turn.threshold = td.threshold
            if td.eagerness:
                cfg.turn.eagerness = td.eagerness
            if td.max_wait_ms:
                cfg.turn.max_wait_ms = td.max_wait_ms
        if update.character is not None and update.character != cfg.character.id:
            try:
                get = self.runtime.characters.get
                character = await asyncio.to_thread(get, update.character)  # reads card files
            except CharacterError as exc:
                await self.outbox.error(exc.code, str(exc))
                return
            await self.pipeline.close()
            self.pipeline = await self._new_pipeline(character)
            await self.outbox.event(ev.SessionUpdated(self.describe()))
            await self._start_conversation(pinned=False)
            return
        if self.user_id != old_user:
            await self._switch_user()
            return
        await self.outbox.event(ev.SessionUpdated(self.describe()))

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
        card = self.config.character.card
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
        self.pipeline.conversation = await self._conversation(self.config.character)
        await self.outbox.event(ev.SessionUpdated(self.describe()))
        await self._start_conversation(pinned=False)


def _turn_type(asked: str | None) -> TurnType | None:
    """``?turn_detection=`` on the URL, else (None) the server's default."""
    if asked in ("server_vad", "semantic_vad", "manual"):
        return asked  # type: ignore[return-value]
    return None
