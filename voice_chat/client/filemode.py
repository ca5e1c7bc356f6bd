"""Scripted mode: ``--input-file`` / ``--say`` turns, ``--output-file`` / ``--text`` results.

The input WAV (any rate/channels) becomes 16 kHz mono PCM16, sent at real-time pace in 20 ms
frames while the greeting plays, then committed once the greeting is over (so it is not cut).
Each ``--say`` text is sent after the previous reply. What is printed (``--text``) and written
(``--output-file``) are the replies to these turns; with no turn at all, the greeting.
Exit codes: 0 ok, 1 failed reply/server error/timeout, 2 cannot connect or connection lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

import numpy as np

from voice_chat.pipeline import events as ev

from . import connection as events
from .connection import ConnectError, Connection, Event
from .options import TalkOptions
from .pcm import MODEL_RATE, WavFormatError, WavWriter, float_to_pcm16, read_wav
from .replies import TURN_ENDING_ERRORS

FRAME_MS = 20
GREETING_GRACE_S = 3.0  # no response.created this long after session.created: no greeting


class ScriptError(Exception):
    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class Response:
    id: str
    text: str = ""
    status: str = ""
    done: bool = False
    rate: int = 0


class Script:
    def __init__(self, conn: Connection, opts: TalkOptions, out: TextIO) -> None:
        self.conn = conn
        self.opts = opts
        self.out = out
        self.writer = WavWriter(opts.output_file) if opts.output_file else None
        self.session: dict[str, object] = {}
        self.session_at = 0.0
        self.character_name = "character"
        self.responses: dict[str, Response] = {}
        self.greeting: Response | None = None
        self.turn_open = False  # a turn was sent and its reply has not been created yet
        self.reply: Response | None = None  # reply to the latest turn
        self.capture: set[str] = set()
        self.audio_rid: str | None = None
        self.turn_error: str | None = None
        self.committed = False
        self.vad_ended = False  # the server's VAD (or commit) closed the turn
        # with no turn of ours, the greeting is the reply that is printed and written
        self.capture_greeting = opts.input_file is None and not opts.say

    # ------------------------------------------------------------------ receiving

    async def receive(self) -> None:
        while True:
            message = await self.conn.recv()
            if isinstance(message, bytes):
                if self.writer is not None and self.audio_rid in self.capture:
                    resp = self.responses[self.audio_rid or ""]
                    self.writer.write(message, resp.rate)
            else:
                self.on_event(message)

    def on_event(self, event: Event) -> None:
        kind = event.get("type")
        if kind in (ev.SessionCreated.TYPE, ev.SessionUpdated.TYPE):
            session = event.get("session") or {}
            if not self.session:
                self.session_at = time.monotonic()
            self.session = session
            self.character_name = str(
                session.get("character_name") or session.get("character") or "character"
            )
        elif kind == ev.ResponseCreated.TYPE:
            resp = Response(str((event.get("response") or {}).get("id", "")))
            self.responses[resp.id] = resp
            if self.turn_open:
                self.turn_open = False
                self.reply = resp
                self.capture.add(resp.id)
            elif self.greeting is None and not self.committed:
                self.greeting = resp
                if self.capture_greeting:
                    self.capture.add(resp.id)
        elif kind == ev.TextDelta.TYPE:
            delta_for = self.responses.get(str(event.get("response_id", "")))
            if delta_for is not None:
                delta_for.text += str(event.get("delta", ""))
        elif kind == ev.AudioStarted.TYPE:
            rid = str(event.get("response_id", ""))
            self.audio_rid = rid
            if rid in self.responses:
                self.responses[rid].rate = int(event.get("sample_rate") or 22050)
        elif kind == ev.ResponseDone.TYPE:
            self._on_done(event.get("response") or {})
        elif kind in (ev.AudioCommitted.TYPE, ev.SpeechStopped.TYPE):
            self.vad_ended = True
        elif kind == ev.TranscriptCompleted.TYPE:
            transcript = str(event.get("transcript", "")).strip()
            self.say(f"you: {transcript}")
            if not transcript and self.turn_open:  # no reply comes to an empty turn
                self.turn_error = "no speech was recognised in the input"
        elif kind == ev.Error.TYPE:
            message = events.describe_error(event)
            print(message, file=sys.stderr)
            err = event.get("error")
            if isinstance(err, dict) and err.get("code") in TURN_ENDING_ERRORS and self.turn_open:
                self.turn_error = message

    def _on_done(self, response: dict[str, object]) -> None:
        resp = self.responses.setdefault(
            str(response.get("id", "")), Response(str(response.get("id", "")))
        )
        resp.done = True
        resp.status = str(response.get("status", ""))
        if isinstance(response.get("text"), str):
            resp.text = str(response["text"])
        if resp.id in self.capture:
            self.say(f"{self.character_name}: {resp.text.strip()}")

    def say(self, line: str) -> None:
        if self.opts.text:
            print(line, file=self.out, flush=True)

    # ------------------------------------------------------------------ the script

    async def wait_until(self, predicate: Callable[[], bool], poll: float = 0.03) -> None:
        while not predicate():
            if self.turn_error:
                raise ScriptError(self.turn_error)
            await asyncio.sleep(poll)

    def busy(self) -> bool:
        """A response (the greeting or a reply) is still being generated."""
        return any(not r.done for r in self.responses.values())

    def greeting_over(self) -> bool:
        if self.greeting is not None:
            return self.greeting.done
        if self.resumed:  # the server keeps this user's conversation: no greeting again
            return True
        return time.monotonic() - self.session_at > GREETING_GRACE_S

    @property
    def resumed(self) -> bool:
        conversation = self.session.get("conversation")
        return isinstance(conversation, dict) and bool(
            conversation.get("resumed") or conversation.get("turns")
        )

    async def run(self, audio: np.ndarray | None) -> int:
        await self.wait_until(lambda: bool(self.session))
        mode = "server_vad" if self.opts.vad else "manual"
        await self.conn.send_event(
            events.session_update(turn_detection=mode, input_rate=MODEL_RATE, user=self.opts.user)
        )
        if audio is None and not self.opts.say:
            await self.wait_until(self.greeting_over)
            if self.greeting is None:
                why = "the conversation was resumed" if self.resumed else "the character has none"
                print(f"voice-chat talk: no greeting ({why})", file=sys.stderr)
                return 0
            await self.wait_until(lambda: self.greeting is not None and self.greeting.done)
            return self._result(self.greeting)
        code = 0
        if audio is not None:
            await self._send_audio(audio)
            code = max(code, await self._await_reply())
        for text in self.opts.say:
            await self.wait_until(lambda: self.greeting_over() and not self.busy())
            self.say(f"you: {text}")
            self.turn_open = True
            await self.conn.send_event(events.text_message(text))
            code = max(code, await self._await_reply())
        return code

    async def _send_audio(self, audio: np.ndarray) -> None:
        if self.opts.vad:
            # hands-free: the server's VAD ends the turn. Speech over the greeting would
            # interrupt it, so wait for it first; a second of silence lets the VAD hear the end.
            await self.wait_until(self.greeting_over)
            self.turn_open = True
            await self._stream(np.concatenate([audio, np.zeros(MODEL_RATE, dtype=np.float32)]))
            deadline = time.monotonic() + 3.0
            await self.wait_until(
                lambda: self.reply is not None or self.vad_ended or time.monotonic() > deadline
            )
            if self.reply is not None or self.vad_ended:
                return
        else:
            await self._stream(audio)  # buffered by the server while the greeting plays
            await self.wait_until(self.greeting_over)
            self.turn_open = True
        self.committed = True
        await self.conn.send_event(events.commit())

    async def _stream(self, audio: np.ndarray) -> None:
        """Send at real-time pace in 20 ms frames."""
        frame = MODEL_RATE * FRAME_MS // 1000
        start = time.monotonic()
        for i, offset in enumerate(range(0, len(audio), frame)):
            await self.conn.send_audio(float_to_pcm16(audio[offset : offset + frame]))
            delay = start + (i + 1) * FRAME_MS / 1000 - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)

    async def _await_reply(self) -> int:
        await self.wait_until(
            lambda: self.reply is not None and self.reply.done and not self.turn_open
        )
        assert self.reply is not None
        return self._result(self.reply)

    def _result(self, resp: Response) -> int:
        if resp.status == "completed":
            return 0
        print(
            f"voice-chat talk: the reply ended with status {resp.status or 'unknown'}",
            file=sys.stderr,
        )
        return 1


async def run_scripted(opts: TalkOptions, log: TextIO | None, out: TextIO = sys.stdout) -> int:
    audio: np.ndarray | None = None
    if opts.input_file is not None:
        try:
            audio = read_wav(opts.input_file)
        except WavFormatError as exc:
            print(f"voice-chat talk: {exc}", file=sys.stderr)
            return 2
    mode = "server_vad" if opts.vad else "manual"
    try:
        url = events.build_url(opts.server, opts.character, opts.user, mode)
        conn = await Connection.open(url, open_timeout=5.0, log=log, api_key=opts.api_key)
    except ConnectError as exc:
        print(f"voice-chat talk: {exc}", file=sys.stderr)
        return 2
    script = Script(conn, opts, out)
    receiver = asyncio.create_task(script.receive())
    runner = asyncio.create_task(script.run(audio))
    try:
        done, _ = await asyncio.wait(
            {receiver, runner}, timeout=opts.timeout, return_when=asyncio.FIRST_COMPLETED
        )
        if not done:
            print(f"voice-chat talk: no reply within {opts.timeout:g}s", file=sys.stderr)
            return 1
        return runner.result() if runner in done else _receiver_failed(receiver)
    except ConnectError as exc:
        print(f"voice-chat talk: {exc}", file=sys.stderr)
        return 1 if not exc.retryable else 2
    except ScriptError as exc:
        print(f"voice-chat talk: {exc}", file=sys.stderr)
        return exc.code
    finally:
        for task in (receiver, runner):
            task.cancel()
        await asyncio.gather(receiver, runner, return_exceptions=True)
        if script.writer is not None:
            with contextlib.suppress(OSError):
                script.writer.close()
        await conn.close()


def _receiver_failed(receiver: asyncio.Task[None]) -> int:
    exc = receiver.exception()
    if exc is not None:
        raise exc
    return 1
