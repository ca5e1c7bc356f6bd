"""The pipeline's ``Engines`` port over Ray Serve deployment handles.

:class:`RayRuntime` is the local :class:`~voice_chat.runtime.local.Runtime` (registries,
conversation store, listening pool, lifecycle) with the engines swapped for remote calls:

* ``transcribe`` is one call to the STT deployment;
* ``generate`` streams tokens from the LLM deployment (or, with ``llm_engine=openai``, from an
  OpenAI-compatible server such as vLLM, straight from the ingress); setting the reply's
  cancel event cancels the remote generator within 50 ms;
* ``synthesize`` streams audio chunks from the TTS deployment; cancelling the awaiting task (a
  barge-in) cancels the remote call.

Token counting for prompt fitting stays local: a vocabulary-only copy of the GGUF's tokenizer
(no weights). A replica that dies mid-call raises here, so the reply fails cleanly
(``response.done`` ``failed`` plus an ``error`` event) and the next call goes to a live or
replacement replica.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import structlog

from voice_chat.audio.vad import StreamingVAD
from voice_chat.engines.base import EngineError, GenerationOptions, Message
from voice_chat.runtime.local import Runtime, load_llm
from voice_chat.runtime.ray.status import APP_NAME, deployment_problem
from voice_chat.settings import Settings

log = structlog.get_logger(__name__)
START_TIMEOUT_S = 600.0
CANCEL_POLL_S = 0.05


class RayRuntime(Runtime):
    """The ingress replica's runtime: local registries and store, remote engines."""

    def __init__(self, settings: Settings, stt: Any, llm: Any | None, tts: Any) -> None:
        super().__init__(settings)
        self.stt_handle, self.llm_handle, self.tts_handle = stt, llm, tts
        self._tokenizer: Any = None
        self._context = settings.llm_context

    # --- lifecycle (load runs in a thread)
    def load(self) -> None:
        from ray import serve

        log.info("waiting for the engine deployments")
        app_name = serve.get_replica_context().app_name or APP_NAME
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            problem = deployment_problem(app_name)
            if problem is None:
                break
            if not problem.startswith("waiting") or time.monotonic() > deadline:
                raise EngineError(problem)
            time.sleep(1.0)
        for handle in (self.stt_handle, self.llm_handle, self.tts_handle):
            if handle is not None:
                handle.ready.remote().result(timeout_s=120)
        if self.llm_handle is None:
            self.llm = load_llm(self.settings)  # an HTTP client of an OpenAI-compatible server
        else:
            info = self.llm_handle.info.remote().result(timeout_s=60)
            self._context = int(info.get("context") or self.settings.llm_context)
            self._tokenizer = _vocab_only(self.settings)
        StreamingVAD()  # listening stays in the ingress: it is per-session and cheap
        if self.settings.smart_turn:
            from voice_chat.engines.turn_smart import SmartTurn

            self.turn_analyzer = SmartTurn(threads=1)
        log.info("engine deployments ready")

    async def warm_up(self) -> None:
        await self.transcribe(np.zeros(16000, dtype=np.float32))
        await self.turn_probability(np.zeros(16000, dtype=np.float32))
        await self.synthesize(self.settings.default_voice, "Hello.")

    # --- voices
    async def prepare_voice(self, voice_id: str | None, speed: float = 1.0) -> tuple[str, int]:
        chosen, rate = await self.tts_handle.prepare.remote(voice_id, speed)
        return str(chosen), int(rate)

    def forget_voice(self, voice_id: str) -> None:
        self.voices.refresh()  # TTS replicas see the new version of the file by themselves

    # --- the Engines port
    async def _transcribe(self, audio: np.ndarray, *, retry: bool) -> str:
        return str(await self.stt_handle.transcribe.remote(audio, retry))

    def generate(
        self, messages: list[Message], options: GenerationOptions, cancel: threading.Event
    ) -> AsyncIterator[str]:
        if self.llm_handle is None:
            return super().generate(messages, options, cancel)
        return self._remote_tokens(messages, options, cancel)

    async def _remote_tokens(
        self, messages: list[Message], options: GenerationOptions, cancel: threading.Event
    ) -> AsyncIterator[str]:
        stream = self.llm_handle.options(stream=True).generate.remote(messages, options)
        tokens = stream.__aiter__()
        try:
            while not cancel.is_set():
                step = asyncio.ensure_future(tokens.__anext__())
                while not step.done():
                    await asyncio.wait({step}, timeout=CANCEL_POLL_S)
                    if cancel.is_set():
                        step.cancel()
                        return
                try:
                    delta = step.result()
                except StopAsyncIteration:
                    return
                yield str(delta)
        finally:
            stream.cancel()  # finished, barge-in, or the reply was dropped: stop the replica

    async def prefill(self, messages: list[Message], *, background: bool = False) -> None:
        if self.llm_handle is None:
            await super().prefill(messages, background=background)
        else:
            await self.llm_handle.prefill.remote(messages, background)

    def count_tokens(self, text: str) -> int:
        if self._tokenizer is not None:
            return len(self._tokenizer.tokenize(text.encode("utf-8"), add_bos=False, special=True))
        return super().count_tokens(text)

    def prompt_budget(self, max_reply_tokens: int) -> int:
        if self.llm_handle is None:
            return super().prompt_budget(max_reply_tokens)
        return max(256, min(self._context, self.settings.llm_context) - max_reply_tokens - 64)

    async def sample_rate(self, voice_id: str) -> int:
        return int(await self.tts_handle.sample_rate.remote(voice_id))

    async def synthesize(self, voice_id: str, text: str) -> np.ndarray:
        stream = self.tts_handle.options(stream=True).synthesize.remote(voice_id, text)
        parts: list[np.ndarray] = []
        try:
            async for chunk in stream:
                parts.append(chunk)
        finally:
            stream.cancel()  # a barge-in cancelled us: the replica stops between chunks
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)


def _vocab_only(settings: Settings) -> Any:
    """The GGUF's tokenizer without its weights (for prompt fitting in the ingress)."""
    from llama_cpp import Llama

    from voice_chat.engines.llm_llama import resolve_gguf

    path = resolve_gguf(settings.llm_model, settings.data / "cache")
    return Llama(model_path=str(path), vocab_only=True, verbose=False)
