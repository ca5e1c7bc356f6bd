"""Pipecat's ``OpenAIRealtimeLLMService`` pointed at our server, in a small Pipecat pipeline.

A WAV of user speech goes in as audio frames at real-time pace; the service talks the GA
dialect to ``/v1/realtime?model=sage``; the reply audio comes back as Pipecat audio frames.
"""

from __future__ import annotations

import asyncio
import io
import time

import numpy as np
import pytest
from ga_client import hear, words
from speech import espeak

from voice_chat.audio.pcm import float_to_pcm16, pcm16_to_float, read_wav, wav_bytes

pytestmark = pytest.mark.slow


async def test_pipecat_pipeline_gets_a_spoken_reply(live_server) -> None:
    from pipecat.frames.frames import (
        EndFrame,
        ErrorFrame,
        Frame,
        InputAudioRawFrame,
        LLMFullResponseEndFrame,
        TranscriptionFrame,
        TTSAudioRawFrame,
    )
    from pipecat.pipeline.pipeline import Pipeline
    from pipecat.pipeline.runner import PipelineRunner
    from pipecat.pipeline.task import PipelineParams, PipelineTask
    from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
    from pipecat.services.openai.realtime.llm import OpenAIRealtimeLLMService

    class Collect(FrameProcessor):
        """Keeps what the realtime service sends downstream and upstream."""

        def __init__(self) -> None:
            super().__init__()
            self.audio: list[TTSAudioRawFrame] = []
            self.transcripts: list[str] = []
            self.errors: list[str] = []
            self.replied = asyncio.Event()

        async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
            await super().process_frame(frame, direction)
            if isinstance(frame, TTSAudioRawFrame):
                self.audio.append(frame)
            elif isinstance(frame, TranscriptionFrame):
                self.transcripts.append(frame.text)
            elif isinstance(frame, ErrorFrame):
                self.errors.append(frame.error)
            elif isinstance(frame, LLMFullResponseEndFrame) and self.audio:
                self.replied.set()
            await self.push_frame(frame, direction)

    # The user's question as a WAV file, read back the way an app would.
    wav = wav_bytes(espeak("Tell me a short story about the sea."), 16000)
    speech, rate = read_wav(wav)
    speech = np.concatenate([speech, np.zeros(int(1.5 * rate), dtype=np.float32)])

    upstream, downstream = Collect(), Collect()
    llm = OpenAIRealtimeLLMService(
        api_key="sk-not-checked",
        base_url=live_server.ws_url + "/v1/realtime",
        settings=OpenAIRealtimeLLMService.Settings(model="sage"),
    )
    task = PipelineTask(
        Pipeline([upstream, llm, downstream]),
        params=PipelineParams(audio_in_sample_rate=rate, audio_out_sample_rate=24000),
    )
    runner = PipelineRunner(handle_sigint=False)
    running = asyncio.create_task(runner.run(task))

    step = rate // 50  # 20 ms frames, as a transport sends them
    await asyncio.sleep(1.0)  # let the service connect and configure its session
    start = time.monotonic()
    for i in range(0, len(speech), step):
        delay = start + i / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        pcm = float_to_pcm16(speech[i : i + step])
        await task.queue_frame(InputAudioRawFrame(audio=pcm, sample_rate=rate, num_channels=1))
    try:
        await asyncio.wait_for(downstream.replied.wait(), 120)
    finally:
        await task.queue_frame(EndFrame())
        await asyncio.wait_for(running, 30)

    assert not downstream.errors and not upstream.errors, downstream.errors + upstream.errors
    assert any("sea" in t.lower() or "story" in t.lower() for t in upstream.transcripts), (
        upstream.transcripts
    )
    assert {f.sample_rate for f in downstream.audio} == {24000}
    audio = pcm16_to_float(b"".join(f.audio for f in downstream.audio))
    assert len(audio) / 24000 > 1.0
    out = io.BytesIO(wav_bytes(audio, 24000))  # the reply, as the app would save it
    reply, reply_rate = read_wav(out.getvalue())
    assert len(words(hear(reply, reply_rate))) >= 2
