"""A small scripted realtime client: tests, benchmarks and integrations drive the server with it.

async with RealtimeClient.connect("ws://127.0.0.1:8000", character="nova") as rt:
    await rt.wait_for("response.done")          # the greeting
    await rt.send_speech(audio_16k)             # real-time pace, then trailing silence
    done = await rt.wait_for("response.done")
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import websockets

from voice_chat.audio.pcm import MODEL_RATE, float_to_pcm16
from voice_chat.client.connection import Connection, build_url
from voice_chat.pipeline.events import SERVER_EVENT_TYPES


@dataclass
class Received:
    t: float  # monotonic time of arrival
    event: dict[str, Any] | None = None
    audio: bytes | None = None


@dataclass
class RealtimeClient:
    ws: Any
    log: list[Received] = field(default_factory=list)
    _cursor: int = 0
    _new: asyncio.Event = field(default_factory=asyncio.Event)
    _reader: asyncio.Task[None] | None = None
    closed: bool = False
    close_code: int | None = None
    close_reason: str = ""

    @classmethod
    @asynccontextmanager
    async def connect(
        cls, server: str, *, headers: dict[str, str] | None = None, **params: str | int
    ) -> AsyncIterator[RealtimeClient]:
        """``headers``: e.g. ``{"Authorization": "Bearer <key>"}`` for a server with auth on.

        Connects as the terminal client does (:mod:`voice_chat.client.connection`): the same
        URL rules and the same readable :class:`ConnectError` when it cannot.
        """
        url = build_url(server, **params)
        conn = await Connection.open(url, open_timeout=30, headers=headers, max_size=None)
        client = cls(conn.websocket)
        client._reader = asyncio.create_task(client._read())
        try:
            yield client
        finally:
            client._reader.cancel()
            await conn.close()

    async def _read(self) -> None:
        try:
            async for msg in self.ws:
                now = time.monotonic()
                if isinstance(msg, bytes):
                    self.log.append(Received(now, audio=msg))
                else:
                    self.log.append(Received(now, event=json.loads(msg)))
                self._new.set()
        except websockets.ConnectionClosed as exc:
            self.close_code = exc.rcvd.code if exc.rcvd else None
            self.close_reason = exc.rcvd.reason if exc.rcvd else ""
        finally:
            self.closed = True
            self._new.set()

    async def send(self, event: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(event))

    async def send_audio(self, pcm: bytes) -> None:
        await self.ws.send(pcm)

    async def send_speech(
        self, audio: np.ndarray, *, rate: int = MODEL_RATE, frame_ms: int = 20, tail_s: float = 1.0
    ) -> float:
        """Stream audio at real-time pace, then ``tail_s`` of silence.

        Returns the monotonic time at which the speech audio ended (the end of speech).
        """
        step = rate * frame_ms // 1000
        start = time.monotonic()
        padded = np.concatenate([audio, np.zeros(int(tail_s * rate), dtype=np.float32)])
        end_of_speech = 0.0
        for i in range(0, len(padded), step):
            due = start + i / rate
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            if i >= len(audio) and not end_of_speech:
                end_of_speech = time.monotonic()
            await self.ws.send(float_to_pcm16(padded[i : i + step]))
        return end_of_speech or time.monotonic()

    def events(self, kind: str | None = None) -> list[dict[str, Any]]:
        if kind is not None:
            _known(kind)
        return [r.event for r in self.log if r.event and (kind is None or r.event["type"] == kind)]

    def mark(self) -> int:
        """A cursor: :meth:`wait_for` only looks at messages after it."""
        self._cursor = len(self.log)
        return self._cursor

    async def wait_for(
        self, kind: str, timeout: float = 60.0, since: int | None = None, **match: Any
    ) -> Received:
        """The first event of ``kind`` after the cursor (matching ``match`` on response ids)."""
        _known(kind)
        pos = self._cursor if since is None else since
        deadline = time.monotonic() + timeout
        while True:
            for i in range(pos, len(self.log)):
                ev = self.log[i].event
                if ev and ev["type"] == kind and all(_get(ev, k) == v for k, v in match.items()):
                    self._cursor = i + 1
                    return self.log[i]
            pos = len(self.log)
            if self.closed:
                raise ConnectionError(f"socket closed while waiting for {kind}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no {kind} within {timeout} s")
            self._new.clear()
            try:
                await asyncio.wait_for(self._new.wait(), remaining)
            except TimeoutError:
                pass

    def audio_between(self, start: int, end: int | None = None) -> bytes:
        return b"".join(r.audio for r in self.log[start:end] if r.audio is not None)


def _known(kind: str) -> None:
    """Event names come from one place: a misspelt one fails the test instead of timing out."""
    if kind not in SERVER_EVENT_TYPES:
        raise ValueError(f"{kind!r} is not a server event of voice_chat.pipeline.events")


def _get(event: dict[str, Any], key: str) -> Any:
    if key == "response_id":
        return event.get("response_id") or (event.get("response") or {}).get("id")
    if key == "status":
        return (event.get("response") or {}).get("status")
    return event.get(key)
