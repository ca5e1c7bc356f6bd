"""The conversation-item events of a GA session: create, delete and truncate.

Typed and spoken user items, assistant items and system items enter the pipeline's
conversation as turns (system items as added instructions); each is announced with
``conversation.item.added`` and ``.done``.
"""

from __future__ import annotations

import numpy as np

from voice_chat.audio.pcm import MODEL_RATE, pcm16_to_float, resample
from voice_chat.pipeline.pipeline import Pipeline
from voice_chat.runtime.local import Runtime
from voice_chat.server.ga import client_events as ce
from voice_chat.server.ga.client_events import GAError, no_item
from voice_chat.server.ga.encoder import GAEncoder
from voice_chat.server.ga.items import (
    Items,
    assistant_item,
    item_text,
    new_id,
    system_item,
    user_item,
)
from voice_chat.server.ga.state import GAState


class ItemEvents:
    """Mixed into :class:`~voice_chat.server.ga.session.GASession`, which provides these:"""

    runtime: Runtime
    pipeline: Pipeline
    state: GAState
    items: Items
    encoder: GAEncoder
    system_notes: dict[str, str]

    def _apply(self) -> None: ...

    def _decode(self, audio: str, param: str, event_id: str | None) -> bytes: ...

    async def _create_item(self, e: ce.ItemCreate) -> None:
        item, s = e.item, self.runtime.settings
        item_id = item.id or new_id("item")
        if item_id in self.items:
            raise GAError(
                "item_already_exists",
                f"an item {item_id!r} already exists",
                "item.id",
                event_id=e.event_id,
            )
        audio = [c for c in item.content if isinstance(c, ce.InputAudio)]
        if audio and item.role == "user":
            await self._create_audio_item(item_id, audio, e.event_id)
            return
        text = " ".join(
            (c.text if isinstance(c, ce.InputText | ce.OutputText) else c.transcript or "")
            for c in item.content
            if not isinstance(c, ce.InputAudio)
        ).strip()
        if not text or len(text) > s.max_text_chars:
            raise GAError(
                "invalid_event",
                f"text must be 1 to {s.max_text_chars} characters",
                "item.content",
                event_id=e.event_id,
            )
        if item.role == "system":
            body = system_item(item_id, text)
            self.system_notes[item_id] = text
            self._apply()
        elif item.role == "assistant":
            body = assistant_item(item_id, audio=False, text=text, status="completed")
            self.items.turn_of[item_id] = self.pipeline.conversation.add("assistant", text)
        else:
            body = user_item(item_id, text=text)
            self.items.turn_of[item_id] = self.pipeline.conversation.add("user", text)
        previous = self.items.put(body)
        await self.encoder.send("conversation.item.added", item=body, previous_item_id=previous)
        await self.encoder.send("conversation.item.done", item=body, previous_item_id=previous)

    async def _create_audio_item(
        self, item_id: str, parts: list[ce.InputAudio], event_id: str | None
    ) -> None:
        pcm = b"".join(
            self._decode(p.audio or "", f"item.content.{i}.audio", event_id)
            for i, p in enumerate(parts)
        )
        rate = self.state.input_format.rate
        seconds = len(pcm) / 2 / rate
        if not pcm or seconds > self.runtime.settings.max_utterance_s:
            limit = self.runtime.settings.max_utterance_s
            raise GAError(
                "invalid_audio",
                f"input_audio must hold 0 to {limit} s of audio",
                "item.content",
                event_id=event_id,
            )
        body = user_item(item_id, transcript=None, status="in_progress")
        previous = self.items.put(body)
        await self.encoder.send("conversation.item.added", item=body, previous_item_id=previous)
        audio = resample(pcm16_to_float(pcm), rate, MODEL_RATE).astype(np.float32)
        transcript = (await self.runtime.transcribe(audio)).strip()
        await self.encoder.send(
            "conversation.item.input_audio_transcription.completed",
            item_id=item_id,
            content_index=0,
            transcript=transcript,
            usage={"type": "duration", "seconds": round(seconds, 3)},
        )
        body = user_item(item_id, transcript=transcript)
        if transcript:
            self.items.turn_of[item_id] = self.pipeline.conversation.add("user", transcript)
        self.items.put(body)
        await self.encoder.send("conversation.item.done", item=body, previous_item_id=previous)

    async def _delete(self, e: ce.ItemDelete) -> None:
        item = self.items.get(e.item_id)
        if item is None:
            raise no_item("item_delete_invalid_item_id", e.item_id, e.event_id)
        turn = self.items.turn_of.get(e.item_id)
        conv = self.pipeline.conversation
        if turn is None:  # made by the pipeline: find its turn by role and text
            text = item_text(item)
            turn = next(
                (
                    t.id
                    for t in reversed(conv.turns())
                    if t.role == item.get("role") and t.text.strip() == text
                ),
                None,
            )
        if turn is not None:
            conv.remove(turn)
        self.items.remove(e.item_id)
        if self.system_notes.pop(e.item_id, None) is not None:
            self._apply()
        await self.encoder.send("conversation.item.deleted", item_id=e.item_id)

    async def _truncate(self, e: ce.ItemTruncate) -> None:
        response_id = self.items.response_of.get(e.item_id)
        if response_id is None:
            if e.item_id in self.items:
                raise GAError(
                    "item_truncate_invalid_item_id",
                    f"item {e.item_id!r} is not an assistant audio item",
                    "item_id",
                    event_id=e.event_id,
                )
            raise no_item("item_truncate_invalid_item_id", e.item_id, e.event_id)
        if e.content_index != 0:
            raise GAError(
                "invalid_event",
                "assistant items have one content part (index 0)",
                "content_index",
                event_id=e.event_id,
            )
        await self.pipeline.truncate(response_id, e.audio_end_ms)
