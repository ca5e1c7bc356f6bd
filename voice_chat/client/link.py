"""The interactive client's connection: connect, hold the session, reconnect with backoff.

:class:`Link` is the half of :class:`~voice_chat.client.controller.Controller` that owns the
websocket: one task sends the outbox (events and microphone audio), one receives and hands
each message to the event handlers; a lost connection resets the turn state and retries.
"""

from __future__ import annotations

import asyncio
import contextlib

from .connection import ConnectError, Connection, Message, backoff_delays
from .replies import ClientState


class Link(ClientState):
    """The connection loop: the outbox goes out, what arrives goes to the event handlers."""

    async def run(self) -> int:
        """Connect, hold the session, reconnect with backoff until ``stop()``. Returns exit code."""
        delays = backoff_delays()
        while not self._stop.is_set():
            self.notice = f"connecting to {self.url}"
            try:
                conn = await Connection.open(
                    self.url, open_timeout=5.0, log=self.log, api_key=self.api_key
                )
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
