"""Start-up checks of ``voice-chat serve``: who could reach this server, and is that safe."""

from __future__ import annotations

import structlog

from voice_chat.server.security import is_loopback
from voice_chat.settings import Settings

log = structlog.get_logger(__name__)


def check_exposure(settings: Settings) -> str | None:
    """A reason not to start (printed, exit 2), or None. Logs warnings for risky set-ups."""
    cert, key = settings.ssl_certfile, settings.ssl_keyfile
    if (cert is None) != (key is None):
        return "TLS needs both --ssl-certfile and --ssl-keyfile"
    for name, path in (("--ssl-certfile", cert), ("--ssl-keyfile", key)):
        if path is not None and not path.is_file():
            return f"{name} {path}: no such file"
    public = not is_loopback(settings.host)
    if public and settings.auth == "off":
        if not settings.allow_insecure_public:
            return (
                f"refusing to listen on {settings.host}, which other machines can reach, with "
                "auth off: anyone on the network could talk to your characters, read every "
                "conversation, and import or delete characters and voices. Turn auth on "
                "(--auth on, or VOICE_CHAT_AUTH=on) and create a key with "
                "`voice-chat keys create --role admin`; or, if this network is trusted, pass "
                "--allow-insecure-public (VOICE_CHAT_ALLOW_INSECURE_PUBLIC=1)"
            )
        log.warning(
            "INSECURE: listening on a public address with auth off; anyone who can reach "
            "this port can use the server and read every conversation",
            host=settings.host,
            port=settings.port,
        )
    if public and cert is None:
        log.warning(
            "listening on a public address without TLS: keys and audio travel in clear; "
            "use --ssl-certfile/--ssl-keyfile or a TLS reverse proxy (docs/security.md)",
            host=settings.host,
        )
    if settings.auth == "on":
        _warn_without_keys(settings)
    return None


def _warn_without_keys(settings: Settings) -> None:
    from voice_chat.memory import MemoryStoreError, Store
    from voice_chat.memory.keys import KeyStore

    try:
        with Store(settings.database) as store:
            count = KeyStore(store).active_count()
    except MemoryStoreError as exc:
        log.error("auth is on but the key store cannot be read", error=str(exc))
        return
    if count == 0:
        log.warning(
            "auth is on but there is no API key yet: every request will be refused; "
            "create one with `voice-chat keys create --role admin`"
        )
