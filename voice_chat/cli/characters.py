"""``voice-chat characters list|import|export|remove``: manage cards in the data directory.

Works on the files directly (no server needed): ``--data`` or ``VOICE_CHAT_DATA`` selects the
data directory. Exit codes: 0 done, 2 bad input (bad card, unknown character or voice, ...),
1 anything else (e.g. the disk is full).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from voice_chat.cards.errors import CardError
from voice_chat.cards.io import FILE_EXTENSIONS
from voice_chat.cards.limits import MAX_CHARX_BYTES
from voice_chat.cli import common

FORMATS = ("v2", "v3", "png", "charx")
PROG = "voice-chat characters"
_fail = functools.partial(common.fail, PROG)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    _, cmds = common.command_group(
        sub, "characters", "list, import, export or remove character cards"
    )
    ls = cmds.add_parser("list", help="list characters")
    ls.add_argument("--json", action="store_true", help="machine-readable output")
    ls.set_defaults(func=_list)
    imp = cmds.add_parser("import", help="import a card: JSON (V1/V2/V3), PNG or CHARX")
    imp.add_argument("file", help="card file")
    imp.add_argument("--voice", help="voice id to give the character")
    imp.set_defaults(func=_import)
    exp = cmds.add_parser("export", help="export a card")
    exp.add_argument("id", help="character id")
    exp.add_argument("--format", choices=FORMATS, default="png", help="default png")
    exp.add_argument("-o", "--output", help="output file (default <id>.<ext>; - for stdout)")
    exp.set_defaults(func=_export)
    rm = cmds.add_parser("remove", help="remove an imported character and its conversations")
    rm.add_argument("id", help="character id")
    rm.set_defaults(func=_remove)
    common.data_option(ls, imp, exp, rm)


def _run(args: argparse.Namespace, fn: Any) -> int:
    return common.run(PROG, args, common.characters, fn)


def _list(args: argparse.Namespace) -> int:
    def run(settings: Any, registry: Any) -> int:
        rows = [
            {
                "id": c.id,
                "name": c.name,
                "voice": c.voice,
                "shipped": c.shipped,
                "customized": c.customized,
                "spec": c.card.spec,
                "greetings": c.greeting_count,
                "voice_sample": c.voice_sample.name if c.voice_sample else None,
            }
            for c in registry.list()
        ]
        if args.json:
            print(json.dumps(rows, ensure_ascii=False, indent=2))
            return 0
        for row in rows:
            kind = "shipped" if row["shipped"] else "user"
            kind += "*" if row["customized"] else ""
            voice = row["voice"] or "(default)"
            print(f"{row['id']:<24} {kind:<9} {voice:<12} {row['name']}")
        return 0

    return _run(args, run)


def _check_voice(settings: Any, voice: str | None) -> None:
    from voice_chat.engines.voices import VoiceRegistry

    if voice:
        VoiceRegistry(settings.voices_dir, settings.shared / "voices").get(voice)


def _import(args: argparse.Namespace) -> int:
    def run(settings: Any, registry: Any) -> int:
        path = Path(args.file)
        if not path.is_file():
            return _fail(f"no such file: {path}")
        if path.stat().st_size > MAX_CHARX_BYTES:
            raise CardError("too_large", f"{path.name} is over {MAX_CHARX_BYTES} bytes")
        _check_voice(settings, args.voice)
        character = registry.add(path.read_bytes(), voice=args.voice)
        print(f"imported {character.name!r} as {character.id}")
        return 0

    return _run(args, run)


def _export(args: argparse.Namespace) -> int:
    def run(settings: Any, registry: Any) -> int:
        data = registry.export(args.id, args.format)
        if args.output == "-":
            sys.stdout.buffer.write(data)
            sys.stdout.buffer.flush()
            return 0
        suffix = (".v3" if args.format == "v3" else "") + FILE_EXTENSIONS[args.format]
        out = Path(args.output or f"{args.id}{suffix}")
        fd, tmp = tempfile.mkstemp(dir=out.parent if str(out.parent) else ".", prefix=".export-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, out)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        print(f"wrote {out} ({len(data)} bytes)", file=sys.stderr)
        return 0

    return _run(args, run)


def _remove(args: argparse.Namespace) -> int:
    def run(settings: Any, registry: Any) -> int:
        from voice_chat.memory import MemoryStoreError, Store

        restored = registry.delete(args.id)
        if restored is not None:
            print(f"removed your changes to {args.id}; the shipped character is back")
            return 0
        try:
            with Store(settings.database) as store:
                forgotten = store.reset_character(args.id)
        except MemoryStoreError as exc:
            print(f"removed {args.id}; its conversations were not deleted: {exc}", file=sys.stderr)
            return 0
        print(f"removed {args.id} ({forgotten} conversation messages deleted)")
        return 0

    return _run(args, run)
