"""Wire audio formats of the OpenAI Realtime dialect: PCM16 at 24 kHz, G.711 μ-law and A-law.

Companding uses the standard library's ``audioop`` (ITU-T G.711 tables); on Python 3.13+,
where the standard library no longer has it, the ``audioop-lts`` package provides the same
module. Resampling to and from the models' rates is soxr's (see :mod:`voice_chat.audio.pcm`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Literal

with warnings.catch_warnings():  # deprecated in 3.11-3.12, still the maintained G.711 codec
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

FormatType = Literal["audio/pcm", "audio/pcmu", "audio/pcma"]


class AudioFormatError(ValueError):
    """Bytes that cannot be audio of the announced format."""


@dataclass(frozen=True)
class WireFormat:
    """One of the Realtime API's audio formats: its type, sample rate and sample width."""

    type: FormatType
    rate: int
    width: int  # bytes per sample on the wire

    def to_pcm16(self, data: bytes) -> bytes:
        """Wire bytes to PCM16 little-endian at :attr:`rate`."""
        if self.type == "audio/pcm":
            if len(data) % 2:
                raise AudioFormatError(
                    f"{len(data)} bytes is not whole PCM16 samples (an even number of bytes)"
                )
            return data
        if self.type == "audio/pcmu":
            return audioop.ulaw2lin(data, 2)
        return audioop.alaw2lin(data, 2)

    def from_pcm16(self, pcm: bytes) -> bytes:
        """PCM16 little-endian at :attr:`rate` to wire bytes."""
        if self.type == "audio/pcm":
            return pcm
        if self.type == "audio/pcmu":
            return audioop.lin2ulaw(pcm, 2)
        return audioop.lin2alaw(pcm, 2)

    def seconds(self, n_bytes: int) -> float:
        return n_bytes / self.width / self.rate

    def describe(self) -> dict[str, object]:
        """The format as the API writes it: ``{"type": ..., "rate": 24000}`` for PCM."""
        if self.type == "audio/pcm":
            return {"type": self.type, "rate": self.rate}
        return {"type": self.type}


PCM24K = WireFormat("audio/pcm", 24000, 2)
PCMU = WireFormat("audio/pcmu", 8000, 1)
PCMA = WireFormat("audio/pcma", 8000, 1)
FORMATS: dict[str, WireFormat] = {f.type: f for f in (PCM24K, PCMU, PCMA)}
