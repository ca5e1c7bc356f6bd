"""``voice-chat voices list|add|preview|remove|assign``: manage voices in the data directory.

Works on the files directly (no server needed): ``--data`` or ``VOICE_CHAT_DATA`` selects the
data directory. A running server sees added voices at once; one that already spoke with a
removed voice keeps it cached until restarted (the HTTP API forgets it at once).
Exit codes: 0 done, 2 bad input (unknown kind or voice, bad parameter, bad file), 1 anything
else (e.g. the disk is full).
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from voice_chat.cli import common
from voice_chat.cli.common import BadInput

PROG = "voice-chat voices"
_fail = functools.partial(common.fail, PROG)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    _, cmds = common.command_group(
        sub, "voices", "list, add, preview, remove or assign character voices"
    )
    ls = cmds.add_parser("list", help="list voices")
    ls.add_argument("--json", action="store_true", help="machine-readable output")
    ls.set_defaults(func=_list)
    add = cmds.add_parser("add", help="register a voice (validated and test-synthesized)")
    add.add_argument("--name", required=True, help="display name; the id is made from it")
    add.add_argument("--kind", required=True, help="piper, derived, blend, kokoro, clip or coqui")
    add.add_argument("--file", action="append", default=[], help="a file to upload (repeat)")
    add.add_argument(
        "--param", action="append", default=[], metavar="KEY=VALUE", help="e.g. base=joe (repeat)"
    )
    add.add_argument("--params-json", help='all parameters as JSON, e.g. \'{"base": "joe"}\'')
    add.add_argument("--id", help="voice id (default: made from the name)")
    add.add_argument("--json", action="store_true", help="print the voice as JSON")
    add.set_defaults(func=_add)
    pre = cmds.add_parser("preview", help="write a WAV of the voice saying a text")
    pre.add_argument("id", help="voice id")
    pre.add_argument("--text", help="what to say (default: a test sentence)")
    pre.add_argument("-o", "--output", required=True, help="output .wav file (- for stdout)")
    pre.set_defaults(func=_preview)
    rm = cmds.add_parser("remove", help="delete a user voice")
    rm.add_argument("id", help="voice id")
    rm.add_argument("--force", action="store_true", help="even if characters or voices use it")
    rm.set_defaults(func=_remove)
    asg = cmds.add_parser("assign", help="give a character a voice")
    asg.add_argument("id", help="voice id")
    asg.add_argument("character", help="character id")
    asg.set_defaults(func=_assign)
    common.data_option(ls, add, pre, rm, asg)


def _store(settings: Any) -> Any:
    from voice_chat.voicelab import VoiceStore

    return VoiceStore(settings.shared, settings.voices_dir, clone_model=settings.voice_clone_model)


def _run(args: argparse.Namespace, fn: Callable[[Any, Any], int]) -> int:
    """Open the store, run ``fn(settings, store)``, turn errors into one line and an exit code."""
    return common.run(PROG, args, _store, fn)


# ------------------------------------------------------------------ list
def _list(args: argparse.Namespace) -> int:
    def run(settings: Any, store: Any) -> int:
        from voice_chat.server.api.voice_io import voice_json

        voices = [voice_json(v, store.is_shipped(v.id), store.get) for v in store.list()]
        if args.json:
            print(json.dumps({"voices": voices}, indent=2, ensure_ascii=False))
            return 0
        for v in voices:
            where = "shipped" if v["shipped"] else "user"
            rate = f"{v['sample_rate']} Hz" if v["sample_rate"] else "? Hz"
            note = "  (approximation)" if v.get("approximation") else ""
            print(f"{v['id']:<20} {v['engine']:<8} {where:<8} {rate:<9} {v['name']}{note}")
        return 0

    return _run(args, run)


# ------------------------------------------------------------------ add
def parse_value(text: str) -> Any:
    """``4`` → 4, ``1.1`` → 1.1, ``true`` → True, ``{"a": 1}`` → dict, anything else a string."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def build_params(pairs: list[str], params_json: str | None) -> dict[str, Any]:
    """``--params-json`` first, then each ``--param key=value`` (``blend.jf_alpha=0.7`` nests)."""
    params: dict[str, Any] = {}
    if params_json:
        try:
            params = json.loads(params_json)
        except ValueError as exc:
            raise BadInput(f"--params-json is not valid JSON: {exc}") from None
        if not isinstance(params, dict):
            raise BadInput("--params-json must be a JSON object")
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise BadInput(f"--param {pair!r}: use KEY=VALUE, e.g. pitch_semitones=4")
        *parents, leaf = key.strip().split(".")
        node = params
        for name in parents:
            child = node.setdefault(name, {})
            if not isinstance(child, dict):
                raise BadInput(f"--param {pair!r}: {name} is not an object")
            node = child
        node[leaf] = parse_value(value)
    return params


def read_files(paths: list[str]) -> dict[str, bytes]:
    """The files by name, each checked against its size limit before it is read."""
    from voice_chat.server.api.voice_io import FILE_LIMITS

    files: dict[str, bytes] = {}
    for raw in paths:
        path = Path(raw).expanduser()
        if not path.is_file():
            raise BadInput(f"no such file: {raw}")
        name = path.name
        suffix = ".json" if name.lower().endswith(".json") else path.suffix.lower()
        limit = FILE_LIMITS.get(suffix)
        if limit is None:
            raise BadInput(f"{name}: unsupported file type (.onnx, .onnx.json, .wav, .pth, .json)")
        if path.stat().st_size > limit:
            raise BadInput(f"{name} is over its limit of {limit} bytes (too_large)")
        if name in files:
            raise BadInput(f"two files are called {name}")
        files[name] = path.read_bytes()
    return files


def _add(args: argparse.Namespace) -> int:
    def run(settings: Any, store: Any) -> int:
        params = build_params(args.param, args.params_json)
        files = read_files(args.file)
        spec = store.register(args.kind, args.name, files, params, voice_id=args.id)
        from voice_chat.server.api.voice_io import voice_json

        body = voice_json(spec, False, store.get)
        if args.json:
            print(json.dumps(body, indent=2, ensure_ascii=False))
            return 0
        print(f"registered {spec.id} ({spec.engine}, {body['sample_rate'] or '?'} Hz)")
        if body.get("message"):
            print(body["message"])
        return 0

    return _run(args, run)


# ------------------------------------------------------------------ preview, remove, assign
def _preview(args: argparse.Namespace) -> int:
    def run(settings: Any, store: Any) -> int:
        from voice_chat.audio.pcm import wav_bytes
        from voice_chat.engines.base import EngineError
        from voice_chat.engines.tts import build_synthesizer
        from voice_chat.server.api.voice_io import MAX_PREVIEW_TEXT
        from voice_chat.voicelab import limits
        from voice_chat.voicelab.synth_check import synthesize_all

        text = limits.TEST_SENTENCE if args.text is None else args.text.strip()
        if not text or len(text) > MAX_PREVIEW_TEXT:
            raise BadInput(f"--text must have 1 to {MAX_PREVIEW_TEXT} characters")
        spec = store.get(args.id)
        try:
            synth = build_synthesizer(spec, store.get, settings.tts_threads)
        except EngineError as exc:
            return _fail(f"{exc} (synthesis_failed)")
        audio, _ = synthesize_all(synth, text)
        data = wav_bytes(audio, synth.sample_rate)
        if args.output == "-":
            sys.stdout.buffer.write(data)
        else:
            Path(args.output).write_bytes(data)
            seconds = audio.size / synth.sample_rate
            print(f"wrote {args.output} ({seconds:.1f} s, {synth.sample_rate} Hz)")
        return 0

    return _run(args, run)


def _remove(args: argparse.Namespace) -> int:
    def run(settings: Any, store: Any) -> int:
        users = [c.id for c in common.characters(settings).list() if c.voice == args.id]
        store.remove(args.id, in_use_by=users, force=args.force)
        print(f"removed {args.id}" + (f" (was used by {', '.join(users)})" if users else ""))
        return 0

    return _run(args, run)


def _assign(args: argparse.Namespace) -> int:
    def run(settings: Any, store: Any) -> int:
        store.get(args.id)  # unknown_voice
        character = common.characters(settings).set_voice(args.character, args.id)
        print(f"{character.id} now speaks with {args.id}")
        return 0

    return _run(args, run)
