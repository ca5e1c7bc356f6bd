"""A new session's configuration from the server's settings (both dialects start here)."""

from __future__ import annotations

from typing import Any, Literal

from voice_chat.characters.registry import Character
from voice_chat.engines.base import GenerationOptions
from voice_chat.pipeline.ports import SessionConfig, TurnConfig
from voice_chat.settings import Settings

TurnType = Literal["server_vad", "semantic_vad", "manual"]


def turn_config(s: Settings, type: TurnType | None = None) -> TurnConfig:
    return TurnConfig(
        type=type or s.turn_detection,
        threshold=s.vad_threshold,
        silence_ms=s.silence_duration_ms,
        speculative_ms=s.speculative_ms,
        eagerness=s.turn_eagerness,
        max_wait_ms=s.turn_max_wait_ms,
        min_speech_ms=s.min_speech_ms,
        echo_guard=s.echo_guard,
        echo_cancel=s.echo_cancel,
        backchannel_ms=s.backchannel_ms,
    )


def session_config(
    s: Settings,
    character: Character,
    *,
    output_rate: int,
    input_rate: int,
    turn_type: TurnType | None = None,
    **fields: Any,
) -> SessionConfig:
    """The settings' defaults; ``fields`` are the dialect's own (user name, reply options)."""
    return SessionConfig(
        character=character,
        voice_id=s.default_voice,
        output_rate=output_rate,
        input_rate=input_rate,
        turn=turn_config(s, turn_type),
        generation=GenerationOptions(
            max_tokens=s.max_reply_tokens,
            temperature=s.llm_temperature,
            repeat_penalty=s.llm_repeat_penalty,
        ),
        max_reply_sentences=s.max_reply_sentences,
        max_utterance_s=s.max_utterance_s,
        naive=s.pipeline_mode == "naive",
        **fields,
    )
