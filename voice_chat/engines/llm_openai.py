"""Chat model behind any OpenAI-compatible ``/chat/completions`` server, streamed (SSE).

Works with vLLM, Ollama, llama.cpp's server, llama-cpp-python's server and hosted APIs.
"""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncIterator

import httpx

from voice_chat.engines.base import EngineError, GenerationOptions, Message


class OpenAIChat:
    def __init__(
        self, *, base_url: str, model: str, api_key: str | None = None, timeout_s: float = 60.0
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers=headers,
            timeout=httpx.Timeout(timeout_s, connect=5.0),
        )
        self.name = model
        self._model = model
        self.context = 8192

    def count_tokens(self, text: str) -> int:
        # No tokenizer for a remote model: about four characters a token in English.
        return max(1, len(text) // 4)

    def count_prompt(self, messages: list[Message]) -> int:
        # An estimate with a margin: about four tokens of template per message.
        return sum(self.count_tokens(m["content"]) + 6 for m in messages) + 4

    async def warm(self, messages: list[Message], *, background: bool = False) -> None:
        return None

    async def check(self) -> None:
        """Fail early, with a clear message, when the server is not reachable."""
        try:
            response = await self._client.get("/models")
        except httpx.HTTPError as exc:
            raise EngineError(
                f"cannot reach the OpenAI-compatible server at {self._client.base_url}: {exc}"
            ) from exc
        if response.status_code >= 500:
            raise EngineError(f"LLM server answered {response.status_code} on /models")

    async def stream(
        self, messages: list[Message], options: GenerationOptions, cancel: threading.Event
    ) -> AsyncIterator[str]:
        body: dict[str, object] = {
            "model": self._model,
            "messages": messages,
            "max_tokens": options.max_tokens,
            "temperature": options.temperature,
            "stream": True,
        }
        if options.stop:
            body["stop"] = list(options.stop)
        try:
            async with self._client.stream("POST", "/chat/completions", json=body) as response:
                if response.status_code != 200:
                    detail = (await response.aread()).decode("utf-8", "replace")[:300]
                    raise EngineError(f"LLM server answered {response.status_code}: {detail}")
                async for line in response.aiter_lines():
                    if cancel.is_set():
                        break
                    delta = _parse_sse_line(line)
                    if delta is _END:
                        break
                    if delta:
                        yield str(delta)
        except httpx.HTTPError as exc:
            raise EngineError(f"LLM server request failed: {exc}") from exc

    async def aclose(self) -> None:
        await self._client.aclose()


_END = object()


def _parse_sse_line(line: str) -> object:
    if not line.startswith("data:"):
        return None
    data = line[5:].strip()
    if data == "[DONE]":
        return _END
    try:
        event = json.loads(data)
        choice = event["choices"][0]
    except (ValueError, KeyError, IndexError, TypeError):
        return None
    return (choice.get("delta") or {}).get("content")
