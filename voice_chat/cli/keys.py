"""``voice-chat keys create|list|revoke``: API keys in the conversation database.

Works on the database directly (no server needed; a running server sees a new key at once and
a revoked one within seconds). ``--data`` or ``VOICE_CHAT_DATA`` selects the data directory,
``VOICE_CHAT_DATABASE_URL`` the database. Exit codes: 0 done, 2 bad input, 1 store failure.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import Any

from voice_chat.memory.keys import ROLES


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    keys = sub.add_parser("keys", help="create, list or revoke API keys (for auth on)")
    keys.set_defaults(func=lambda args: _usage(keys))
    cmds = keys.add_subparsers(dest="keys_command")
    create = cmds.add_parser("create", help="create a key; it is printed once, keep it")
    create.add_argument("--role", choices=ROLES, required=True, help="admin or user")
    create.add_argument("--name", help="a label for the key (default: role and id)")
    create.add_argument("--user", help="user id owning its conversations (default key-<id>)")
    create.set_defaults(func=_create)
    ls = cmds.add_parser("list", help="list keys (never the keys themselves)")
    ls.add_argument("--json", action="store_true", help="machine-readable output")
    ls.set_defaults(func=_list)
    revoke = cmds.add_parser("revoke", help="revoke a key by its id")
    revoke.add_argument("id", help="the key id (the 10 hex digits after vc_)")
    revoke.set_defaults(func=_revoke)
    for parser in (create, ls, revoke):
        parser.add_argument("--data", help="data directory (default: VOICE_CHAT_DATA)")


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def _run(args: argparse.Namespace, fn: Any) -> int:
    from pydantic import ValidationError

    from voice_chat.memory import MemoryStoreError, Store
    from voice_chat.memory.keys import KeyStore
    from voice_chat.settings import load_settings

    try:
        settings = load_settings(data=getattr(args, "data", None))
    except ValidationError as exc:
        print(f"voice-chat keys: invalid setting: {exc.errors()[0]['msg']}", file=sys.stderr)
        return 2
    try:
        with Store(settings.database) as store:
            return int(fn(KeyStore(store)))
    except MemoryStoreError as exc:
        print(f"voice-chat keys: {exc}", file=sys.stderr)
        return 2 if exc.code == "invalid_argument" else 1


def _create(args: argparse.Namespace) -> int:
    def run(ks: Any) -> int:
        key = ks.create(args.role, name=args.name, user_id=args.user)
        record = ks.get(key.split("_")[1])
        print(key)
        print(
            f"created {record.role} key {record.id} ({record.name}) for user {record.user_id}; "
            "it is shown only now: store it somewhere safe",
            file=sys.stderr,
        )
        return 0

    return _run(args, run)


def _when(stamp: float | None) -> str:
    if stamp is None:
        return "-"
    return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%d %H:%M")


def _list(args: argparse.Namespace) -> int:
    def run(ks: Any) -> int:
        keys = ks.list()
        if args.json:
            print(json.dumps([k.to_dict() for k in keys], indent=2))
            return 0
        if not keys:
            print("no keys (create one: voice-chat keys create --role admin)", file=sys.stderr)
            return 0
        print(f"{'id':<10}  {'role':<5}  {'user':<20}  {'created':<16}  {'revoked':<16}  name")
        for k in keys:
            print(
                f"{k.id:<10}  {k.role:<5}  {k.user_id[:20]:<20}  {_when(k.created_at):<16}  "
                f"{_when(k.revoked_at):<16}  {k.name}"
            )
        return 0

    return _run(args, run)


def _revoke(args: argparse.Namespace) -> int:
    def run(ks: Any) -> int:
        if not ks.revoke(args.id):
            print(f"voice-chat keys: no active key {args.id!r}", file=sys.stderr)
            return 2
        print(f"revoked key {args.id}", file=sys.stderr)
        return 0

    return _run(args, run)
