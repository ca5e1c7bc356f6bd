"""What the ``voice-chat characters`` and ``voice-chat voices`` commands share.

Both work on the data directory directly (no server): ``--data`` or ``VOICE_CHAT_DATA``
selects it. Exit codes: 0 done, 2 bad input (a bad card, file, parameter or id), 1 anything
else (an internal failure, the disk is full).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

T = TypeVar("T")
if TYPE_CHECKING:  # subscripting the class only works in annotations
    Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]


class BadInput(Exception):
    """A mistake in the command line itself (exit code 2)."""


def command_group(sub: Subparsers, name: str, help: str) -> tuple[argparse.ArgumentParser, Any]:
    """``voice-chat <name>`` with ``--data``; without a subcommand it prints its usage (exit 2).

    Returns the group's parser and its subparsers (``dest`` is ``<name>_command``).
    """
    group = sub.add_parser(name, help=help)
    group.add_argument("--data", help="data directory (default: VOICE_CHAT_DATA or ~/.local/…)")
    group.set_defaults(func=lambda args: usage(group))
    return group, group.add_subparsers(dest=f"{name}_command")


def data_option(*parsers: argparse.ArgumentParser) -> None:
    """``--data`` after the subcommand too (``voice-chat voices list --data DIR``)."""
    for parser in parsers:
        parser.add_argument("--data", default=argparse.SUPPRESS, help="data directory")


def characters(settings: Any) -> Any:
    """The character registry of the settings' data directory."""
    from voice_chat.characters.registry import CharacterRegistry

    return CharacterRegistry(settings.characters_dir, settings.shared / "characters")


def usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def fail(prog: str, message: str, code: int = 2) -> int:
    """Print ``<prog>: message`` to stderr; return the exit code."""
    print(f"{prog}: {message}", file=sys.stderr)
    return code


def run(
    prog: str,
    args: argparse.Namespace,
    open_: Callable[[Any], T],
    fn: Callable[[Any, T], int],
) -> int:
    """Load the settings, ``open_(settings)``, run ``fn(settings, opened)``; every expected error
    becomes one line on stderr and an exit code."""
    from pydantic import ValidationError

    from voice_chat.errors import VoiceChatError
    from voice_chat.settings import load_settings

    try:
        settings = load_settings(data=getattr(args, "data", None))
        return int(fn(settings, open_(settings)))
    except ValidationError as exc:
        return fail(prog, f"invalid setting: {exc.errors()[0]['msg']}")
    except BadInput as exc:
        return fail(prog, str(exc))
    except VoiceChatError as exc:  # a card, character, voice, engine or store error
        return fail(prog, f"{exc} ({exc.code})", 1 if exc.code == "internal_error" else 2)
    except OSError as exc:
        return fail(prog, f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), 1)
