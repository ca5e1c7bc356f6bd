"""The OpenAI Realtime (GA) dialect's encoder: the pipeline's typed events to GA server events.

It is the pipeline's :class:`~voice_chat.pipeline.ports.Outbox` for a GA session. One
pipeline event can become several GA events (``response.created`` opens the response, its
output item and its content part); reply audio becomes base64 ``response.output_audio.delta``
in the session's output format. Every event gets an ``event_id``; item, response and content
part ids stay consistent across events (see :class:`~voice_chat.server.ga.items.Items`).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import structlog

from voice_chat.audio.codecs import PCM24K, WireFormat
from voice_chat.pipeline import events as ev
from voice_chat.server.ga.items import Items, assistant_item, new_id, user_item

log = structlog.get_logger(__name__)
SERVER_ERROR_CODES = {"response_failed", "internal_error"}
API_CODES = {"nothing_to_commit": "input_audio_buffer_commit_empty"}  # the pipeline's -> the API's


@dataclass
class _Response:
    id: str
    item_id: str
    audio: bool  # output_modalities ["audio"] (else ["text"])
    voice: str
    deltas: list[str] = field(default_factory=list)
    audio_started: bool = False

    @property
    def text(self) -> str:
        return "".join(self.deltas)


@dataclass
class Wire:
    """What the session decides and the encoder reads: formats, modalities, voice, limits."""

    output_format: WireFormat = PCM24K
    audio_output: bool = True  # session output_modalities
    voice: str = ""
    max_output_tokens: int = 80
    next_audio_output: bool | None = None  # a response.create's own output_modalities
    cancel_reason: str = "turn_detected"  # set to client_cancelled around response.cancel


class GAEncoder:
    """Outbox of a GA session: typed events in, GA JSON text frames out through ``send``."""

    def __init__(self, send: Callable[[str], Awaitable[None]], items: Items, wire: Wire) -> None:
        self._send = send
        self.items = items
        self.wire = wire
        self.responses: dict[str, _Response] = {}
        self.speaking: _Response | None = None
        self._partials: dict[str, str] = {}  # user item id -> transcript so far
        self._audio_ms: dict[str, tuple[int, int]] = {}  # user item id -> speech start, end

    # ----------------------------------------------------------------- output
    async def send(self, kind: str, **fields: Any) -> None:
        body = {"type": kind, "event_id": new_id("event"), **fields}
        await self._send(json.dumps(body, ensure_ascii=False))

    async def send_error(
        self,
        code: str,
        message: str,
        param: str | None = None,
        event_id: str | None = None,
        kind: str | None = None,
    ) -> None:
        log.info("client error", code=code, message=message, param=param)
        kind = kind or ("server_error" if code in SERVER_ERROR_CODES else "invalid_request_error")
        error = {
            "type": kind,
            "code": code,
            "message": message,
            "param": param,
            "event_id": event_id,
        }
        await self.send("error", error=error)

    # -------------------------------------------------- the pipeline's Outbox
    async def error(self, code: str, message: str) -> None:
        await self.send_error(API_CODES.get(code, code), message)

    async def audio(self, pcm: bytes) -> None:
        r = self.speaking
        if r is None or not r.audio:
            return
        data = self.wire.output_format.from_pcm16(pcm)
        await self.send(
            "response.output_audio.delta",
            response_id=r.id,
            item_id=r.item_id,
            output_index=0,
            content_index=0,
            delta=base64.b64encode(data).decode("ascii"),
        )

    async def event(self, event: ev.ServerEvent) -> None:
        handler = _HANDLERS.get(type(event))
        if handler is not None:
            await handler(self, event)

    # ------------------------------------------------------------ user input
    async def _speech_started(self, e: ev.SpeechStarted) -> None:
        self._audio_ms[e.item_id] = (e.audio_start_ms, e.audio_start_ms)
        await self.send(
            "input_audio_buffer.speech_started", audio_start_ms=e.audio_start_ms, item_id=e.item_id
        )

    async def _speech_stopped(self, e: ev.SpeechStopped) -> None:
        start, _ = self._audio_ms.get(e.item_id, (e.audio_end_ms, e.audio_end_ms))
        self._audio_ms[e.item_id] = (start, e.audio_end_ms)
        await self.send(
            "input_audio_buffer.speech_stopped", audio_end_ms=e.audio_end_ms, item_id=e.item_id
        )

    async def _committed(self, e: ev.AudioCommitted) -> None:
        item = user_item(e.item_id, transcript=None, status="in_progress")
        previous = self.items.put(item)
        await self.send(
            "input_audio_buffer.committed", item_id=e.item_id, previous_item_id=previous
        )
        await self.send("conversation.item.added", item=item, previous_item_id=previous)

    async def _cleared(self, e: ev.AudioCleared) -> None:
        await self.send("input_audio_buffer.cleared")

    async def _transcript_delta(self, e: ev.TranscriptDelta) -> None:
        before = self._partials.get(e.item_id, "")
        if not e.text.startswith(before):
            return  # a revision: GA deltas only ever extend the transcript
        self._partials[e.item_id] = e.text
        if e.text != before:
            await self.send(
                "conversation.item.input_audio_transcription.delta",
                item_id=e.item_id,
                content_index=0,
                delta=e.text[len(before) :],
            )

    async def _transcript_done(self, e: ev.TranscriptCompleted) -> None:
        self._partials.pop(e.item_id, None)
        start, end = self._audio_ms.pop(e.item_id, (0, 0))
        await self.send(
            "conversation.item.input_audio_transcription.completed",
            item_id=e.item_id,
            content_index=0,
            transcript=e.transcript,
            usage={"type": "duration", "seconds": round(max(0, end - start) / 1000, 3)},
        )
        item = user_item(e.item_id, transcript=e.transcript)
        previous = self.items.put(item)
        await self.send("conversation.item.done", item=item, previous_item_id=previous)

    # --------------------------------------------------------------- replies
    def response_json(self, r: _Response, status: str, **extra: Any) -> dict[str, Any]:
        return {
            "id": r.id,
            "object": "realtime.response",
            "status": status,
            "status_details": None,
            "output": [],
            "conversation_id": "conv_default",
            "output_modalities": ["audio" if r.audio else "text"],
            "max_output_tokens": self.wire.max_output_tokens,
            "audio": {"output": {"format": self.wire.output_format.describe(), "voice": r.voice}},
            "usage": None,
            "metadata": None,
            **extra,
        }

    async def _response_created(self, e: ev.ResponseCreated) -> None:
        w = self.wire
        audio = w.audio_output if w.next_audio_output is None else w.next_audio_output
        w.next_audio_output = None
        r = _Response(e.response.id, new_id("item"), audio, w.voice)
        self.responses[r.id] = r
        while len(self.responses) > 64:
            self.responses.pop(next(iter(self.responses)))
        await self.send("response.created", response=self.response_json(r, "in_progress"))
        item = assistant_item(r.item_id, audio=audio)
        previous = self.items.put(item)
        self.items.response_of[r.item_id] = r.id
        self.items.item_of[r.id] = r.item_id
        await self.send("response.output_item.added", response_id=r.id, output_index=0, item=item)
        await self.send("conversation.item.added", item=item, previous_item_id=previous)
        part = {"type": "audio", "transcript": ""} if audio else {"type": "text", "text": ""}
        await self.send("response.content_part.added", **self._where(r), part=part)

    @staticmethod
    def _where(r: _Response) -> dict[str, Any]:
        return {"response_id": r.id, "item_id": r.item_id, "output_index": 0, "content_index": 0}

    async def _text_delta(self, e: ev.TextDelta) -> None:
        r = self.responses.get(e.response_id)
        if r is None:
            return
        r.deltas.append(e.delta)
        kind = "response.output_audio_transcript.delta" if r.audio else "response.output_text.delta"
        await self.send(kind, **self._where(r), delta=e.delta)

    async def _audio_started(self, e: ev.AudioStarted) -> None:
        r = self.responses.get(e.response_id)
        if r is not None:
            r.audio_started = True
            self.speaking = r

    async def _audio_done(self, e: ev.AudioDone) -> None:
        r = self.responses.get(e.response_id)
        if self.speaking is r:
            self.speaking = None
        if r is not None and r.audio:
            await self.send("response.output_audio.done", **self._where(r))

    async def _response_done(self, e: ev.ResponseDone) -> None:
        res = e.response
        r = self.responses.get(res.id)
        if r is None:
            return
        if self.speaking is r:
            self.speaking = None
        status = res.status if res.status in ("completed", "cancelled", "failed") else "failed"
        text = r.text or res.text
        where = self._where(r)
        if r.audio:
            await self.send("response.output_audio_transcript.done", **where, transcript=text)
            part: dict[str, Any] = {"type": "audio", "transcript": text}
        else:
            await self.send("response.output_text.done", **where, text=text)
            part = {"type": "text", "text": text}
        await self.send("response.content_part.done", **where, part=part)
        item_status = "completed" if status == "completed" else "incomplete"
        item = assistant_item(r.item_id, audio=r.audio, text=text, status=item_status)
        previous = self.items.put(item)
        await self.send("response.output_item.done", response_id=r.id, output_index=0, item=item)
        await self.send("conversation.item.done", item=item, previous_item_id=previous)
        details: dict[str, Any] | None = None
        if status == "cancelled":
            details = {"type": "cancelled", "reason": self.wire.cancel_reason}
        elif status == "failed":
            details = {
                "type": "failed",
                "error": {
                    "type": "server_error",
                    "code": "response_failed",
                    "message": "an engine failed while answering",
                },
            }
        output_tokens = int(res.metrics.get("llm_tokens", 0))
        input_tokens = int(res.metrics.get("prompt_tokens", 0))
        usage = {
            "total_tokens": input_tokens + output_tokens,
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "input_token_details": {
                "text_tokens": input_tokens,
                "audio_tokens": 0,
                "cached_tokens": 0,
            },
            "output_token_details": {"text_tokens": output_tokens, "audio_tokens": 0},
        }
        body = self.response_json(r, status, status_details=details, output=[item], usage=usage)
        await self.send("response.done", response=body)
        remaining = max(0, self.wire.max_output_tokens - output_tokens)
        limit = {
            "name": "tokens",
            "limit": self.wire.max_output_tokens,
            "remaining": remaining,
            "reset_seconds": 0.0,
        }
        await self.send("rate_limits.updated", rate_limits=[limit])

    async def _truncated(self, e: ev.ItemTruncated) -> None:
        item_id = self.items.item_of.get(e.response_id)
        if item_id is None:
            return
        r = self.responses.get(e.response_id)
        item = assistant_item(
            item_id, audio=True if r is None else r.audio, text=e.text, status="incomplete"
        )
        self.items.put(item)
        await self.send(
            "conversation.item.truncated",
            item_id=item_id,
            content_index=0,
            audio_end_ms=e.audio_end_ms,
        )

    async def _error(self, e: ev.Error) -> None:
        await self.send_error(e.error.code, e.error.message, event_id=e.error.event_id)


Handler = Callable[[GAEncoder, Any], Awaitable[None]]
_HANDLERS: dict[type[ev.ServerEvent], Handler] = {
    ev.SpeechStarted: GAEncoder._speech_started,
    ev.SpeechStopped: GAEncoder._speech_stopped,
    ev.AudioCommitted: GAEncoder._committed,
    ev.AudioCleared: GAEncoder._cleared,
    ev.TranscriptDelta: GAEncoder._transcript_delta,
    ev.TranscriptCompleted: GAEncoder._transcript_done,
    ev.ResponseCreated: GAEncoder._response_created,
    ev.TextDelta: GAEncoder._text_delta,
    ev.AudioStarted: GAEncoder._audio_started,
    ev.AudioDone: GAEncoder._audio_done,
    ev.ResponseDone: GAEncoder._response_done,
    ev.ItemTruncated: GAEncoder._truncated,
    ev.Error: GAEncoder._error,
}
# Session-level events the GA session writes itself (its own session object and items).
NOT_ENCODED: frozenset[type[ev.ServerEvent]] = frozenset(
    {ev.SessionCreated, ev.SessionUpdated, ev.ItemCreated}
)
