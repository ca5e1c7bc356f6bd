"""Keep a conversation's KV cache when its window start moves.

When a call outgrows the context, the prompt drops a block of its oldest turns
(:mod:`voice_chat.pipeline.prompting`): the persona stays, the newer history follows it.
Evaluated again, that history costs seconds on a CPU (about 1,100 tokens at 120 tokens/s
on two cores) and, with several sessions at the edge at once, the waits add up. Instead,
the dropped block is removed from the KV cache and the kept history is shifted back over
it (llama.cpp's ``seq_rm`` and ``seq_add``; RoPE keys are re-rotated on the next decode),
as llama.cpp's own server does for its context shift. The kept tokens keep what they
computed while the dropped turns were still in view: a close approximation, not the
exact result of evaluating the new prompt.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from voice_chat.engines.llm_cache import common_prefix

PROBE = 32  # tokens of the new prompt looked for in the old one, after the shared start
MIN_KEPT = 128  # shifting saves less than this: let the model evaluate


def shift_window(llm: Any, tokens: list[int]) -> int:
    """Make the cache match ``tokens`` as far as it can by cutting a block out of it.

    ``llm`` is a ``llama_cpp.Llama`` holding an earlier prompt of the same call. Returns
    the tokens kept past the shared start (0 when nothing was done).
    """
    n = llm.n_tokens
    old = np.array(llm.input_ids[:n])
    start = common_prefix(old, tokens)
    if n - start < MIN_KEPT or len(tokens) - start < MIN_KEPT:
        return 0
    probe = np.asarray(tokens[start : start + PROBE], dtype=old.dtype)
    candidates = np.nonzero(old[start + 1 : n - PROBE + 1] == probe[0])[0] + start + 1
    cut_end = next((int(c) for c in candidates if np.array_equal(old[c : c + PROBE], probe)), 0)
    if not cut_end:
        return 0
    kept = common_prefix(old[cut_end:], tokens[start:])
    if kept < MIN_KEPT:
        return 0
    import llama_cpp

    ctx = llm._ctx
    if ctx.memory is None or not llama_cpp.llama_memory_can_shift(ctx.memory):
        return 0
    if not ctx.kv_cache_seq_rm(0, start, cut_end):
        return 0
    ctx.kv_cache_seq_shift(0, cut_end, n, start - cut_end)
    kept_end = start + kept
    llm.input_ids[start:kept_end] = old[cut_end : cut_end + kept]
    ctx.kv_cache_seq_rm(0, kept_end, -1)  # what followed no longer matches the prompt
    llm.n_tokens = kept_end
    return kept
