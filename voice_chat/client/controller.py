"""The conversation as the interactive client sees it, independent of the terminal UI.

Owns the connection (with reconnects), the turn state shown to the user, the reply audio sent
to the speakers and barge-in. The UI calls the user actions (``start_recording``,
``stop_recording``, ``send_text``, ``interrupt``) and reads ``phase`` and the live texts.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol, TextIO

import numpy as np

from . import connection as events
from .connection import ConnectError, Connection, Event, Message, backoff_delays
from .pcm import MODEL_RATE, float_to_pcm16, level_dbfs

RESUMED_TURNS_SHOWN = 6
PREROLL_MS = 160  # audio from just before the key press, so the first syllable is not cut
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


class Controller:
    def __init__(
        self,
        url: str,
        output: Output,
        printer: Callable[[str], None],
        vad: bool = False,
        user: str | None = None,
        log: TextIO | None = None,
    ) -> None:
        self.url = url
        self.output = output
        self.printer = printer
        self.vad = vad
        self.user = user
        self.log = log
        # what the UI shows
        self.connected = False
        self.character_name = "character"
        self.notice = ""
        self.partial_transcript = ""
        self.level_db = -100.0
        self.recording = False
        self.exit_code = 0
        # turn state
        self._awaiting_reply = False
        self._vad_speech = False
        self._replies: dict[str, Reply] = {}
        self._current: Reply | None = None  # created, not done
        self._audio_rid: str | None = None  # response whose binary frames are arriving
        self._preroll: deque[np.ndarray] = deque(maxlen=max(1, PREROLL_MS // 20))
        self._outbox: asyncio.Queue[Message] = asyncio.Queue()
        self._stop = asyncio.Event()
        self.session: dict[str, Any] = {}

    # ------------------------------------------------------------------ what the UI reads

    @property
    def phase(self) -> Phase:
        if not self.connected:
            return Phase.CONNECTING
        if self.recording or self._vad_speech:
            return Phase.RECORDING
        current = self._current
        if self.output.is_playing() or (
            current is not None and current.audio_started and not current.interrupted
        ):
            return Phase.SPEAKING
        if self._awaiting_reply or self._current is not None:
            return Phase.THINKING
        return Phase.READY

    @property
    def live_reply(self) -> str:
        """Reply text of the response being generated or still being played."""
        for reply in reversed(self._replies.values()):
            if not reply.printed and not reply.interrupted:
                return reply.text
        return ""

    # ------------------------------------------------------------------ user actions

    def start_recording(self) -> None:
        """The talk key went down: barge in on any reply, then stream the microphone."""
        if not self.connected or self.vad:
            return
        self.interrupt()
        self.recording = True
        self.partial_transcript = ""
        for block in self._preroll:
            self._send(float_to_pcm16(block))
        self._preroll.clear()

    def stop_recording(self) -> None:
        """The talk key came up: close the turn."""
        if not self.recording:
            return
        self.recording = False
        self._send(events.commit())
        self._awaiting_reply = True

    def cancel_recording(self) -> None:
        if self.recording:
            self.recording = False
            self._send(events.clear())

    def send_text(self, text: str) -> None:
        text = text.strip()
        if not text:
            return
        if not self.connected:
            self.printer("error: not connected; the message was not sent")
            return
        self.interrupt()
        self.printer(f"you: {text}")
        self._send(events.text_message(text))
        self._awaiting_reply = True

    def interrupt(self, server_cancels: bool = False) -> bool:
        """Barge in: stop playback at once, cancel the reply, tell the server what was heard."""
        current = self._current
        playing = (
            self._audio_rid if self._audio_rid and self.output.is_playing(self._audio_rid) else None
        )
        if current is not None and current.interrupted:
            current = None  # already cancelled: the server's response.done is on its way
        if current is None and playing is None:
            return False
        if current is not None and not server_cancels:
            self._send(events.cancel(current.id))
        rid = playing or (current.id if current is not None and current.audio_started else None)
        heard = self.output.interrupt(rid)
        if rid is not None:
            self._send(events.truncate(rid, heard))
            reply = self._replies.get(rid)
            if reply is not None:
                reply.interrupted = True
        elif current is not None:
            current.interrupted = True
        self._audio_rid = None
        return True

    def stop(self) -> None:
        self._stop.set()

    def tick(self) -> None:
        """Called by the UI every ~50 ms: prints replies once they have been played out."""
        for rid, reply in list(self._replies.items()):
            if reply.printed or not reply.done or reply.interrupted:
                continue
            if self.output.is_playing(rid):
                continue
            self._print_reply(reply, reply.text, "")
        if len(self._replies) > 50:
            for rid in [r for r, rep in self._replies.items() if rep.printed][:25]:
                del self._replies[rid]

    # ------------------------------------------------------------------ microphone

    def on_mic(self, samples: np.ndarray) -> None:
        """A 16 kHz block from the microphone (about 20 ms)."""
        self.level_db = level_dbfs(samples)
        if not self.connected:
            return
        if self.recording or self.vad:
            self._send(float_to_pcm16(samples))
        else:
            self._preroll.append(samples)

    # ------------------------------------------------------------------ connection loop

    async def run(self) -> int:
        """Connect, hold the session, reconnect with backoff until ``stop()``. Returns exit code."""
        delays = backoff_delays()
        while not self._stop.is_set():
            self.notice = f"connecting to {self.url}"
            try:
                conn = await Connection.open(self.url, open_timeout=5.0, log=self.log)
            except ConnectError as exc:
                if not exc.retryable:
                    return self._fatal(str(exc))
                await self._wait_retry(str(exc), next(delays))
                continue
            try:
                await self._hold(conn)
            except ConnectError as exc:
                if not exc.retryable:
                    return self._fatal(str(exc))
                if self.session:
                    delays = backoff_delays()
                self.printer(f"error: {exc}")
                await self._wait_retry(str(exc), next(delays))
            finally:
                self._reset_connection()
                await conn.close()
        return self.exit_code

    def _fatal(self, message: str) -> int:
        self.printer(f"error: {message}")
        self.notice = message
        self.exit_code = 1
        return 1

    async def _wait_retry(self, reason: str, delay: float) -> None:
        self.notice = f"{reason} - retrying in {delay:.1f}s"
        with contextlib.suppress(asyncio.TimeoutError, TimeoutError):
            await asyncio.wait_for(self._stop.wait(), delay)

    def _reset_connection(self) -> None:
        self.connected = False
        self.session = {}
        self.recording = False
        self._vad_speech = False
        self._awaiting_reply = False
        self.output.interrupt(None)
        self._current = None
        self._audio_rid = None
        for reply in self._replies.values():
            reply.printed = True
        while not self._outbox.empty():
            self._outbox.get_nowait()

    async def _hold(self, conn: Connection) -> None:
        sender = asyncio.create_task(self._send_loop(conn))
        receiver = asyncio.create_task(self._recv_loop(conn))
        stopper = asyncio.create_task(self._stop.wait())
        try:
            done, _ = await asyncio.wait(
                {sender, receiver, stopper}, return_when=asyncio.FIRST_COMPLETED
            )
            for task in done:
                if task is not stopper:
                    task.result()  # re-raises ConnectError
        finally:
            for task in (sender, receiver, stopper):
                task.cancel()
            await asyncio.gather(sender, receiver, stopper, return_exceptions=True)

    async def _send_loop(self, conn: Connection) -> None:
        while True:
            message = await self._outbox.get()
            if isinstance(message, bytes):
                await conn.send_audio(message)
            else:
                await conn.send_event(message)

    async def _recv_loop(self, conn: Connection) -> None:
        while True:
            message = await conn.recv()
            if isinstance(message, bytes):
                self.handle_audio(message)
            else:
                self.handle_event(message)

    def _send(self, message: Message) -> None:
        self._outbox.put_nowait(message)

    # ------------------------------------------------------------------ server events

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
        if first and event.get("type") == "session.created":
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


_HANDLERS: dict[str, Callable[[Controller, Event], None]] = {
    "session.created": Controller._on_session,
    "session.updated": Controller._on_session,
    "input_audio_buffer.speech_started": Controller._on_speech_started,
    "input_audio_buffer.speech_stopped": Controller._on_speech_stopped,
    "input_audio_buffer.committed": Controller._on_committed,
    "conversation.item.input_audio_transcription.delta": Controller._on_transcript_delta,
    "conversation.item.input_audio_transcription.completed": Controller._on_transcript_done,
    "response.created": Controller._on_response_created,
    "response.text.delta": Controller._on_text_delta,
    "response.audio.started": Controller._on_audio_started,
    "response.audio.done": Controller._on_audio_done,
    "response.done": Controller._on_response_done,
    "conversation.item.truncated": Controller._on_truncated,
    "error": Controller._on_error,
}
