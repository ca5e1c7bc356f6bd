"""The FastAPI app: health, characters, voices, the page, and the realtime websocket."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import structlog
from fastapi import FastAPI, WebSocket
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST

from voice_chat.audio.pcm import MAX_RATE, MIN_RATE, MODEL_RATE
from voice_chat.characters.registry import CharacterError
from voice_chat.errors import VoiceChatError
from voice_chat.memory.store import CONVERSATION_ID, DEFAULT_CONVERSATION
from voice_chat.metrics import SESSIONS, render
from voice_chat.runtime.local import MAX_SPEED, MIN_SPEED, Runtime
from voice_chat.server.api import auth as auth_api
from voice_chat.server.api import characters, conversations, models, presets, voice_preview, voices
from voice_chat.server.api.deps import api_error
from voice_chat.server.auth import Authenticator, AuthMiddleware, identity_of
from voice_chat.server.encoding import error_event
from voice_chat.server.ga import connect as ga_connect
from voice_chat.server.ga.session import GASession
from voice_chat.server.limits import LimitsMiddleware
from voice_chat.server.security import HostOriginMiddleware, HostPolicy
from voice_chat.server.session import RealtimeSession
from voice_chat.settings import Settings

log = structlog.get_logger(__name__)
WEB_DIR = Path(__file__).resolve().parent.parent / "web"
ROUTERS = (
    auth_api.router,
    characters.router,
    voice_preview.router,
    voices.router,
    conversations.router,
    models.router,
    presets.router,
)


def create_app(settings: Settings, *, runtime: Runtime | None = None) -> FastAPI:
    rt = runtime or Runtime(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await asyncio.to_thread(clean_staging, rt)
        loading = asyncio.create_task(_load(rt))
        yield
        loading.cancel()
        await rt.close()

    app = FastAPI(title="voice_chat", version="0.1.0", lifespan=lifespan)
    app.state.runtime = rt
    # the one place errors become HTTP answers: {"error": {"code", "message"}} with their status
    app.add_exception_handler(VoiceChatError, api_error)
    app.add_exception_handler(OSError, api_error)
    _secure(app, rt)

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        memory = rt.store.health()  # calls go on without it: reported, never a 503
        if rt.ready:
            return JSONResponse({"status": "ok", "sessions": rt.sessions, "memory": memory})
        status = "failed" if rt.load_error else "loading"
        body = {"status": status, "error": rt.load_error, "memory": memory}
        return JSONResponse(body, status_code=503)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(render(), media_type=CONTENT_TYPE_LATEST)

    for router in ROUTERS:
        app.include_router(router)

    @app.websocket("/v1/realtime")
    async def realtime(ws: WebSocket) -> None:
        await _realtime(rt, ws)

    if (WEB_DIR / "index.html").is_file():
        app.mount(
            "/static", StaticFiles(directory=WEB_DIR / "static", check_dir=False), name="static"
        )

        @app.get("/", include_in_schema=False)
        async def index() -> FileResponse:
            return FileResponse(WEB_DIR / "index.html")

    return app


def session_user(scope: dict[str, object], asked: str | None, auth_on: bool) -> str:
    """The user a websocket talks as: with auth on, the key's user (never a query
    parameter); with auth off, ``?user=`` or else a fresh random id of its own, so a client
    without one never continues a stranger's conversation."""
    if auth_on:
        identity = identity_of(scope)
        if identity is None:
            raise PermissionError("auth_required", "this server requires an API key")
        if asked and asked != identity.user_id:
            raise PermissionError(
                "forbidden",
                f"this key talks as user {identity.user_id!r}, not {asked[:64]!r}: "
                "leave out ?user=",
            )
        return identity.user_id
    return asked or "anon-" + uuid.uuid4().hex


def clean_staging(rt: Runtime) -> None:
    """Remove what a killed import or registration left in the staging folders."""
    from voice_chat.voicelab import VoiceStore

    try:
        cards = rt.characters.library.clean_staging()
        voices = VoiceStore(rt.settings.data, rt.settings.voices_dir).cleanup_stale()
    except OSError as exc:
        log.warning("could not clean the staging folders", error=str(exc))
        return
    if cards or voices:
        log.info("removed staging leftovers", characters=cards, voices=voices)


def _secure(app: FastAPI, rt: Runtime) -> None:
    """The security layers, outermost first: Host/Origin checks, CORS (only for configured
    origins), authentication, per-client limits (docs/security.md)."""
    policy = HostPolicy(rt.settings)
    app.state.authenticator = authenticator = Authenticator(rt)
    app.add_middleware(LimitsMiddleware, settings=rt.settings)
    app.add_middleware(AuthMiddleware, runtime=rt, authenticator=authenticator)
    if policy.configured_origins or policy.any_origin:
        from starlette.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=["*"] if policy.any_origin else policy.configured_origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["authorization", "content-type"],
        )
    app.add_middleware(HostOriginMiddleware, policy=policy)


async def _load(rt: Runtime) -> None:
    try:
        await asyncio.to_thread(rt.load)
        check = getattr(rt.llm, "check", None)
        if check is not None:
            try:
                await check()
            except Exception as exc:  # noqa: BLE001 - a remote LLM may come up later
                log.warning("LLM server not reachable yet", error=str(exc))
        await rt.warm_up()
        rt.ready = True
        await _warm_personas(rt)
    except Exception as exc:  # noqa: BLE001 - reported by /healthz and the log
        rt.load_error = str(exc)
        log.error("model loading failed", error=str(exc))


async def _warm_personas(rt: Runtime) -> None:
    """Every character's persona into the LLM's state cache, so a first reply finds it ready.

    Runs after start-up, at the lowest priority: a reply that waits for the model goes first.
    """
    from voice_chat.pipeline.prompting import build_messages

    try:
        characters = await asyncio.to_thread(rt.characters.list)
    except Exception as exc:  # noqa: BLE001 - an optimisation only
        log.warning("persona prefill skipped", error=str(exc))
        return
    budget = rt.prompt_budget(rt.settings.max_reply_tokens)
    for character in characters:
        try:
            messages = build_messages(
                character,
                [],
                count_tokens=rt.count_tokens,
                count_prompt=rt.count_prompt,
                budget_tokens=budget,
            )
            await rt.prefill(messages, background=True)
        except Exception as exc:  # noqa: BLE001 - an optimisation only
            log.warning("persona prefill failed", character=character.id, error=str(exc))


async def _refuse(ws: WebSocket, code: str, message: str, close_code: int) -> None:
    """Tell the client why, then close: the session cannot start."""
    await ws.send_json(error_event(code, message))
    await ws.close(code=close_code, reason=code)


async def _realtime(rt: Runtime, ws: WebSocket) -> None:
    await ws.accept()
    settings = rt.settings
    query = dict(ws.query_params)
    ga = ga_connect.wants_ga(query)
    refuse = ga_connect.refuse if ga else _refuse
    try:
        query["user"] = session_user(ws.scope, query.get("user"), settings.auth == "on")
    except PermissionError as exc:
        return await refuse(ws, exc.args[0], exc.args[1], 1008)
    if not rt.ready:
        return await refuse(ws, "not_ready", "models are still loading; retry shortly", 1013)
    if rt.sessions >= settings.max_sessions:
        limit = f"the server holds its limit of {settings.max_sessions} sessions"
        return await refuse(ws, "too_many_sessions", limit, 1013)
    if ga:
        return await _realtime_ga(rt, ws, query)
    try:
        wanted = query.get("character") or settings.default_character
        character = await asyncio.to_thread(rt.characters.get, wanted)  # reads card files
    except CharacterError as exc:
        return await _refuse(ws, exc.code, str(exc), 1008)
    try:
        rate = int(query.get("input_sample_rate", MODEL_RATE))
        if not MIN_RATE <= rate <= MAX_RATE:
            raise ValueError
    except ValueError:
        bad_rate = "input_sample_rate must be an integer from 8000 to 48000"
        return await _refuse(ws, "invalid_event", bad_rate, 1008)
    try:
        speed = float(query.get("speed") or 1.0)
        if not MIN_SPEED <= speed <= MAX_SPEED:
            raise ValueError
    except ValueError:
        bad_speed = f"speed must be a number from {MIN_SPEED} to {MAX_SPEED} (1 is normal)"
        return await _refuse(ws, "invalid_event", bad_speed, 1008)
    if not CONVERSATION_ID.match(query.get("conversation") or DEFAULT_CONVERSATION):
        bad_id = "conversation must be 1-64 lower-case letters, digits, _ or -"
        return await _refuse(ws, "invalid_event", bad_id, 1008)
    rt.sessions += 1
    SESSIONS.inc()
    try:
        session = await RealtimeSession.open(rt, ws, character, query, input_rate=rate)
        await session.run()
    finally:
        rt.sessions -= 1
        SESSIONS.dec()


async def _realtime_ga(rt: Runtime, ws: WebSocket, query: dict[str, str]) -> None:
    """The OpenAI Realtime dialect: ``?model=<character>`` (docs/protocol.md)."""
    model = query.get("model") or rt.settings.default_character
    try:
        character = await asyncio.to_thread(rt.characters.get, model)
    except CharacterError as exc:
        message = f"no character (model) {model[:64]!r}; GET /v1/models lists them"
        if exc.code != "unknown_character":
            message = str(exc)
        return await ga_connect.refuse(ws, "unknown_model", message, 1008, param="model")
    rt.sessions += 1
    SESSIONS.inc()
    try:
        session = await GASession.open(rt, ws, character, query)
        await session.run()
    finally:
        rt.sessions -= 1
        SESSIONS.dec()
