"""The interactive client's view of the server's events: replies, transcripts, errors.

:class:`ServerEvents` is the half of :class:`~voice_chat.client.controller.Controller` that
reacts to what the server sends: each event type has one handler (``_HANDLERS``) that updates
the turn state, starts or stops reply audio and prints finished turns.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol, TextIO

from voice_chat.pipeline import events as ev

from . import connection as events
from .connection import Event, Message
from .pcm import MODEL_RATE

RESUMED_TURNS_SHOWN = 6
# errors after which no reply will come for the turn we sent
TURN_ENDING_ERRORS = {"nothing_to_commit", "response_failed", "invalid_event", "frame_too_large"}


class Phase(StrEnum):
    CONNECTING = "connecting"
    READY = "ready"
    RECORDING = "recording"
    THINKING = "thinking"
    SPEAKING = "speaking"


class Output(Protocol):
    """What the controller needs from the speakers (``audio_io.AudioOutput`` or a fake)."""

    def start_response(self, response_id: str, sample_rate: int) -> None: ...
    def feed(self, response_id: str, pcm16: bytes) -> None: ...
    def finish_response(self, response_id: str) -> None: ...
    def interrupt(self, response_id: str | None) -> int: ...
    def is_playing(self, response_id: str | None = None) -> bool: ...


@dataclass
class Reply:
    id: str
    text: str = ""
    audio_started: bool = False
    done: bool = False
    status: str = ""
    interrupted: bool = False  # we barged in: the heard text comes with conversation.item.truncated
    printed: bool = False


class ClientState:
    """The controller's state, as its halves (:class:`ServerEvents`, ``link.Link``) see it.

    ``Controller.__init__`` sets every field; the annotations only tell the halves what exists.
    """

    url: str
    api_key: str | None  # sent as Authorization: Bearer (servers with auth on)
    output: Output
    printer: Callable[[str], None]
    log: TextIO | None
    vad: bool
    user: str | None
    connected: bool
    character_name: str
    notice: str
    partial_transcript: str
    recording: bool
    exit_code: int
    session: dict[str, Any]
    _awaiting_reply: bool
    _vad_speech: bool
    _replies: dict[str, Reply]
    _current: Reply | None
    _audio_rid: str | None  # response whose binary frames are arriving
    _outbox: asyncio.Queue[Message]
    _stop: asyncio.Event
    # methods of the other halves (annotations only, so they never shadow the real ones)
    _send: Callable[[Message], None]
    interrupt: Callable[..., bool]
    handle_audio: Callable[[bytes], None]
    handle_event: Callable[[Event], None]


class ServerEvents(ClientState):
    """One handler per server event over the turn state."""

    def handle_audio(self, data: bytes) -> None:
        reply = self._replies.get(self._audio_rid or "")
        if reply is None or reply.interrupted:
            return
        self.output.feed(reply.id, data)

    def handle_event(self, event: Event) -> None:
        kind = str(event.get("type", ""))
        handler = _HANDLERS.get(kind)
        if handler is not None:
            handler(self, event)

    def _on_session(self, event: Event) -> None:
        session = event.get("session") or {}
        first = not self.connected
        self.session = session
        self.character_name = str(
            session.get("character_name") or session.get("character") or "character"
        )
        self.connected = True
        self.notice = ""
        if first and event.get("type") == ev.SessionCreated.TYPE:
            mode = "server_vad" if self.vad else "manual"
            self._send(
                events.session_update(turn_detection=mode, input_rate=MODEL_RATE, user=self.user)
            )
            self._show_resumed(session.get("conversation"))

    def _show_resumed(self, conversation: object) -> None:
        """A resumed conversation (the server keeps history per user): show its last turns."""
        if not isinstance(conversation, dict):
            return
        turns = [t for t in conversation.get("turns") or [] if isinstance(t, dict)]
        if not conversation.get("resumed") and not turns:
            return
        self.printer("(conversation resumed)")
        for turn in turns[-RESUMED_TURNS_SHOWN:]:
            who = "you" if turn.get("role") == "user" else self.character_name
            self.printer(f"{who}: {str(turn.get('text', '')).strip()}")

    def _on_speech_started(self, _event: Event) -> None:
        self._vad_speech = True
        self.partial_transcript = ""
        self.interrupt(server_cancels=True)

    def _on_speech_stopped(self, _event: Event) -> None:
        self._vad_speech = False
        self._awaiting_reply = True  # the VAD ended the turn: a reply comes

    def _on_committed(self, _event: Event) -> None:
        self._vad_speech = False
        self._awaiting_reply = True

    def _on_transcript_delta(self, event: Event) -> None:
        text = event.get("text")  # the whole partial so far (may revise earlier words)
        if isinstance(text, str):
            self.partial_transcript = text
        else:
            self.partial_transcript += str(event.get("delta", ""))

    def _on_transcript_done(self, event: Event) -> None:
        transcript = str(event.get("transcript", "")).strip()
        self.partial_transcript = ""
        if transcript:
            self.printer(f"you: {transcript}")
        else:  # the server does not answer an empty turn
            self.printer("(nothing was heard)")
            self._awaiting_reply = False

    def _on_response_created(self, event: Event) -> None:
        rid = str((event.get("response") or {}).get("id", ""))
        reply = Reply(rid)
        self._replies[rid] = reply
        self._current = reply
        self._awaiting_reply = False

    def _on_text_delta(self, event: Event) -> None:
        reply = self._replies.get(str(event.get("response_id", "")))
        if reply is not None:
            reply.text += str(event.get("delta", ""))

    def _on_audio_started(self, event: Event) -> None:
        rid = str(event.get("response_id", ""))
        reply = self._replies.get(rid)
        if reply is None or reply.interrupted:
            self._audio_rid = None
            return
        reply.audio_started = True
        self._audio_rid = rid
        rate = int(
            event.get("sample_rate")
            or self.session.get("output_audio_format", {}).get("sample_rate")
            or 22050
        )
        self.output.start_response(rid, rate)

    def _on_audio_done(self, event: Event) -> None:
        rid = str(event.get("response_id", ""))
        reply = self._replies.get(rid)
        if reply is not None and not reply.interrupted:
            self.output.finish_response(rid)

    def _on_response_done(self, event: Event) -> None:
        response = event.get("response") or {}
        rid = str(response.get("id", ""))
        reply = self._replies.get(rid) or Reply(rid)
        self._replies[rid] = reply
        reply.done = True
        reply.status = str(response.get("status", ""))
        if isinstance(response.get("text"), str):
            reply.text = response["text"]
        if self._current is reply:
            self._current = None
        if reply.status == "failed":
            self._print_reply(reply, reply.text, " [failed]")
        elif reply.status == "cancelled" and not reply.interrupted:
            # the server cancelled it (e.g. VAD barge-in); history keeps what was sent
            reply.interrupted = True
            if self.output.is_playing(rid):
                self.output.interrupt(rid)
            self._print_reply(reply, reply.text, " [interrupted]")
        elif reply.interrupted and not reply.audio_started:
            self._print_reply(reply, "", "[interrupted]")

    def _on_truncated(self, event: Event) -> None:
        reply = self._replies.get(str(event.get("response_id", "")))
        if reply is not None and not reply.printed:
            self._print_reply(reply, str(event.get("text", "")), " [interrupted]")

    def _on_error(self, event: Event) -> None:
        self.printer(f"error: {events.describe_error(event)}")
        code = (
            (event.get("error") or {}).get("code") if isinstance(event.get("error"), dict) else None
        )
        if code in TURN_ENDING_ERRORS:
            self._awaiting_reply = False

    def _print_reply(self, reply: Reply, text: str, suffix: str) -> None:
        reply.printed = True
        body = " ".join(part for part in (text.strip(), suffix.strip()) if part)
        if body:
            self.printer(f"{self.character_name}: {body}")


_HANDLERS: dict[str, Callable[[ServerEvents, Event], None]] = {
    ev.SessionCreated.TYPE: ServerEvents._on_session,
    ev.SessionUpdated.TYPE: ServerEvents._on_session,
    ev.SpeechStarted.TYPE: ServerEvents._on_speech_started,
    ev.SpeechStopped.TYPE: ServerEvents._on_speech_stopped,
    ev.AudioCommitted.TYPE: ServerEvents._on_committed,
    ev.TranscriptDelta.TYPE: ServerEvents._on_transcript_delta,
    ev.TranscriptCompleted.TYPE: ServerEvents._on_transcript_done,
    ev.ResponseCreated.TYPE: ServerEvents._on_response_created,
    ev.TextDelta.TYPE: ServerEvents._on_text_delta,
    ev.AudioStarted.TYPE: ServerEvents._on_audio_started,
    ev.AudioDone.TYPE: ServerEvents._on_audio_done,
    ev.ResponseDone.TYPE: ServerEvents._on_response_done,
    ev.ItemTruncated.TYPE: ServerEvents._on_truncated,
    ev.Error.TYPE: ServerEvents._on_error,
}
