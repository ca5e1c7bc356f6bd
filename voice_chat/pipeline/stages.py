"""The three stages of a reply, as a mixin of :class:`~voice_chat.pipeline.pipeline.Pipeline`.

    think: STT → prompt → LLM stream → chunker  ──chunks──▶  speak: TTS → PCM frames
                                                                        │
                                            emit: (gate) → outbox ◀─────┘

``Pipeline._run`` starts them in one task group per reply; the pipeline module holds the rest
of the flow (audio in, turn detection, when replies start and stop). The prompt is built here
too, and :meth:`ReplyStages._prefill` readies the LLM's cache with it between replies.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import replace

import structlog

from voice_chat.audio.pcm import StreamResampler, float_to_pcm16
from voice_chat.engines.base import GenerationOptions, Message
from voice_chat.metrics import observe_reply
from voice_chat.pipeline import events as ev
from voice_chat.pipeline.chunking import Chunker
from voice_chat.pipeline.conversation import Conversation, Turn
from voice_chat.pipeline.openings import identity_answer, name_answer
from voice_chat.pipeline.ports import Engines, Outbox, SessionConfig
from voice_chat.pipeline.prompting import (
    avoid_texts,
    banned_phrases,
    build_messages,
    opening_texts,
    stop_strings,
)
from voice_chat.pipeline.reply import (
    Announce,
    Audio,
    AudioStart,
    End,
    Item,
    Reply,
    ReplyState,
    Segment,
    Text,
    Transcript,
    UserTurn,
    quietly,
)

log = structlog.get_logger(__name__)


class ReplyStages:
    """Think, speak and emit; reads the pipeline's engines, config, conversation and outbox."""

    config: SessionConfig
    engines: Engines
    outbox: Outbox
    conversation: Conversation
    reply: Reply | None
    _prefill_task: asyncio.Task[None] | None

    _partial_text: str

    async def _partial(self, item_id: str, text: str) -> None:
        """Send the transcript so far: ``delta`` extends the previous partial, ``text`` is all."""
        text = text.strip()
        if not text or text == self._partial_text:
            return
        extends = text.startswith(self._partial_text)
        delta = text[len(self._partial_text) :] if extends else text
        self._partial_text = text
        await self.outbox.event(ev.TranscriptDelta(item_id, delta, text))

    def _messages(self, turns: Sequence[Turn], instructions: str | None = None) -> list[Message]:
        cfg = self.config
        return build_messages(
            cfg.character,
            turns,
            user_name=cfg.user_name,
            memory=getattr(self.conversation, "user_memory", None),
            count_tokens=self.engines.count_tokens,
            count_prompt=getattr(self.engines, "count_prompt", None),
            budget_tokens=self.engines.prompt_budget(cfg.generation.max_tokens),
            instructions=cfg.instructions if instructions is None else instructions,
            replace_persona=cfg.replace_persona,
        )

    def _options(self, turns: Sequence[Turn]) -> GenerationOptions:
        """The session's sampling, steered away from repeats and assistant talk."""
        memory = getattr(self.conversation, "user_memory", None)
        name = memory.name if memory is not None else None
        asked = turns[-1].text if turns and turns[-1].role == "user" else ""
        return replace(
            self.config.generation,
            stop=(*self.config.generation.stop, *stop_strings(name or self.config.user_name)),
            avoid=avoid_texts(turns),
            openings=opening_texts(turns),
            banned=banned_phrases(self.config.character, name),
            reply_prefix=name_answer(asked, name)
            or identity_answer(asked, self.config.character),
        )

    def _prefill(self, pending: Sequence[Turn] = (), now: bool = False) -> None:
        """While the user listens and speaks, pre-compute the LLM's KV cache for the history.

        ``pending`` turns are about to be stored; ``now`` runs even while a reply is playing.
        """
        busy = self.reply is not None and not self.reply.finished
        if self.config.naive or (busy and not now):
            return
        try:
            messages = self._messages([*self.conversation.turns(), *pending])
        except ValueError as exc:  # the prompt cannot fit: the reply will say so
            log.warning("no prefill", error=str(exc))
            return
        prefill = self.engines.prefill
        self._prefill_task = asyncio.create_task(quietly(lambda: prefill(messages)))

    async def _think(self, reply: Reply, chunks: asyncio.Queue[str | None]) -> None:
        """STT → prompt → LLM stream → chunker. Puts text events out, chunks to TTS."""
        out = reply.outq
        try:
            user_text = reply.text
            if reply.audio is not None:
                t = time.monotonic()
                running = reply.transcript  # started at the first silent frame
                reply.metrics["stt_early"] = float(running is not None)
                if running is None:
                    running = asyncio.ensure_future(self.engines.transcribe(reply.audio))
                user_text = await running
                reply.metrics["stt_ms"] = round((time.monotonic() - t) * 1000, 1)
                if not reply.is_live:  # a speculative transcript is a partial one: show it
                    if reply is self.reply:
                        self.endpoint.judge_words(user_text, reply.audio)
                    await self._partial(reply.item_id, user_text)
                out.put_nowait(Transcript(user_text))
                if not user_text.strip():
                    return  # noise or a cough: no reply
            if user_text is not None:
                out.put_nowait(UserTurn(user_text))
            if not reply.respond:
                return  # transcription only: the user's turn is stored, no reply
            out.put_nowait(Announce())
            chunker = Chunker(max_sentences=self.config.max_reply_sentences)
            if reply.fixed is not None:
                chunker.max_sentences = 1000
                for piece in [*chunker.feed(reply.fixed + " "), *chunker.flush()]:
                    self._chunk_out(reply, chunks, piece)
            else:
                await self._generate(reply, chunks, chunker, user_text or "")
            if reply.is_live:  # the reply's text is final: the next turn's prompt is known
                pending = (
                    [Turn(0, "user", user_text)] if user_text and reply.user_turn is None else []
                )
                reply.next_prompt = [*pending, Turn(0, "assistant", " ".join(chunker.spoken))]
        finally:
            chunks.put_nowait(None)

    async def _generate(
        self, reply: Reply, chunks: asyncio.Queue[str | None], chunker: Chunker, user_text: str
    ) -> None:
        turns = [*self.conversation.turns(), Turn(0, "user", user_text)]
        messages = self._messages(turns, reply.instructions)
        count = getattr(self.engines, "count_prompt", None)
        if count is not None:
            reply.metrics["prompt_tokens"] = count(messages)
        t = time.monotonic()
        tokens = 0
        stream = self.engines.generate(messages, self._options(turns), reply.stop_generating)
        async for delta in stream:
            if tokens == 0:
                reply.metrics["llm_first_token_ms"] = round((time.monotonic() - t) * 1000, 1)
            tokens += 1
            for piece in chunker.feed(delta):
                self._chunk_out(reply, chunks, piece)
            if chunker.capped:
                break
        reply.stop_generating.set()
        for piece in chunker.flush():
            self._chunk_out(reply, chunks, piece)
        reply.metrics["llm_tokens"] = tokens
        reply.metrics["llm_ms"] = round((time.monotonic() - t) * 1000, 1)

    def _chunk_out(self, reply: Reply, chunks: asyncio.Queue[str | None], piece: str) -> None:
        reply.mark("first_chunk_ms")
        reply.outq.put_nowait(Text(" " + piece if reply.chunks_out else piece))
        reply.chunks_out += 1
        chunks.put_nowait(piece)

    async def _speak(self, reply: Reply, chunks: asyncio.Queue[str | None]) -> None:
        """TTS each chunk in a worker thread; cut the audio into 100 ms PCM16 frames."""
        engines = self.engines
        try:
            native = await engines.sample_rate(reply.voice_id)
            rate = reply.output_rate or native
            resampler = StreamResampler(native, rate)
            frame = rate // 10
            held: list[Item] = []  # naive mode: nothing goes out until all audio is made
            out = held.append if self.config.naive else reply.outq.put_nowait
            while (piece := await chunks.get()) is not None:
                if not reply.speak:  # text only: the chunk is the reply, with no audio
                    reply.segments.append(Segment(piece, 0.0, 0.0))
                    continue
                t = time.monotonic()
                audio = await engines.synthesize(reply.voice_id, piece)
                reply.metrics.setdefault(
                    "tts_first_chunk_ms", round((time.monotonic() - t) * 1000, 1)
                )
                reply.metrics["tts_audio_ms"] = (
                    reply.metrics.get("tts_audio_ms", 0) + len(audio) / native * 1000
                )
                reply.metrics["tts_ms"] = (
                    reply.metrics.get("tts_ms", 0) + (time.monotonic() - t) * 1000
                )
                pcm = float_to_pcm16(resampler.process(audio))
                if not reply.audio_queued_ms:
                    out(AudioStart(rate))
                start = reply.audio_queued_ms
                for i in range(0, len(pcm), frame * 2):
                    part = pcm[i : i + frame * 2]
                    reply.audio_queued_ms += len(part) / 2 / rate * 1000
                    out(Audio(part))
                reply.segments.append(Segment(piece, start, reply.audio_queued_ms))
            for item in held:
                reply.outq.put_nowait(item)
            if reply.next_prompt is not None:
                # Readied for the next turn only now: evaluated beside the reply's TTS, the
                # prompt took a core from it (playback stalls with two sessions).
                self._prefill(reply.next_prompt, now=True)
        finally:
            reply.outq.put_nowait(End())

    async def _emit(self, reply: Reply) -> None:
        """Hold everything until the turn is confirmed, then send it in order, audio paced."""
        await reply.gate.wait()
        box, lead_s = self.outbox, 0.6
        while True:
            match await reply.outq.get():
                case End():
                    break
                case Transcript(text):
                    reply.mark("transcript_ms")
                    await box.event(ev.TranscriptCompleted(reply.item_id, text))
                case UserTurn(text):
                    reply.user_turn = self.conversation.add("user", text)
                case Announce():
                    reply.advance(ReplyState.ANNOUNCED)
                    await box.event(ev.ResponseCreated(ev.ResponseRef(reply.id)))
                case Text(delta):
                    reply.mark("first_text_ms")
                    await box.event(ev.TextDelta(reply.id, delta))
                case AudioStart(rate):
                    reply.advance(ReplyState.SPEAKING)
                    reply.audio_wall_start, reply.sample_rate = time.monotonic(), rate
                    self.barge.reply_starts(rate, reply)
                    await box.event(ev.AudioStarted(reply.id, rate))
                case Audio(pcm):
                    if not reply.playing.is_set():  # held: the user may be saying "mm-hmm"
                        held = time.monotonic()
                        await reply.playing.wait()
                        reply.audio_wall_start += time.monotonic() - held
                    ahead = reply.audio_sent_ms / 1000 - (time.monotonic() - reply.audio_wall_start)
                    if ahead > lead_s:
                        await asyncio.sleep(ahead - lead_s)
                    elif ahead < 0 and reply.audio_sent_ms:  # the client ran dry: it plays late
                        reply.audio_wall_start -= ahead
                    reply.mark("first_audio_ms")
                    self.barge.reply_audio(pcm)  # timed before the send, which may wait
                    await box.audio(pcm)
                    reply.audio_sent_ms += len(pcm) / 2 / reply.sample_rate * 1000
        if not reply.announced:
            reply.finish()
            return
        if reply.audio_started:
            await box.event(ev.AudioDone(reply.id, round(reply.audio_sent_ms)))
        if reply.full_text:
            reply.assistant_turn = self.conversation.add("assistant", reply.full_text)
        reply.mark("total_ms")
        reply.finish()
        observe_reply("completed", reply.metrics, spoken_turn=reply.audio is not None)
        await box.event(reply.done_event("completed"))
        self._prefill()
