"""One OpenAI Realtime (GA) session over a websocket: client events in, the pipeline, GA out.

The same :class:`~voice_chat.pipeline.pipeline.Pipeline` as the native protocol does the work;
this module maps the GA client events onto it, and :class:`GAEncoder` maps the pipeline's
typed events back to GA server events. Each session starts a fresh conversation (as the API
does) with the character named by ``model``; nothing is spoken until the user speaks or the
client sends ``response.create``. See docs/protocol.md ("The OpenAI Realtime dialect").
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from typing import Any

import structlog
from starlette.websockets import WebSocket

from voice_chat.audio.codecs import FORMATS, AudioFormatError
from voice_chat.characters.registry import Character, CharacterError
from voice_chat.pipeline.conversation import InMemoryConversation
from voice_chat.pipeline.pipeline import Pipeline
from voice_chat.runtime.local import Runtime
from voice_chat.server.defaults import session_config
from voice_chat.server.ga import client_events as ce
from voice_chat.server.ga.client_events import GAError, no_item
from voice_chat.server.ga.encoder import GAEncoder, Wire
from voice_chat.server.ga.item_events import ItemEvents
from voice_chat.server.ga.items import Items, new_id
from voice_chat.server.ga.state import GAState, VadChoice, describe
from voice_chat.server.limits import EventGate
from voice_chat.server.outbox import AudioRateGuard, WebSocketOutbox
from voice_chat.server.receiving import Handlers, receive_until_closed

log = structlog.get_logger(__name__)
APPEND_FACTOR = 8  # one append may carry 8x max_frame_bytes of audio (10.9 s at 24 kHz)


class GASession(ItemEvents):
    def __init__(
        self, runtime: Runtime, ws: WebSocket, character: Character, query: dict[str, str]
    ) -> None:
        """Use :meth:`open`, which also prepares the character's voice."""
        s = runtime.settings
        self.runtime, self.ws = runtime, ws
        self.transport = WebSocketOutbox(ws)
        kind = "transcription" if query.get("intent") == "transcription" else "realtime"
        self.state = GAState(new_id("sess"), kind=kind)
        self.state.vad = VadChoice(type=s.turn_detection, eagerness=s.turn_eagerness)
        self.items = Items()
        self.wire = Wire(max_output_tokens=s.max_reply_tokens)
        self.encoder = GAEncoder(self.transport.send_text, self.items, self.wire)
        self.config = session_config(
            s,
            character,
            output_rate=self.state.output_format.rate,
            input_rate=self.state.input_format.rate,
            auto_respond=self.state.auto_respond,
            replace_persona=s.realtime_instructions == "replace",
        )
        self.guard = AudioRateGuard(s.max_audio_speed)  # appended audio
        self.event_gate = EventGate(s.max_events_per_s, s.event_burst)  # every other event
        self.system_notes: dict[str, str] = {}  # system items: id -> text
        self.log = log.bind(session=self.state.id, character=character.id, dialect="ga")
        self.pipeline: Pipeline

    @classmethod
    async def open(
        cls, runtime: Runtime, ws: WebSocket, character: Character, query: dict[str, str]
    ) -> GASession:
        session = cls(runtime, ws, character, query)
        session.config.voice_id, _ = await runtime.prepare_voice(character.voice)
        session.wire.voice = session.config.voice_id
        session.pipeline = Pipeline(
            runtime, session.encoder, session.config, InMemoryConversation()
        )
        return session

    def describe(self) -> dict[str, Any]:
        cfg, s = self.config, self.runtime.settings
        return describe(
            self.state,
            model=cfg.character.id,
            voice=cfg.voice_id,
            threshold=cfg.turn.threshold,
            silence_ms=cfg.turn.silence_ms,
            max_output_tokens=cfg.generation.max_tokens,
            stt_model=s.stt_model,
            stt_language=s.stt_language,
        )

    async def run(self) -> None:
        self.log.info("session started")
        await self.encoder.send("session.created", session=self.describe())
        idle_s = self.runtime.settings.idle_timeout_s
        handlers = Handlers(
            self._on_text,
            self._on_binary,
            lambda: self.pipeline.reply is not None,
            lambda: self._idle(idle_s),
        )
        try:
            await receive_until_closed(self.ws, idle_s, handlers)
        finally:
            self.transport.closed = True
            await self.pipeline.close()
            self.log.info("session ended")

    async def _on_binary(self, data: bytes) -> None:
        await self.encoder.send_error(
            "invalid_event",
            "binary frames are not part of this dialect: send audio as base64 in "
            "input_audio_buffer.append",
        )

    async def _idle(self, idle_s: float) -> None:
        self.log.info("idle session closed", idle_s=idle_s)
        await self.encoder.send_error(
            "idle_timeout", f"nothing received for {idle_s:g} s: the session is closed"
        )
        self.transport.closed = True

    async def _on_text(self, text: str) -> None:
        limit = self.runtime.settings.max_event_bytes
        if len(text) > limit or len(text.encode("utf-8", "replace")) > limit:
            await self.encoder.send_error("frame_too_large", f"event over {limit} bytes")
            return
        try:
            event = ce.parse(text)
            if not isinstance(event, ce.Append):  # audio has its own real-time guard
                refusal = self.event_gate.admit()
                if refusal is not None:  # dropped, and answered
                    await self.encoder.send_error("rate_limited", refusal)
                    return
            await self._dispatch(event)
        except GAError as exc:
            await self.encoder.send_error(
                exc.code, exc.message, exc.param, exc.event_id, kind=exc.kind
            )

    async def _dispatch(self, e: Any) -> None:
        p = self.pipeline
        if isinstance(e, ce.Append):
            await self._append(e)
        elif isinstance(e, ce.Commit):
            await p.commit()
        elif isinstance(e, ce.Clear):
            await p.clear()
        elif isinstance(e, ce.SessionUpdate):
            await self._update(e)
        elif isinstance(e, ce.ItemCreate):
            await self._create_item(e)
        elif isinstance(e, ce.ItemRetrieve):
            item = self.items.get(e.item_id)
            if item is None:
                raise no_item("item_retrieve_invalid_item_id", e.item_id, e.event_id)
            await self.encoder.send("conversation.item.retrieved", item=item)
        elif isinstance(e, ce.ItemDelete):
            await self._delete(e)
        elif isinstance(e, ce.ItemTruncate):
            await self._truncate(e)
        elif isinstance(e, ce.ResponseCreate):
            await self._respond(e)
        elif isinstance(e, ce.ResponseCancel):
            await self._cancel(e.response_id, e.event_id)
        elif isinstance(e, ce.OutputClear):
            reply = p.responding
            if reply is not None and reply.announced:
                await self._cancel(None, e.event_id)
                await self.encoder.send("output_audio_buffer.cleared", response_id=reply.id)

    # ------------------------------------------------------------ audio in
    def _decode(self, audio: str, param: str, event_id: str | None) -> bytes:
        try:
            data = base64.b64decode(audio, validate=True)
            return self.state.input_format.to_pcm16(data)
        except (binascii.Error, ValueError) as exc:
            fmt = self.state.input_format.type
            reason = str(exc) if isinstance(exc, AudioFormatError) else "malformed base64"
            raise GAError(
                "invalid_audio", f"audio is not base64 {fmt}: {reason}", param, event_id=event_id
            ) from exc

    async def _append(self, e: ce.Append) -> None:
        s = self.runtime.settings
        limit = s.max_frame_bytes * APPEND_FACTOR
        if len(e.audio) * 3 // 4 > limit:
            raise GAError(
                "frame_too_large",
                f"one append carries at most {limit} bytes of audio; split it",
                "audio",
                event_id=e.event_id,
            )
        pcm = self._decode(e.audio, "audio", e.event_id)
        if not pcm:
            return
        if not self.guard.admit(len(pcm) / 2 / self.state.input_format.rate):
            if self.guard.should_warn():
                await self.encoder.send_error(
                    "audio_rate_exceeded",
                    f"audio is arriving faster than {s.max_audio_speed}x real time; excess dropped",
                    "audio",
                    e.event_id,
                )
            return
        await self.pipeline.push_audio(pcm)

    # -------------------------------------------------------------- session
    async def _update(self, e: ce.SessionUpdate) -> None:
        new, state, cfg = e.session, self.state, self.config
        if isinstance(new, ce.RealtimeSession) and new.model and new.model != cfg.character.id:
            try:
                character = await asyncio.to_thread(self.runtime.characters.get, new.model)
            except CharacterError as exc:
                raise GAError(
                    "unknown_model",
                    f"no character (model) {new.model[:64]!r}",
                    "session.model",
                    event_id=e.event_id,
                ) from exc
            cfg.character = character
            cfg.voice_id, _ = await self.runtime.prepare_voice(character.voice)
        state.kind = new.type
        audio_in = new.audio.input if new.audio else None
        if audio_in is not None:
            self._update_input(audio_in)
        if isinstance(new, ce.RealtimeSession):
            out = new.audio.output if new.audio else None
            if out is not None and out.format is not None:
                state.output_format = self.wire.output_format = FORMATS[out.format.type]
                cfg.output_rate = state.output_format.rate
            if out is not None and isinstance(out.voice, str):
                await self._set_voice(out.voice)
            if new.instructions is not None:
                state.instructions = new.instructions
            if new.output_modalities is not None:
                state.audio_output = new.output_modalities == ["audio"]
            if new.max_output_tokens is not None:
                cap = self.runtime.settings.max_reply_tokens
                asked = cap if new.max_output_tokens == "inf" else new.max_output_tokens
                cfg.generation.max_tokens = max(1, min(cap, asked))
                self.wire.max_output_tokens = cfg.generation.max_tokens
        self._apply()
        await self.encoder.send("session.updated", session=self.describe())

    def _update_input(self, audio_in: ce.AudioInput) -> None:
        state, cfg = self.state, self.config
        if audio_in.format is not None:
            state.input_format = FORMATS[audio_in.format.type]
            self.pipeline.set_input_rate(state.input_format.rate)
        if "transcription" in audio_in.model_fields_set:
            t = audio_in.transcription
            state.transcription = t.model_dump() if t is not None else None
        if "turn_detection" in audio_in.model_fields_set:
            td = audio_in.turn_detection
            if td is None:
                state.vad = None
                cfg.turn.type = "manual"
                return
            cfg.turn.type = td.type
            vad = VadChoice(type=td.type)
            if td.create_response is not None:
                vad.create_response = td.create_response
            if td.interrupt_response is not None:
                vad.interrupt_response = td.interrupt_response
            if isinstance(td, ce.ServerVad):
                if td.threshold is not None:
                    cfg.turn.threshold = td.threshold
                if td.silence_duration_ms is not None:
                    cfg.turn.silence_ms = max(100, td.silence_duration_ms)
                if td.prefix_padding_ms is not None:
                    vad.prefix_padding_ms = td.prefix_padding_ms
            else:
                vad.eagerness = cfg.turn.eagerness = td.eagerness or "auto"
            state.vad = vad

    async def _set_voice(self, voice: str) -> None:
        """One of our voices by id; an API voice name we do not have keeps the character's."""
        try:
            await asyncio.to_thread(self.runtime.voices.get, voice)
        except (KeyError, ValueError, OSError):
            self.log.info("voice not found; keeping the character's", voice=voice[:64])
            return
        chosen, _ = await self.runtime.prepare_voice(voice)
        if chosen == voice:
            self.config.voice_id = voice

    def _apply(self) -> None:
        """Push the API-level choices into the pipeline's config and the encoder."""
        state, cfg = self.state, self.config
        cfg.auto_respond = state.auto_respond
        cfg.speak = state.audio_output
        self.wire.audio_output = state.audio_output
        self.wire.voice = cfg.voice_id
        cfg.instructions = "\n".join(
            t for t in [state.instructions, *self.system_notes.values()] if t.strip()
        )

    # ------------------------------------------------------------ responses
    async def _respond(self, e: ce.ResponseCreate) -> None:
        if self.state.kind == "transcription":
            raise GAError(
                "invalid_session_type",
                "a transcription session makes no responses",
                "type",
                event_id=e.event_id,
            )
        reply = self.pipeline.responding
        if reply is not None:
            raise GAError(
                "conversation_already_has_active_response",
                f"response {reply.id} is still in progress",
                event_id=e.event_id,
            )
        params = e.response or ce.ResponseParams()
        speak = self.state.audio_output
        if params.output_modalities is not None:
            speak = params.output_modalities == ["audio"]
        self.wire.next_audio_output = speak
        await self.pipeline.respond(instructions=params.instructions, speak=speak)

    async def _cancel(self, response_id: str | None, event_id: str | None) -> None:
        reply = self.pipeline.responding
        if reply is None or response_id not in (None, reply.id):
            raise GAError(
                "response_cancel_not_active",
                "no response in progress to cancel",
                "response_id" if response_id else None,
                event_id=event_id,
            )
        self.wire.cancel_reason = "client_cancelled"
        try:
            await self.pipeline.interrupt()
        finally:
            self.wire.cancel_reason = "turn_detected"
