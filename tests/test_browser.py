"""The browser page, end to end: headless Chromium with a fake microphone, the real server.

Chromium's fake capture device plays a WAV file (espeak-ng speech) in a loop, so the page
hears a real utterance through getUserMedia -> capture AudioWorklet -> websocket, and the
reply comes back through the playback AudioWorklet. The page's test hook
``window.voiceChat`` exposes the state and audio counters.

Needs Debian's ``chromium`` and ``espeak-ng`` and the ``playwright`` Python package (no
``playwright install``: the system Chromium is used). Screenshots go to a temporary folder,
or to ``$VOICE_CHAT_SCREENSHOTS`` when set (``docs/screenshots`` refreshes the docs).
"""

from __future__ import annotations

import os
import shutil
import wave
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from speech import espeak

pytestmark = [pytest.mark.slow, pytest.mark.browser]

CHROMIUM = os.environ.get("VOICE_CHAT_CHROMIUM", "/usr/bin/chromium")
RATE = 48000


def _require_browser() -> None:
    pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")


def speech_wav(path: Path, text: str, lead_s: float, tail_s: float) -> Path:
    """Write ``lead_s`` silence + spoken ``text`` + ``tail_s`` silence as 48 kHz mono PCM16."""
    audio = espeak(text, rate=RATE)
    audio = audio / max(1e-6, float(np.abs(audio).max())) * 0.6
    full = np.concatenate(
        [np.zeros(int(lead_s * RATE)), audio, np.zeros(int(tail_s * RATE))]
    ).astype(np.float32)
    pcm = (np.clip(full, -1, 1) * 32767).astype("<i2").tobytes()
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(pcm)
    return path


def screenshot_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``$VOICE_CHAT_SCREENSHOTS`` when set (e.g. ``docs/screenshots``), else a temporary folder."""
    target = os.environ.get("VOICE_CHAT_SCREENSHOTS")
    path = Path(target) if target else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return screenshot_dir(tmp_path_factory)


@contextmanager
def browser_page(
    wav: Path | None, *, width: int = 1100, height: int = 760, mobile: bool = False
) -> Iterator[object]:
    """A fresh headless Chromium whose microphone plays ``wav`` (None: no microphone at all)."""
    _require_browser()
    from playwright.sync_api import sync_playwright

    args = [
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--autoplay-policy=no-user-gesture-required",
    ]
    if wav is not None:
        args += [
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={wav}",
        ]
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=args, headless=True)
        try:
            ctx = browser.new_context(
                viewport={"width": width, "height": height},
                device_scale_factor=1 if not mobile else 2,
                is_mobile=mobile,
                has_touch=mobile,
            )
            page = ctx.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            yield page
            assert not errors, f"uncaught errors in the page: {errors}"
        finally:
            browser.close()


def vc(page: object, expr: str) -> object:
    return page.evaluate(f"(() => {{ const vc = window.voiceChat; return {expr}; }})()")  # type: ignore[attr-defined]


def wait_vc(page: object, expr: str, timeout_s: float) -> object:
    """Wait until ``expr`` (JS, with ``vc`` = window.voiceChat) is truthy; fail with a dump."""
    try:
        handle = page.wait_for_function(  # type: ignore[attr-defined]
            f"() => {{ const vc = window.voiceChat; return {expr}; }}", timeout=timeout_s * 1000
        )
        return handle.json_value()
    except Exception as exc:
        dump = vc(
            page,
            "({state: vc.state, conn: vc.connection, mic: vc.mic, "
            "transcript: vc.transcript(), stats: {...vc.stats, "
            "events: vc.stats.events.slice(-40)}})",
        )
        raise AssertionError(f"timed out waiting for {expr}\n{dump}") from exc


def open_call(page: object, url: str, character: str) -> None:
    page.goto(url + "/")  # type: ignore[attr-defined]
    page.wait_for_selector(f".card[data-id='{character}']", timeout=15000)  # type: ignore[attr-defined]
    page.click(f".card[data-id='{character}']")  # type: ignore[attr-defined]
    wait_vc(page, "vc.connection === 'open'", 30)


USER_TURN = (
    "vc.transcript().find(m => m.role === 'user' && /favou?rite/i.test(m.text) "
    "&& /colou?r/i.test(m.text))"
)


def test_spoken_turn_in_the_browser(live_server, shots: Path, tmp_path: Path) -> None:
    wav = speech_wav(tmp_path / "turn.wav", "What is your favorite color?", lead_s=8.0, tail_s=9.0)
    with browser_page(wav) as page:
        page.goto(live_server.url + "/")
        page.wait_for_selector(".card[data-id='nova']", timeout=15000)
        cards = page.locator(".card[data-id]").count()
        assert cards >= 3
        page.screenshot(path=str(shots / "picker.png"))

        page.click(".card[data-id='nova']")
        wait_vc(page, "vc.connection === 'open'", 30)
        assert vc(page, "vc.mic") in ("starting", "on")
        # The greeting is played, then the page listens.
        wait_vc(
            page, "vc.stats.responses.length > 0 && vc.stats.responses[0].audioMsScheduled > 0", 30
        )
        greeted = "vc.stats.responses[0].status !== 'in_progress' && vc.state === 'listening'"
        wait_vc(page, f"vc.mic === 'on' && {greeted}", 30)
        page.wait_for_timeout(400)  # let the ring settle on the listening colour
        page.screenshot(path=str(shots / "listening.png"))

        # Mute once the server has heard the end of the utterance: the fake microphone loops,
        # and the repetition must not extend the turn on a slow machine.
        wait_vc(page, "vc.stats.events.includes('input_audio_buffer.speech_stopped')", 45)
        page.click("#mute")
        assert page.get_attribute("#mute", "aria-pressed") == "true"
        # What the fake microphone said shows up as the user's caption...
        wait_vc(page, USER_TURN, 45)
        assert vc(page, "vc.stats.framesSent") > 50
        # ...and the character answers, in text and in sound.
        reply = (
            "(() => { const t = vc.transcript(); const i = t.findIndex(m => m.role === 'user' && "
            "/colou?r/i.test(m.text)); return i >= 0 && t.slice(i + 1).some(m => m.role === "
            "'assistant' && m.text.replace(/— interrupted/, '').trim().length > 0); })()"
        )
        wait_vc(page, reply, 60)
        answered = (
            "vc.stats.responses.slice(1).find(r => r.text.trim() && r.audioMsScheduled > 300 "
            "&& r.playedMs > 0)"
        )
        r = wait_vc(page, answered, 60)
        assert r["sampleRate"] in (16000, 22050, 24000, 44100, 48000)
        assert r["audioFrames"] > 0
        assert vc(page, "vc.stats.audioFramesReceived") >= r["audioFrames"]
        assert vc(page, "vc.stats.audioMsScheduled") >= r["audioMsScheduled"]
        try:
            wait_vc(page, "vc.state === 'speaking'", 5)
            page.wait_for_timeout(600)
        except AssertionError:
            pass  # the reply may already be over; the screenshot still shows the transcript
        page.screenshot(path=str(shots / "speaking.png"))

        done = "vc.stats.responses.slice(1).find(r => r.metrics && r.metrics.first_audio_ms)"
        assert wait_vc(page, done, 30)["metrics"]["first_audio_ms"] > 0
        # The user caption is the transcript the server sent.
        user = vc(page, USER_TURN)
        assert "favorite" in user["text"].lower() or "favourite" in user["text"].lower()


def test_barge_in_stops_playback(live_server, shots: Path, tmp_path: Path) -> None:
    # The fake microphone repeats the utterance every ~2.5 s. The page is muted while the
    # server answers the first one, and unmuted once the reply is playing: the next
    # repetition then lands in the middle of the reply.
    wav = speech_wav(
        tmp_path / "barge.wav", "Please tell me a long story about the sea.", lead_s=0.2, tail_s=0.5
    )
    with browser_page(wav) as page:
        open_call(page, live_server.url, "nova")
        wait_vc(page, "vc.stats.events.includes('input_audio_buffer.speech_stopped')", 45)
        page.click("#mute")
        wait_vc(page, "vc.transcript().some(m => m.role === 'user' && /story/i.test(m.text))", 45)
        greeting = vc(page, "vc.stats.responses[0].id")
        # Wait until a reply to the user (not the greeting) is audibly playing, then unmute.
        playing = (
            f"vc.state === 'speaking' && vc.stats.responses.some(r => r.id !== {greeting!r} "
            "&& r.status !== 'cancelled' && r.startedPlayingAt)"
        )
        wait_vc(page, playing, 60)
        page.click("#mute")
        barge = (
            f"vc.stats.bargeIns.find(b => b.reason === 'vad' && b.responseId !== {greeting!r} "
            "&& b.playedMs > 0)"
        )
        hit = wait_vc(page, barge, 30)
        # Playback stopped at once: the worklet went silent within 100 ms (audio clock).
        assert hit["stopMs"] < 100, hit
        assert hit["ackMs"] < 1000, hit
        rid = hit["responseId"]
        resp = f"vc.stats.responses.find(r => r.id === {rid!r})"
        wait_vc(page, f"{resp}.status === 'cancelled'", 30)
        r = vc(page, resp)
        assert r["interrupted"] is True
        assert r["truncatedMs"] == hit["playedMs"]
        # It played only part of what arrived, and no more audio of it was scheduled after.
        assert r["playedMs"] <= r["audioMsScheduled"] + 1
        # The page shows the cut reply as interrupted.
        page.wait_for_selector(".msg.bot.interrupted .tag", timeout=5000)
        assert "interrupted" in page.inner_text(".msg.bot.interrupted .tag")
        # The server confirmed the truncation with what was heard.
        wait_vc(page, f"{resp}.heardText !== null", 10)
        page.screenshot(path=str(shots / "barge-in.png"))


def test_phone_layout_without_microphone(live_server, shots: Path) -> None:
    """No microphone: a readable error, and the call still works by typing (375x667)."""
    with browser_page(None, width=375, height=667, mobile=True) as page:
        page.goto(live_server.url + "/")
        page.wait_for_selector(".card[data-id='pip']", timeout=15000)
        page.screenshot(path=str(shots / "phone-picker.png"))
        # Keyboard: Tab to a card and press Enter.
        page.focus(".card[data-id='pip']")
        page.keyboard.press("Enter")
        wait_vc(page, "vc.connection === 'open'", 30)
        wait_vc(page, "['none', 'denied', 'failed', 'busy'].includes(vc.mic)", 15)
        toast = page.locator(".toast-error").first
        toast.wait_for(timeout=5000)
        assert "microphone" in toast.inner_text().lower()
        page.screenshot(path=str(shots / "error-no-microphone.png"))

        # The page is usable at phone size: nothing overflows sideways.
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
        page.fill("#text-input", "Do you like pizza?")
        page.press("#text-input", "Enter")
        typed = "vc.transcript().some(m => m.role === 'user' && m.text === 'Do you like pizza?')"
        wait_vc(page, typed, 5)
        answered = (
            "(() => { const t = vc.transcript(); const i = t.findIndex(m => m.text === "
            "'Do you like pizza?'); return i >= 0 && t.slice(i + 1).some(m => m.role === "
            "'assistant' && m.text.trim()); })()"
        )
        wait_vc(page, answered, 60)
        r = wait_vc(page, "vc.stats.responses.slice(1).find(r => r.audioMsScheduled > 0)", 60)
        assert r["audioFrames"] > 0
        page.locator(".toast button:has-text('Dismiss')").first.click()
        page.wait_for_timeout(800)
        page.screenshot(path=str(shots / "phone-call.png"))


def test_push_to_talk(live_server, shots: Path, tmp_path: Path) -> None:
    """Manual turns: hold Space to talk, release to commit; a press during the reply stops it."""
    wav = speech_wav(
        tmp_path / "ptt.wav", "Tell me about the weather today.", lead_s=0.1, tail_s=0.5
    )
    with browser_page(wav) as page:
        # The mode is remembered (localStorage, set before the page's scripts run), and
        # sent when connecting (turn_detection=manual).
        page.add_init_script("localStorage.setItem('voiceChat.mode', 'manual')")
        page.goto(live_server.url + "/")
        page.wait_for_selector(".card[data-id='nova']", timeout=15000)
        assert vc(page, "vc.mode") == "manual"
        page.click(".card[data-id='nova']")
        wait_vc(page, "vc.connection === 'open'", 30)
        wait_vc(page, "vc.session.turn_detection.type === 'manual'", 10)
        assert page.is_visible("#ptt")
        # The switch in the page changes the server's mode with session.update.
        page.click(".mode label:has-text('Hands-free')")
        wait_vc(page, "vc.session.turn_detection.type === 'server_vad'", 10)
        assert not page.is_visible("#ptt")
        page.click(".mode label:has-text('Push to talk')")
        wait_vc(page, "vc.session.turn_detection.type === 'manual'", 10)
        events_from = vc(page, "vc.stats.events.length")
        # Whatever the greeting did, wait for quiet.
        wait_vc(page, "vc.stats.responses.every(r => r.status !== 'in_progress')", 60)
        wait_vc(page, "vc.state === 'listening' && vc.mic === 'on'", 30)
        sent_before = vc(page, "vc.stats.framesSent")
        page.wait_for_timeout(500)
        assert vc(page, "vc.stats.framesSent") == sent_before  # nothing is sent until pressed

        page.evaluate("document.activeElement && document.activeElement.blur()")
        page.keyboard.down("Space")
        wait_vc(page, "document.querySelector('#ptt').classList.contains('pressed')", 2)
        page.wait_for_timeout(3500)
        page.screenshot(path=str(shots / "push-to-talk.png"))
        page.keyboard.up("Space")
        weather = "vc.transcript().some(m => m.role === 'user' && /weather/i.test(m.text))"
        wait_vc(page, weather, 45)
        events = vc(page, f"vc.stats.events.slice({events_from})")
        assert "input_audio_buffer.speech_started" not in events  # no VAD in manual mode

        # Press again while the reply is playing: it stops at once and is cut in the history.
        wait_vc(page, "vc.state === 'speaking'", 60)
        page.wait_for_timeout(400)
        page.keyboard.down("Space")
        hit = wait_vc(page, "vc.stats.bargeIns.find(b => b.reason === 'ptt')", 5)
        page.wait_for_timeout(100)
        page.keyboard.up("Space")
        assert hit["stopMs"] < 100, hit
        rid = hit["responseId"]
        resp = f"vc.stats.responses.find(r => r.id === {rid!r})"
        wait_vc(page, f"{resp}.interrupted && {resp}.heardText !== null", 10)
        r = vc(page, resp)
        assert r["truncatedMs"] == hit["playedMs"] > 0
        page.wait_for_selector(".msg.bot.interrupted .tag", timeout=5000)
        assert vc(page, "vc.state") != "speaking"

        # Space typed into the message box is text, not push to talk.
        page.click("#text-input")
        page.keyboard.type("a b")
        assert page.input_value("#text-input") == "a b"
        assert vc(page, "document.querySelector('#ptt').classList.contains('pressed')") is False
