"""What a GA session has been told (``session.update``), and the session object it reports.

:class:`GAState` holds the API-level choices: session type, formats, turn detection, the
client's instructions. :func:`describe` writes them in the API's shape for
``session.created`` and ``session.updated``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

from voice_chat.audio.codecs import PCM24K, WireFormat


@dataclass
class VadChoice:
    type: Literal["server_vad", "semantic_vad"] = "server_vad"
    eagerness: str = "auto"
    prefix_padding_ms: int = 300
    create_response: bool = True
    interrupt_response: bool = True


@dataclass
class GAState:
    id: str
    kind: Literal["realtime", "transcription"] = "realtime"
    input_format: WireFormat = PCM24K
    output_format: WireFormat = PCM24K
    audio_output: bool = True  # output_modalities ["audio"]; else ["text"]
    instructions: str = ""
    vad: VadChoice | None = field(default_factory=VadChoice)  # None: turn_detection null
    transcription: dict[str, Any] | None = None  # as the client set it (echoed back)
    created: float = field(default_factory=time.time)

    @property
    def auto_respond(self) -> bool:
        """Reply when a spoken turn ends (server VAD with ``create_response``)."""
        return self.kind == "realtime" and self.vad is not None and self.vad.create_response


def describe(
    state: GAState,
    *,
    model: str,
    voice: str,
    threshold: float,
    silence_ms: int,
    max_output_tokens: int,
    stt_model: str,
    stt_language: str | None,
) -> dict[str, Any]:
    """The session object of ``session.created`` / ``session.updated``."""
    transcription = state.transcription or {
        "model": stt_model,
        "language": stt_language,
        "prompt": None,
    }
    turn: dict[str, Any] | None = None
    if state.vad is not None:
        turn = {
            "type": state.vad.type,
            "create_response": state.vad.create_response,
            "interrupt_response": state.vad.interrupt_response,
        }
        if state.vad.type == "server_vad":
            turn |= {
                "threshold": threshold,
                "prefix_padding_ms": state.vad.prefix_padding_ms,
                "silence_duration_ms": silence_ms,
                "idle_timeout_ms": None,
            }
        else:
            turn["eagerness"] = state.vad.eagerness
    audio_in = {
        "format": state.input_format.describe(),
        "transcription": transcription,
        "noise_reduction": None,
        "turn_detection": turn,
    }
    expires = int(state.created) + 24 * 3600
    if state.kind == "transcription":
        return {
            "type": "transcription",
            "object": "realtime.transcription_session",
            "id": state.id,
            "expires_at": expires,
            "include": None,
            "audio": {"input": audio_in},
        }
    return {
        "type": "realtime",
        "object": "realtime.session",
        "id": state.id,
        "model": model,
        "output_modalities": ["audio" if state.audio_output else "text"],
        "instructions": state.instructions,
        "tools": [],
        "tool_choice": "auto",
        "max_output_tokens": max_output_tokens,
        "tracing": None,
        "prompt": None,
        "expires_at": expires,
        "include": None,
        "audio": {
            "input": audio_in,
            "output": {"format": state.output_format.describe(), "voice": voice, "speed": 1.0},
        },
    }
