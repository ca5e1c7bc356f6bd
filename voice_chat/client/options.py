"""Options of ``voice-chat talk`` as a typed object (built from argparse in ``cli``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class TalkOptions:
    server: str = "ws://127.0.0.1:8000"
    character: str | None = None
    user: str | None = None
    api_key: str | None = None  # servers with auth on (docs/security.md)
    key: str = "space"
    toggle: bool = False
    vad: bool = False
    input_device: str | None = None
    output_device: str | None = None
    input_file: Path | None = None
    output_file: Path | None = None
    text: bool = False
    say: list[str] = field(default_factory=list)
    event_log: Path | None = None
    timeout: float = 120.0
    repeat_delay: float = 0.75
    release_timeout: float = 0.25
    text_only: bool = False  # no sound even where there is a device: type and read
    reply_audio: Path | None = None  # text-only: write the replies' audio here

    @property
    def scripted(self) -> bool:
        """No terminal UI: play files / send text, print lines, exit after the reply."""
        return bool(self.input_file or self.output_file or self.text or self.say)
