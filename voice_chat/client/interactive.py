"""Interactive mode: open the sound devices (or go text-only without them), then run the
controller under the terminal UI."""

from __future__ import annotations

import asyncio
import sys
from typing import TextIO

from .audio_io import AudioInput, AudioOutput
from .connection import build_url
from .controller import Controller
from .devices import (
    AudioDeviceError,
    default_index,
    list_devices,
    load_sounddevice,
    quiet_stderr_fd,
    resolve_device,
)
from .options import TalkOptions
from .ptt import PushToTalk
from .textmode import TextOnlyOutput, wrap
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


def _print(line: str) -> None:
    print(wrap(line))  # between words, at the terminal's width


async def _run(opts: TalkOptions, log: TextIO | None) -> int:
    why = "--text-only" if opts.text_only else None
    if why is None:
        try:
            sd = load_sounddevice()
            devices = list_devices(sd)
            in_dev = resolve_device(opts.input_device, "input", devices, default_index(sd, "input"))
            out_dev = resolve_device(
                opts.output_device, "output", devices, default_index(sd, "output")
            )
        except AudioDeviceError as exc:
            if opts.input_device or opts.output_device:
                raise  # a device was asked for by name: say it is not there
            why = str(exc)
    if why is not None:
        return await _run_text_only(opts, log, why)
    url = build_url(opts.server, opts.character, opts.user, "server_vad" if opts.vad else "manual")
    output = AudioOutput(sd, out_dev)
    audio_in: AudioInput | None = None
    try:
        audio_in = AudioInput(sd, in_dev, asyncio.get_running_loop())
        ptt = PushToTalk(opts.repeat_delay, opts.release_timeout, toggle_only=opts.toggle)
        ui = TalkUI(
            Controller(
                url, output, _print, vad=opts.vad, user=opts.user, log=log, api_key=opts.api_key
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


async def _run_text_only(opts: TalkOptions, log: TextIO | None, why: str) -> int:
    """No sound: type, read. Says so first, and where the replies' audio goes, if anywhere."""
    url = build_url(opts.server, opts.character, opts.user, "manual")
    output = TextOnlyOutput(opts.reply_audio)
    saved = f" Reply audio is written to {opts.reply_audio}." if opts.reply_audio else ""
    reason = "" if why == "--text-only" else f" ({why})"
    _print(
        f"Text-only mode: no sound{reason}. Type a line and press Enter to talk; "
        f"replies are printed.{saved}"
    )
    try:
        ptt = PushToTalk(opts.repeat_delay, opts.release_timeout, toggle_only=opts.toggle)
        controller = Controller(
            url, output, _print, vad=False, user=opts.user, log=log, api_key=opts.api_key
        )
        ui = TalkUI(controller, ptt, opts.key, opts.server, text_only=True)
        return await ui.run([])
    finally:
        output.close()
