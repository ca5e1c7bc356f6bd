"""Engines loaded once and shared by every session, with bounded worker pools."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

import numpy as np
import structlog

from voice_chat.audio.aec import make_canceller
from voice_chat.audio.pcm import MODEL_RATE
from voice_chat.audio.vad import StreamingVAD
from voice_chat.characters.registry import CharacterRegistry
from voice_chat.engines.base import (
    ChatModel,
    EngineError,
    GenerationOptions,
    Message,
    SpeechToText,
    Synthesizer,
    TurnAnalyzer,
)
from voice_chat.engines.tts import build_synthesizer
from voice_chat.engines.voices import VoiceRegistry
from voice_chat.memory.conversations import ConversationMemory
from voice_chat.settings import Settings

log = structlog.get_logger(__name__)
T = TypeVar("T")
#: a voice spoken at another speed: ``<voice id>@speed=<factor>`` (a session's speech speed)
SPEED_MARK = "@speed="
MIN_SPEED, MAX_SPEED = 0.5, 2.0


def at_speed(voice_id: str, speed: float) -> str:
    """The id of ``voice_id`` spoken ``speed`` times as fast (the voice itself at 1.0)."""
    speed = round(min(MAX_SPEED, max(MIN_SPEED, speed)), 2)
    return voice_id if speed == 1.0 else f"{voice_id}{SPEED_MARK}{speed:.2f}"


def load_stt(settings: Settings) -> SpeechToText:
    from voice_chat.engines.stt_whisper import WhisperSTT

    return WhisperSTT(
        settings.stt_model,
        cache_dir=settings.data / "cache",
        device=settings.stt_device,
        compute_type=settings.stt_compute_type,
        threads=settings.stt_threads,
        beam_size=settings.stt_beam_size,
        window_s=settings.stt_window_s,
        language=settings.stt_language,
    )


def load_llm(settings: Settings) -> ChatModel:
    if settings.llm_engine == "openai":
        from voice_chat.engines.llm_openai import OpenAIChat

        return OpenAIChat(
            base_url=settings.llm_base_url,
            model=settings.llm_model,
            api_key=settings.llm_api_key,
            timeout_s=settings.llm_timeout_s,
        )
    from voice_chat.engines.llm_llama import LlamaChat

    return LlamaChat(  # the preset's (or the given) GGUF, memory-mapped
        settings.llm_model,
        cache_dir=settings.data / "cache",
        threads=settings.llm_threads,
        context=settings.llm_context,
        cache_bytes=settings.llm_cache_mb << 20,
    )


class Runtime:
    """Everything a session needs, shared: models, registries, worker pools.

    It implements the pipeline's :class:`~voice_chat.pipeline.ports.Engines` port in this
    process. Lifecycle: construct, :meth:`load` (blocking, in a thread), :meth:`warm_up`,
    serve, then :meth:`close`.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.characters = CharacterRegistry(settings.characters_dir, settings.shared / "characters")
        self.voices = VoiceRegistry(settings.voices_dir, settings.shared / "voices")
        self.store = ConversationMemory(settings.database)  # opens in its own thread
        self.stt: SpeechToText | None = None
        self.llm: ChatModel | None = None
        self.turn_analyzer: TurnAnalyzer | None = None
        # One future per voice: the lock guards only the dict, never a model load, so a
        # lookup of a cached voice never waits for another voice being built.
        self._synths: dict[str, Future[Synthesizer]] = {}
        self._synth_lock = threading.Lock()
        self._broken: set[str] = set()  # voices that failed to load
        self.stt_pool = ThreadPoolExecutor(settings.stt_workers, thread_name_prefix="stt")
        self.tts_pool = ThreadPoolExecutor(settings.tts_workers, thread_name_prefix="tts")
        self.listen_pool = ThreadPoolExecutor(1, thread_name_prefix="listen")  # VAD, turns
        self.ready = False
        self.load_error: str | None = None
        self.sessions = 0
        self._stt_jobs = 0  # transcriptions in flight (a live transcript waits for none)

    def load(self) -> None:
        """Load the models (blocking); called once at start-up in a thread."""
        log.info("loading models", stt=self.settings.stt_model, llm=self.settings.llm_model)
        self.stt = load_stt(self.settings)
        self.llm = load_llm(self.settings)
        StreamingVAD()  # the shared VAD session loads now, not in the first call
        if self.settings.echo_guard and self.settings.echo_cancel:
            make_canceller()  # the native echo canceller loads now, not in a session
        if self.settings.smart_turn:
            from voice_chat.engines.turn_smart import SmartTurn

            self.turn_analyzer = SmartTurn(threads=1)
        self.synthesizer(self.settings.default_voice)
        for character in self.characters.list():  # shipped voices load once, up front
            self.voice_for(character.voice)
        log.info("models loaded")

    # --- voices (blocking: call these in a worker thread)
    def synthesizer(self, voice_id: str) -> Synthesizer:
        """The synthesizer of a voice, built once and cached (blocks while it is built)."""
        with self._synth_lock:
            future = self._synths.get(voice_id)
            building = future is None
            if future is None:
                future = self._synths[voice_id] = Future()
        if building:
            try:
                base, mark, factor = voice_id.partition(SPEED_MARK)
                spec = self.voices.get(base)
                if mark:  # the same voice, faster or slower
                    spec = spec.model_copy(update={"speed": spec.speed * float(factor)})
                threads = self.settings.tts_threads
                future.set_result(build_synthesizer(spec, self.voices.get, threads))
            except BaseException as exc:
                with self._synth_lock:
                    if self._synths.get(voice_id) is future:
                        del self._synths[voice_id]
                future.set_exception(exc)
                raise
        return future.result()

    def voice_for(self, voice_id: str | None) -> str:
        """The voice to use: the one asked for if it loads, else the default (logged)."""
        if not voice_id or voice_id in self._broken:
            return self.settings.default_voice
        try:
            self.synthesizer(voice_id)
            return voice_id
        except Exception as exc:  # noqa: BLE001 - a broken voice must not break the call
            log.warning("voice unavailable, using default", voice=voice_id, error=str(exc))
            self._broken.add(voice_id)  # not tried again until the voice changes
            return self.settings.default_voice

    async def prepare_voice(self, voice_id: str | None, speed: float = 1.0) -> tuple[str, int]:
        """Resolve a character's voice once, off the event loop: (voice id, its sample rate).

        With a ``speed`` other than 1, the id is that of the voice at that speed.
        """

        def resolve() -> tuple[str, int]:
            chosen = at_speed(self.voice_for(voice_id), speed)
            return chosen, self.synthesizer(chosen).sample_rate

        return await self.run(self.tts_pool, resolve)

    def forget_voice(self, voice_id: str) -> None:
        """A voice was registered, replaced or removed: list again, rebuild on next use."""
        self.voices.refresh()
        with self._synth_lock:
            for cached in [k for k in self._synths if k.partition(SPEED_MARK)[0] == voice_id]:
                self._synths.pop(cached, None)
            self._broken.discard(voice_id)

    async def run(self, pool: ThreadPoolExecutor, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(pool, fn)

    # --- the Engines port
    async def transcribe(self, audio: np.ndarray) -> str:
        return await self._transcribe(audio, retry=True)

    async def _transcribe(self, audio: np.ndarray, *, retry: bool) -> str:
        stt = self.stt
        if stt is None:
            raise EngineError("STT model not loaded")
        self._stt_jobs += 1
        queued = time.monotonic()

        def job() -> str:
            started = time.monotonic()
            text = stt.transcribe(audio, retry=retry)
            log.debug(
                "stt",
                audio_s=round(len(audio) / MODEL_RATE, 2),
                waited_ms=round((started - queued) * 1000),
                ran_ms=round((time.monotonic() - started) * 1000),
            )
            return text

        try:
            return await self.run(self.stt_pool, job)
        finally:
            self._stt_jobs -= 1

    async def transcribe_partial(self, audio: np.ndarray) -> str | None:
        """A live transcript, only when no other transcription runs or waits."""
        if not self.settings.live_transcripts or self._stt_jobs:
            return None
        self._stt_jobs += 1  # counted here too: a subclass's transcribe may not count
        try:
            # never the second, 30 s decode of a loop: a live transcript is only a preview,
            # and the turn's own transcription would wait behind it (0.64 s for 0.5 s of audio)
            return await self._transcribe(audio, retry=False)
        finally:
            self._stt_jobs -= 1

    def generate(
        self, messages: list[Message], options: GenerationOptions, cancel: threading.Event
    ) -> AsyncIterator[str]:
        if self.llm is None:
            raise EngineError("LLM not loaded")
        return self.llm.stream(messages, options, cancel)

    async def prefill(self, messages: list[Message], *, background: bool = False) -> None:
        """``background``: a start-up warm that yields to every session's own."""
        if self.llm is not None:
            await self.llm.warm(messages, background=background)

    def count_tokens(self, text: str) -> int:
        if self.llm is None:
            return len(text) // 4 + 1
        return self.llm.count_tokens(text)

    def count_prompt(self, messages: list[Message]) -> int:
        llm = self.llm
        if llm is None or not hasattr(llm, "count_prompt"):
            return sum(self.count_tokens(m["content"]) + 6 for m in messages) + 4
        return int(llm.count_prompt(messages))

    def prompt_budget(self, max_reply_tokens: int) -> int:
        """Prompt tokens available: the model's context less room for the whole reply.

        The prompt is counted exactly (``count_prompt``), so the margin only covers the
        reply's first token being sampled after the last prompt token.
        """
        context = getattr(self.llm, "context", self.settings.llm_context)
        return min(context, self.settings.llm_context) - max_reply_tokens - 8

    async def sample_rate(self, voice_id: str) -> int:
        return await self.run(self.tts_pool, lambda: self.synthesizer(voice_id).sample_rate)

    async def synthesize(self, voice_id: str, text: str) -> np.ndarray:
        def speak() -> np.ndarray:
            parts = list(self.synthesizer(voice_id).synthesize(text))
            return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)

        return await self.run(self.tts_pool, speak)

    async def analyse(self, job: Callable[[], T]) -> T:
        return await self.run(self.listen_pool, job)

    async def turn_probability(self, audio: np.ndarray) -> float | None:
        analyzer = self.turn_analyzer
        if analyzer is None:
            return None
        return await self.run(self.listen_pool, lambda: analyzer.probability(audio))

    # --- lifecycle
    async def warm_up(self) -> None:
        """Run each engine once so the first real turn does not pay first-call costs."""
        second = np.zeros(MODEL_RATE, dtype=np.float32)
        await self.transcribe(second)
        await self.turn_probability(second)
        await self.synthesize(self.settings.default_voice, "Hello.")

    async def close(self) -> None:
        """Stop the worker pools, close the LLM client and the conversation store."""
        closer = getattr(self.llm, "aclose", None)
        if closer is not None:
            try:
                await closer()
            except Exception as exc:  # noqa: BLE001 - shutting down: log and go on
                log.warning("closing the LLM client failed", error=str(exc))
        for pool in (self.stt_pool, self.tts_pool, self.listen_pool):
            pool.shutdown(wait=False, cancel_futures=True)
        await asyncio.to_thread(self.store.close)
