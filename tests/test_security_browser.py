"""The page against a server with auth on: it asks for a key, refuses a wrong one, and then
works (characters, a typed turn with a spoken reply) on the short-lived token cookie."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_browser import browser_page, wait_vc

from voice_chat.client.launcher import ROOT, LiveServer, start_server

pytestmark = [pytest.mark.slow, pytest.mark.browser]


@pytest.fixture(scope="module")
def server_and_key(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, str]]:
    data = tmp_path_factory.mktemp("auth-page")
    done = subprocess.run(
        [sys.executable, "-m", "voice_chat", "keys", "create", "--role", "user", "--user", "pat"],
        cwd=ROOT,
        env={**os.environ, "VOICE_CHAT_DATA": str(data)},
        capture_output=True,
        text=True,
        check=True,
    )
    srv = start_server(data, env={"VOICE_CHAT_AUTH": "on"})
    yield srv, done.stdout.strip()
    srv.stop()


def test_page_asks_for_a_key_then_talks(
    server_and_key: tuple[LiveServer, str], tmp_path: Path
) -> None:
    server, key = server_and_key
    with browser_page(None) as page:
        page.goto(server.url + "/")  # type: ignore[attr-defined]
        dialog = page.locator("dialog[open]:has-text('API key needed')")  # type: ignore[attr-defined]
        dialog.wait_for(timeout=15000)
        dialog.locator("input").fill("vc_0123456789_" + "x" * 43)
        dialog.locator("button[type=submit]").click()
        page.locator("dialog[open] .auth-note:has-text('not accepted')").wait_for(timeout=10000)  # type: ignore[attr-defined]
        page.locator("dialog[open] input").fill(key)  # type: ignore[attr-defined]
        page.locator("dialog[open] button[type=submit]").click()  # type: ignore[attr-defined]
        page.wait_for_selector(".card[data-id='nova']", timeout=15000)  # type: ignore[attr-defined]
        assert page.evaluate("localStorage.getItem('voiceChat.user')") == "pat"  # type: ignore[attr-defined]
        cookie = [c for c in page.context.cookies() if c["name"] == "voice_chat_token"]  # type: ignore[attr-defined]
        assert cookie and cookie[0]["httpOnly"] and cookie[0]["sameSite"] == "Strict"
        page.click(".card[data-id='nova']")  # type: ignore[attr-defined]
        wait_vc(page, "vc.connection === 'open'", 30)
        page.fill("#text-input", "Hello there!")  # type: ignore[attr-defined]
        page.press("#text-input", "Enter")  # type: ignore[attr-defined]
        wait_vc(page, "vc.stats.responses.slice(1).find(r => r.audioMsScheduled > 0)", 90)
        assert key not in page.content()  # type: ignore[attr-defined]
