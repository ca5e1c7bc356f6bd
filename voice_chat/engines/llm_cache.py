"""A RAM cache of llama.cpp states, bounded by what the states really take.

llama-cpp-python's ``LlamaRAMCache`` counts only the llama state (the KV cache) of each entry,
but every ``LlamaState`` also holds a copy of the logits buffer (``scores``: up to ``n_batch``
rows of ``n_vocab`` floats, 311 MB for a 152k-token vocabulary) and of the token ids. A cache
"capped" at 256 MiB therefore held gigabytes. Here a state keeps one logits row (sampling runs
inside llama.cpp's sampler; the row only satisfies ``Llama.load_state``), and its size is
counted as everything it holds. States are saved only when the model is about to leave a
prompt for another one (another character or conversation), not after every reply.
"""

from __future__ import annotations

import ctypes
from collections import OrderedDict
from typing import Any

import numpy as np

SUPERSEDED_TAIL = 96  # tokens at the end of a state that may differ (a reply's raw tokens)


def state_bytes(state: Any) -> int:
    """The memory a ``LlamaState`` really holds."""
    return int(state.llama_state_size) + int(state.scores.nbytes) + int(state.input_ids.nbytes)


def save_state(llm: Any) -> Any:
    """``Llama.save_state`` without the copy of the logits buffer."""
    import llama_cpp
    from llama_cpp.llama import LlamaState

    ctx = llm._ctx.ctx
    size = llama_cpp.llama_state_get_size(ctx)
    buffer = (ctypes.c_uint8 * int(size))()
    written = int(llama_cpp.llama_state_get_data(ctx, buffer, size))
    if written > int(size):
        raise RuntimeError("could not copy the llama state")
    n = llm.n_tokens
    return LlamaState(
        input_ids=llm.input_ids.copy(),  # all n_ctx slots: Llama keeps writing into it
        scores=np.zeros((1, llm.n_vocab()), dtype=np.single),
        n_tokens=n,
        llama_state=bytes(memoryview(buffer)[:written]),
        llama_state_size=written,
        seed=llm._seed,
    )


def common_prefix(a: Any, b: list[int]) -> int:
    n = min(len(a), len(b))
    if n == 0:
        return 0
    diff = np.nonzero(np.asarray(a[:n]) != np.asarray(b[:n], dtype=np.intc))[0]
    return int(diff[0]) if len(diff) else n


def _superseded(old: tuple[int, ...], new: tuple[int, ...]) -> bool:
    """``old`` is an earlier point of the conversation ``new`` continues."""
    if len(old) > len(new):
        return False
    shared = common_prefix(np.asarray(old, dtype=np.intc), list(new[: len(old)]))
    return shared >= len(old) - SUPERSEDED_TAIL


class StateCache:
    """LRU of states keyed by their tokens, never over ``capacity_bytes`` in total."""

    def __init__(self, capacity_bytes: int) -> None:
        self.capacity_bytes = capacity_bytes
        self._states: OrderedDict[tuple[int, ...], Any] = OrderedDict()
        self.size_bytes = 0

    def __len__(self) -> int:
        return len(self._states)

    def put(self, state: Any) -> None:
        size = state_bytes(state)
        if size > self.capacity_bytes:
            return
        key = tuple(state.input_ids[: state.n_tokens].tolist())
        # The same conversation a turn ago (it shares all but its own last few tokens with
        # this one: the reply as generated, before it was stored and templated) serves no
        # prompt better than this state. Drop it, so each conversation keeps one state and
        # four sessions' states fit together instead of evicting each other in turn.
        for old_key in [k for k in self._states if _superseded(k, key)]:
            self.size_bytes -= state_bytes(self._states.pop(old_key))
        self._states[key] = state
        self.size_bytes += size
        while self.size_bytes > self.capacity_bytes:
            _, evicted = self._states.popitem(last=False)
            self.size_bytes -= state_bytes(evicted)

    def best(self, tokens: list[int]) -> tuple[Any, int]:
        """The cached state sharing the longest prefix with ``tokens`` (None, 0 if none)."""
        best, best_len = None, 0
        for state in self._states.values():
            n = common_prefix(state.input_ids[: state.n_tokens], tokens)
            if n > best_len:
                best, best_len = state, n
        if best is not None:
            self._states.move_to_end(tuple(best.input_ids[: best.n_tokens].tolist()))
        return best, best_len
