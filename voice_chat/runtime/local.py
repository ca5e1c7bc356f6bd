"""Engines loaded once and shared by every session, with bounded worker pools."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import numpy as np
import structlog

from voice_chat.characters.registry import CharacterRegistry
from voice_chat.engines.base import ChatModel, EngineError, SpeechToText, Synthesizer
from voice_chat.engines.tts import build_synthesizer
from voice_chat.engines.voices import VoiceRegistry
from voice_chat.memory.conversations import ConversationMemory
from voice_chat.settings import Settings

log = structlog.get_logger(__name__)
T = TypeVar("T")


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

    return LlamaChat(
        settings.llm_model,
        cache_dir=settings.data / "cache",
        threads=settings.llm_threads,
        context=settings.llm_context,
    )


class Runtime:
    """Everything a session needs, shared: models, registries, worker pools."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.characters = CharacterRegistry(settings.characters_dir, settings.data / "characters")
        self.voices = VoiceRegistry(settings.voices_dir, settings.data / "voices")
        self.store = ConversationMemory(settings.database)  # opens in its own thread
        self.stt: SpeechToText | None = None
        self.llm: ChatModel | None = None
        self._synths: dict[str, Synthesizer] = {}
        self._synth_lock = threading.Lock()
        self._broken: set[str] = set()  # voices that failed to load
        self.stt_pool = ThreadPoolExecutor(settings.stt_workers, thread_name_prefix="stt")
        self.tts_pool = ThreadPoolExecutor(settings.tts_workers, thread_name_prefix="tts")
        self.ready = False
        self.load_error: str | None = None
        self.sessions = 0

    def load(self) -> None:
        """Load the models (blocking); called once at start-up in a thread."""
        log.info("loading models", stt=self.settings.stt_model, llm=self.settings.llm_model)
        self.stt = load_stt(self.settings)
        self.llm = load_llm(self.settings)
        self.synthesizer(self.settings.default_voice)
        for character in self.characters.list():  # shipped voices load once, up front
            self.voice_for(character.voice)
        log.info("models loaded")

    def synthesizer(self, voice_id: str) -> Synthesizer:
        """The synthesizer of a voice, built once and cached."""
        with self._synth_lock:
            synth = self._synths.get(voice_id)
            if synth is None:
                spec = self.voices.get(voice_id)
                synth = build_synthesizer(spec, self.voices.get, self.settings.tts_threads)
                self._synths[voice_id] = synth
            return synth

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

    async def prepare_voice(self, voice_id: str | None) -> str:
        return await self.run(self.tts_pool, lambda: self.voice_for(voice_id))

    def forget_voice(self, voice_id: str) -> None:
        with self._synth_lock:
            self._synths.pop(voice_id, None)
            self._broken.discard(voice_id)

    def llm_budget(self) -> int:
        """Prompt tokens available: the model's context less room for the reply."""
        context = getattr(self.llm, "context", self.settings.llm_context)
        return max(
            256, min(context, self.settings.llm_context) - self.settings.max_reply_tokens - 64
        )

    async def run(self, pool: ThreadPoolExecutor, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(pool, fn)

    async def transcribe(self, audio: np.ndarray) -> str:
        stt = self.stt
        if stt is None:
            raise EngineError("STT model not loaded")
        return await self.run(self.stt_pool, lambda: stt.transcribe(audio))

    async def warm_up(self) -> None:
        """Run each engine once so the first real turn does not pay first-call costs."""
        await self.transcribe(np.zeros(16000, dtype=np.float32))
        synth = self.synthesizer(self.settings.default_voice)
        await self.run(self.tts_pool, lambda: list(synth.synthesize("Hello.")))
