"""Interactive mode: open the sound devices, then run the controller under the terminal UI."""

from __future__ import annotations

import asyncio
import sys
from typing import TextIO

from .audio_io import AudioInput, AudioOutput
from .connection import build_url
from .controller import Controller
from .devices import (
    default_index,
    list_devices,
    load_sounddevice,
    quiet_stderr_fd,
    resolve_device,
)
from .options import TalkOptions
from .ptt import PushToTalk
from .tui import TalkUI


async def _mic_pump(audio_in: AudioInput, controller: Controller) -> None:
    while True:
        controller.on_mic(await audio_in.queue.get())


async def run_interactive(opts: TalkOptions, log: TextIO | None) -> int:
    if not sys.stdin.isatty() or not sys.stdout.isatty():
        print(
            "voice-chat talk: the interactive client needs a terminal; "
            "for scripts use --input-file/--say with --text/--output-file",
            file=sys.stderr,
        )
        return 2
    with quiet_stderr_fd():
        return await _run(opts, log)


async def _run(opts: TalkOptions, log: TextIO | None) -> int:
    sd = load_sounddevice()
    devices = list_devices(sd)
    in_dev = resolve_device(opts.input_device, "input", devices, default_index(sd, "input"))
    out_dev = resolve_device(opts.output_device, "output", devices, default_index(sd, "output"))
    url = build_url(opts.server, opts.character, opts.user, "server_vad" if opts.vad else "manual")
    output = AudioOutput(sd, out_dev)
    audio_in: AudioInput | None = None
    try:
        audio_in = AudioInput(sd, in_dev, asyncio.get_running_loop())
        ptt = PushToTalk(opts.repeat_delay, opts.release_timeout, toggle_only=opts.toggle)
        ui = TalkUI(
            Controller(
                url, output, print, vad=opts.vad, user=opts.user, log=log, api_key=opts.api_key
            ),
            ptt,
            opts.key,
            opts.server,
        )
        return await ui.run([_mic_pump(audio_in, ui.controller)])
    finally:
        output.close()
        if audio_in is not None:
            audio_in.close()
