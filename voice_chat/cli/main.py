"""The ``voice-chat`` command line."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

if TYPE_CHECKING:
    from voice_chat.settings import Settings


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from voice_chat.cli.exposure import check_exposure
    from voice_chat.logs import configure
    from voice_chat.runtime.allocator import limit_arenas
    from voice_chat.server.app import create_app
    from voice_chat.server.security import DenialLogFilter
    from voice_chat.server.transport import http_protocol
    from voice_chat.settings import load_settings

    try:
        settings = load_settings(
            host=args.host,
            port=args.port,
            data=args.data,
            stt_model=args.stt_model,
            llm_engine=args.llm_engine,
            llm_model=args.llm_model,
            llm_preset=args.preset,
            llm_base_url=args.llm_base_url,
            default_character=args.character,
            log_level=args.log_level,
            log_format=args.log_format,
            database_url=args.database_url,
            auth=args.auth,
            allow_insecure_public=args.allow_insecure_public or None,
            ssl_certfile=args.ssl_certfile,
            ssl_keyfile=args.ssl_keyfile,
            shared_dir=args.shared_dir,
            backend=args.backend,
            ray_address=args.ray_address,
        )
    except ValidationError as exc:
        print(f"voice-chat: invalid setting: {_first_error(exc)}", file=sys.stderr)
        return 2
    configure(settings.log_level, settings.log_format)
    problem = check_exposure(settings)
    if problem is not None:
        print(f"voice-chat: {problem}", file=sys.stderr)
        return 2
    settings.data.mkdir(parents=True, exist_ok=True)
    limit_arenas(settings.malloc_arenas)  # before any inference thread starts
    if settings.backend == "ray":
        from voice_chat.runtime.ray.launch import serve_on_ray

        def application(s: Settings) -> Any:  # imported only once Ray is known to be there
            from voice_chat.server.ray_app import application

            return application(s)

        return serve_on_ray(settings, application)
    try:
        app = create_app(settings)
    except ValueError as exc:  # e.g. a malformed allowed_hosts entry
        print(f"voice-chat: invalid setting: {exc}", file=sys.stderr)
        return 2
    logging.getLogger("uvicorn.error").addFilter(DenialLogFilter())
    protocol = http_protocol(
        settings.max_connections, settings.max_connections_per_client, settings.header_timeout_s
    )
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level="warning",
        http=protocol,
        # The transport refuses (close 1009) what the protocol would refuse anyway, before
        # buffering it: no 16 MiB frames held in memory. OpenAI Realtime events carry base64
        # audio: they may be up to max_event_bytes.
        ws_max_size=max(
            settings.max_frame_bytes, settings.max_text_bytes, settings.max_event_bytes
        ),
        ssl_certfile=str(settings.ssl_certfile) if settings.ssl_certfile else None,
        ssl_keyfile=str(settings.ssl_keyfile) if settings.ssl_keyfile else None,
    )
    return 0


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "value"
    return f"{where}: {err['msg']}"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="voice-chat", description="Talk out loud with AI characters, offline."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the server (env VOICE_CHAT_* sets defaults)")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default 8000)")
    serve.add_argument("--data", help="data directory for user voices, characters, history")
    serve.add_argument("--stt-model", help="embedded:tiny.en, embedded:base, a folder or a name")
    serve.add_argument("--llm-engine", choices=["llama", "openai"])
    serve.add_argument(
        "--preset",
        help="LLM preset: fast (SmolLM2-135M, the default) or quality (Qwen2.5-1.5B, an extra)",
    )
    serve.add_argument("--llm-model", help="embedded:smollm2-135m, a .gguf path, or a model name")
    serve.add_argument("--llm-base-url", help="OpenAI-compatible server URL (llm-engine openai)")
    serve.add_argument("--character", help="default character id")
    serve.add_argument(
        "--database-url",
        help="sqlite:///path.db (default: in --data) or postgresql://user:pw@host/db",
    )
    serve.add_argument("--shared-dir", help="user voices and characters shared by all replicas")
    serve.add_argument("--backend", choices=["local", "ray"], help="where the engines run")
    serve.add_argument("--ray-address", help="Ray cluster for --backend ray (default: local)")
    serve.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    serve.add_argument("--log-format", choices=["json", "console"])
    serve.add_argument("--auth", choices=["off", "on"], help="require API keys (default off)")
    serve.add_argument(
        "--allow-insecure-public",
        action="store_true",
        help="listen on a non-loopback address with auth off (anyone who can reach it can use it)",
    )
    serve.add_argument("--ssl-certfile", help="TLS certificate (PEM): serve https and wss")
    serve.add_argument("--ssl-keyfile", help="TLS private key (PEM)")
    serve.set_defaults(func=_serve)
    _register_optional(sub)
    return parser


def _register_optional(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Sub-commands that live in their own packages."""
    import importlib
    import importlib.util

    for module in (
        "voice_chat.client.cli",
        "voice_chat.cli.voices",
        "voice_chat.cli.characters",
        "voice_chat.cli.keys",
    ):
        if importlib.util.find_spec(module.rsplit(".", 1)[0]) is None:
            continue
        if importlib.util.find_spec(module) is None:
            continue
        mod = importlib.import_module(module)
        register = getattr(mod, "register", None)
        if register is not None:
            register(sub)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
