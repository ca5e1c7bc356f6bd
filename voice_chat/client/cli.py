"""``voice-chat talk`` and ``voice-chat devices``: ``register(subparsers)`` adds both."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from pathlib import Path
from typing import Any, TextIO

from .devices import (
    CLIENT_EXTRA,
    AudioDeviceError,
    default_index,
    format_devices,
    list_devices,
    load_sounddevice,
    missing_client_packages,
    quiet_stderr_fd,
)
from .options import TalkOptions

TALK_HELP = """\
Talk with a character: hold the talk key (default: space) to speak, release it to send.
Terminals report no key release, so a hold is detected by the key's auto-repeat; a short tap
latches recording on instead, and a second tap sends (or use --toggle). Typing text and Enter
sends it as a message; Esc stops the reply; pressing the talk key while the character speaks
interrupts it. Without an audio device (or with --text-only) it starts in text-only mode: type
your turns, read the replies (--reply-audio saves their sound). Scripted use: --input-file/--say
with --text/--output-file."""


def register(subparsers: Any) -> None:
    """Add the ``talk`` and ``devices`` subcommands to an argparse subparsers object."""
    talk = subparsers.add_parser(
        "talk",
        help="push-to-talk client for a running server",
        description=TALK_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_talk_arguments(talk)
    talk.set_defaults(func=talk_main)
    devices = subparsers.add_parser("devices", help="list audio input and output devices")
    devices.set_defaults(func=devices_main)


def add_talk_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--server", default="ws://127.0.0.1:8000", help="server URL (default: %(default)s)"
    )
    p.add_argument("--character", help="character id (default: the server's default character)")
    p.add_argument("--user", help="user id, so the server can keep per-user memory")
    p.add_argument(
        "--api-key",
        default=os.environ.get("VOICE_CHAT_API_KEY"),
        help="API key for a server with auth on (default: $VOICE_CHAT_API_KEY)",
    )
    p.add_argument(
        "--key",
        default="space",
        help="talk key: space, tab, f5, c-t or one character (default: space)",
    )
    p.add_argument(
        "--toggle", action="store_true", help="tap the key to start talking and tap again to send"
    )
    p.add_argument(
        "--vad",
        action="store_true",
        help="hands-free: the server detects when you speak (use headphones)",
    )
    p.add_argument(
        "--input-device",
        metavar="X",
        help="microphone: index or part of the name (see `voice-chat devices`)",
    )
    p.add_argument("--output-device", metavar="Y", help="speakers: index or part of the name")
    p.add_argument(
        "--input-file",
        type=Path,
        metavar="IN.wav",
        help="send this WAV as your turn (scripted mode)",
    )
    p.add_argument(
        "--output-file",
        type=Path,
        metavar="OUT.wav",
        help="write the reply audio here (scripted mode)",
    )
    p.add_argument(
        "--say",
        action="append",
        default=[],
        metavar="TEXT",
        help="send TEXT as a typed turn (scripted mode, repeatable)",
    )
    p.add_argument(
        "--text",
        action="store_true",
        help="print `you: ...` / `<character>: ...` lines and exit after the reply",
    )
    p.add_argument(
        "--text-only",
        action="store_true",
        help="type your turns and read the replies, without sound (the default where there "
        "is no audio device)",
    )
    p.add_argument(
        "--reply-audio",
        type=Path,
        metavar="FILE.wav",
        help="text-only: also write the replies' audio to this WAV",
    )
    p.add_argument(
        "--event-log",
        type=Path,
        metavar="FILE",
        help="append every protocol event to FILE (JSON lines)",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=120.0,
        help="scripted mode: give up after this many seconds",
    )
    p.add_argument(
        "--repeat-delay",
        type=float,
        default=0.75,
        metavar="S",
        help="longest key auto-repeat delay to expect (default: %(default)s)",
    )
    p.add_argument(
        "--release-timeout",
        type=float,
        default=0.25,
        metavar="S",
        help="key counts as released after this long without repeats (default: %(default)s)",
    )


def options_from_args(args: argparse.Namespace) -> TalkOptions:
    fields = TalkOptions.__dataclass_fields__
    return TalkOptions(**{name: getattr(args, name) for name in fields if hasattr(args, name)})


def _err(message: str) -> None:
    print(f"voice-chat talk: {message}", file=sys.stderr)


def talk_main(args: argparse.Namespace) -> int:
    opts = options_from_args(args)
    from .connection import ConnectError, build_url

    try:
        build_url(opts.server)
    except ConnectError as exc:
        _err(str(exc))
        return 2
    if not opts.scripted:  # file mode needs neither the microphone nor the terminal UI
        missing = missing_client_packages()
        if missing:
            _err(f"{' and '.join(missing)} not installed; {CLIENT_EXTRA}")
            return 2
        from .tui import validate_key

        try:
            validate_key(opts.key)
        except ValueError as exc:
            _err(str(exc))
            return 2
    log: TextIO | None = None
    try:
        with contextlib.ExitStack() as stack:
            if opts.event_log is not None:
                log = stack.enter_context(opts.event_log.open("a", encoding="utf-8"))
            return asyncio.run(_talk(opts, log))
    except KeyboardInterrupt:
        return 0 if not opts.scripted else 130
    except AudioDeviceError as exc:
        _err(str(exc))
        return 2
    except OSError as exc:
        _err(str(exc))
        return 2


async def _talk(opts: TalkOptions, log: TextIO | None) -> int:
    if opts.scripted:
        from .filemode import run_scripted

        return await run_scripted(opts, log)
    from .interactive import run_interactive

    return await run_interactive(opts, log)


def devices_main(_args: argparse.Namespace) -> int:
    try:
        with quiet_stderr_fd():
            sd = load_sounddevice()
            devices = list_devices(sd)
        print(format_devices(devices, default_index(sd, "input"), default_index(sd, "output")))
    except AudioDeviceError as exc:
        print(f"voice-chat devices: {exc}", file=sys.stderr)
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point (``python -m voice_chat.client.cli talk ...``)."""
    parser = argparse.ArgumentParser(prog="voice-chat")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
