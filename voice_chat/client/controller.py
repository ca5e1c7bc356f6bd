"""The conversation as the interactive client sees it, independent of the terminal UI.

Owns the connection (with reconnects, :mod:`.link`), the turn state shown to the user, the
reply audio sent to the speakers (:mod:`.replies`) and barge-in. The UI calls the user actions
(``start_recording``, ``stop_recording``, ``send_text``, ``interrupt``) and reads ``phase`` and
the live texts.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Any, TextIO

import numpy as np

from . import connection as events
from .connection import Message
from .link import Link
from .pcm import float_to_pcm16, level_dbfs
from .replies import Output, Phase, Reply, ServerEvents

__all__ = ["Controller", "Output", "Phase", "Reply"]

PREROLL_MS = 160  # audio from just before the key press, so the first syllable is not cut


class Controller(ServerEvents, Link):
    def __init__(
        self,
        url: str,
        output: Output,
        printer: Callable[[str], None],
        vad: bool = False,
        user: str | None = None,
        log: TextIO | None = None,
        api_key: str | None = None,
    ) -> None:
        self.url = url
        self.api_key = api_key
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
