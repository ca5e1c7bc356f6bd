"""Text-only talking, for a machine without sound: typed turns, replies printed in full.

:class:`TextOnlyOutput` stands in for the speakers: nothing plays, a reply counts as heard as
soon as its audio arrives (it is read, not listened to), and the audio is written to a WAV
file when one is asked for. :func:`wrap` breaks printed lines between words at the terminal's
width, with the speaker's name hanging in front.
"""

from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path

from .pcm import WavWriter


class TextOnlyOutput:
    """The speaker interface of :class:`voice_chat.client.audio_io.AudioOutput`, silent."""

    def __init__(self, path: Path | None = None) -> None:
        self.writer = WavWriter(path) if path is not None else None
        self._rates: dict[str, int] = {}
        self._ms: dict[str, float] = {}

    def start_response(self, response_id: str, sample_rate: int) -> None:
        self._rates[response_id] = sample_rate
        self._ms[response_id] = 0.0

    def feed(self, response_id: str, pcm16: bytes) -> None:
        rate = self._rates.setdefault(response_id, 22050)
        self._ms[response_id] = self._ms.get(response_id, 0.0) + len(pcm16) / 2 / rate * 1000
        if self.writer is not None:
            self.writer.write(pcm16, rate)

    def finish_response(self, response_id: str) -> None:
        self._rates.pop(response_id, None)

    def interrupt(self, response_id: str | None) -> int:
        """Nothing is playing; what arrived so far was shown, so it counts as heard."""
        return self.played_ms(response_id) if response_id else 0

    def is_playing(self, response_id: str | None = None) -> bool:
        return False

    def played_ms(self, response_id: str) -> int:
        return round(self._ms.get(response_id, 0.0))

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def terminal_width(default: int = 80) -> int:
    """The real terminal's width (stdout may be patched by the UI, so ask the original)."""
    for stream in (sys.__stdout__, sys.__stderr__):
        try:
            return max(20, os.get_terminal_size(stream.fileno()).columns)
        except (AttributeError, OSError, ValueError):
            continue
    return default


def wrap(line: str, width: int | None = None) -> str:
    """``line`` broken between words to ``width`` columns; ``name: `` prefixes hang."""
    width = width or terminal_width()
    head, sep, _ = line.partition(": ")
    indent = " " * (len(head) + 2) if sep and 0 < len(head) <= 24 else ""
    if len(indent) > width // 3:
        indent = "  "
    return "\n".join(
        textwrap.fill(
            part,
            width=width,
            subsequent_indent=indent,
            break_on_hyphens=False,
            break_long_words=True,
        )
        if part.strip()
        else part
        for part in line.split("\n")
    )
