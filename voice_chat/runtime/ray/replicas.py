"""The engine deployments: one engine per replica, loaded once, warmed up, then called by handle.

Each class is a plain class; :mod:`.app` turns it into a Ray Serve deployment with its
resources, ``max_ongoing_requests`` and autoscaling (the Serve config YAML overrides them).
They take the server's settings as a JSON-ready dict, so a replica on another node builds the
same engine. CPU work runs on the replica's own worker threads, never on its event loop.
Streaming methods are async generators: when the caller cancels (a barge-in), Serve cancels
the generator and the engine stops at its next token or audio chunk.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import threading
import time
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import structlog

from voice_chat.engines.base import EngineError, GenerationOptions, Message, Synthesizer
from voice_chat.engines.tts import build_synthesizer
from voice_chat.engines.voices import VoiceError, VoiceRegistry
from voice_chat.runtime.local import SPEED_MARK, at_speed, load_llm, load_stt
from voice_chat.settings import Settings

log = structlog.get_logger(__name__)
_DONE = object()


def usage() -> dict[str, float]:
    """This replica process's CPU time so far (for the capacity benchmark)."""
    return {"pid": os.getpid(), "cpu_s": time.process_time()}


class Counts:
    """Streams started, finished and cancelled by the caller (for tests and operators)."""

    def __init__(self) -> None:
        self.started = self.finished = self.cancelled = self.failed = 0

    @contextlib.contextmanager
    def track(self) -> Iterator[None]:
        self.started += 1
        try:
            yield
        except (asyncio.CancelledError, GeneratorExit):
            self.cancelled += 1
            raise
        except Exception:
            self.failed += 1
            raise
        self.finished += 1

    def as_dict(self) -> dict[str, int]:
        return dict(vars(self))


class STT:
    """Speech-to-text: 16 kHz float32 audio in, text out."""

    def __init__(self, settings: dict[str, Any]) -> None:
        s = Settings(**settings)
        self.stt = load_stt(s)
        self._pool = ThreadPoolExecutor(s.stt_workers, thread_name_prefix="stt")
        self.stt.transcribe(np.zeros(16000, dtype=np.float32))  # first-call costs paid now

    def ready(self) -> str:
        return "ok"

    def usage(self) -> dict[str, float]:
        return usage()

    async def transcribe(self, audio: np.ndarray, retry: bool = True) -> str:
        loop = asyncio.get_running_loop()
        job = functools.partial(self.stt.transcribe, audio, retry=retry)
        return await loop.run_in_executor(self._pool, job)


class LLM:
    """The embedded chat model (an OpenAI-compatible server needs no deployment)."""

    def __init__(self, settings: dict[str, Any]) -> None:
        s = Settings(**settings)
        if s.llm_engine != "llama":
            raise EngineError("the LLM deployment runs the embedded model (llm_engine llama)")
        self.llm = load_llm(s)
        self.streams = Counts()

    def ready(self) -> str:
        return "ok"

    def usage(self) -> dict[str, float]:
        return usage()

    def stats(self) -> dict[str, int]:
        return self.streams.as_dict()

    def info(self) -> dict[str, Any]:
        return {"name": self.llm.name, "context": getattr(self.llm, "context", None)}

    async def generate(
        self, messages: list[Message], options: GenerationOptions
    ) -> AsyncIterator[str]:
        cancel = threading.Event()
        with self.streams.track():
            try:
                async for delta in self.llm.stream(messages, options, cancel):
                    yield delta
            finally:
                cancel.set()  # cancelled by the caller: the model stops at its next token

    async def prefill(self, messages: list[Message], background: bool = False) -> None:
        await self.llm.warm(messages, background=background)


class TTS:
    """Speech synthesis for every voice (shipped ones and those in the shared folder)."""

    def __init__(self, settings: dict[str, Any]) -> None:
        self.settings = s = Settings(**settings)
        self.voices = VoiceRegistry(s.voices_dir, s.shared / "voices")
        self._synths: dict[str, tuple[tuple[object, ...], Synthesizer]] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(s.tts_workers, thread_name_prefix="tts")
        self.streams = Counts()
        list(self.synthesizer(s.default_voice).synthesize("Hello."))  # loaded and warm

    def ready(self) -> str:
        return "ok"

    def usage(self) -> dict[str, float]:
        return usage()

    def stats(self) -> dict[str, int]:
        return self.streams.as_dict()

    def _stamp(self, voice_id: str) -> tuple[object, ...]:
        """Changes when the voice is registered again, replaced or removed (on any server)."""
        path = self.voices.path(voice_id)
        if path is None:
            self.voices.refresh()
            path = self.voices.path(voice_id)
        if path is None:
            raise VoiceError("unknown_voice", f"no voice {voice_id!r}")
        st = path.stat()
        return (str(path), st.st_ino, st.st_mtime_ns, st.st_size)

    def synthesizer(self, voice_id: str) -> Synthesizer:
        """Built once per version of the voice (blocking: call it on the worker threads).

        ``voice_id`` may name a speed (``<voice>@speed=<factor>``, see ``at_speed``).
        """
        base, mark, factor = voice_id.partition(SPEED_MARK)
        stamp = self._stamp(base)
        with self._lock:
            cached = self._synths.get(voice_id)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        spec = self.voices.get(base)
        if mark:  # the same voice, faster or slower
            spec = spec.model_copy(update={"speed": spec.speed * float(factor)})
        synth = build_synthesizer(spec, self.voices.get, self.settings.tts_threads)
        with self._lock:
            self._synths[voice_id] = (stamp, synth)
        return synth

    def _resolve(self, voice_id: str | None, speed: float) -> tuple[str, int]:
        chosen = self.settings.default_voice
        if voice_id:
            try:
                self.synthesizer(voice_id)
                chosen = voice_id
            except Exception as exc:  # noqa: BLE001 - a broken voice must not break the call
                log.warning("voice unavailable, using default", voice=voice_id, error=str(exc))
        chosen = at_speed(chosen, speed)
        return chosen, self.synthesizer(chosen).sample_rate

    async def prepare(self, voice_id: str | None, speed: float = 1.0) -> tuple[str, int]:
        """The voice to use (the one asked for if it loads, else the default, at ``speed``)
        and its sample rate."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._resolve, voice_id, speed)

    async def sample_rate(self, voice_id: str) -> int:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._pool, lambda: self.synthesizer(voice_id).sample_rate
        )

    async def synthesize(self, voice_id: str, text: str) -> AsyncIterator[np.ndarray]:
        """Float32 chunks as the engine produces them; stops between chunks when cancelled."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[object] = asyncio.Queue()
        stop = threading.Event()

        def put(item: object) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, item)

        def run() -> None:
            try:
                for chunk in self.synthesizer(voice_id).synthesize(text):
                    if stop.is_set():
                        break
                    put(np.asarray(chunk, dtype=np.float32))
            except Exception as exc:  # noqa: BLE001 - re-raised on the event loop
                put(exc)
            finally:
                put(_DONE)

        loop.run_in_executor(self._pool, run)
        with self.streams.track():
            try:
                while (item := await queue.get()) is not _DONE:
                    if isinstance(item, Exception):
                        raise EngineError(f"speech synthesis failed: {item}") from item
                    yield item  # type: ignore[misc]
            finally:
                stop.set()
