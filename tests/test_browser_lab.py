"""The page's character import, resumed conversations and voice lab, in headless Chromium.

Uses the helpers of ``test_browser.py`` (the browser, the ``window.voiceChat`` test hook) and
the shared real server. Screenshots go to ``$VOICE_CHAT_SCREENSHOTS`` when it is set
(``docs/screenshots`` refreshes the docs), else to a temporary folder.
"""

from __future__ import annotations

import io
import json
import uuid
import wave
import zipfile
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from speech import espeak
from test_browser import browser_page, screenshot_dir, vc, wait_vc

pytestmark = [pytest.mark.slow, pytest.mark.browser]


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return screenshot_dir(tmp_path_factory)


# ----------------------------------------------------------------- files
def avatar_png(size: int = 192) -> bytes:
    """A small painted avatar: a dusk sky, a sun and the sea (so the card shows a picture)."""
    from PIL import Image

    y, x = np.mgrid[0:size, 0:size] / size
    sky = np.stack([40 + 200 * y, 60 + 90 * y, 140 - 40 * y], -1)
    sun = ((x - 0.5) ** 2 + (y - 0.52) ** 2) < 0.045
    sky[sun] = [255, 214, 140]
    sea = y > 0.62
    sky[sea] = np.stack([20 + 30 * x[sea], 70 + 40 * y[sea], 110 + 40 * y[sea]], -1)
    img = Image.fromarray(np.clip(sky, 0, 255).astype(np.uint8), "RGB")
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


def wav_bytes(audio: np.ndarray, rate: int) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes())
    return out.getvalue()


def sample_wav() -> bytes:
    """About 6 s of espeak speech: enough for the server's clip analysis."""
    text = (
        "Hello there, my name is Marisol. I keep the lighthouse on the northern cliffs, "
        "and I love the sound of the sea."
    )
    audio = espeak(text, rate=16000)
    return wav_bytes(audio / max(1e-6, float(np.abs(audio).max())) * 0.6, 16000)


def silence_wav(path: Path, seconds: float = 2.0) -> Path:
    """A quiet fake microphone: the page has a working mic that never says anything."""
    path.write_bytes(wav_bytes(np.zeros(int(seconds * 48000)), 48000))
    return path


def charx_card(path: Path, name: str) -> Path:
    """A CHARX (zip) card with an avatar and a voice sample, as other tools write them."""
    card = {
        "spec": "chara_card_v3",
        "spec_version": "3.0",
        "data": {
            "name": name,
            "description": "A lighthouse keeper who tells stories about ships and storms.",
            "personality": "warm, patient",
            "scenario": "",
            "first_mes": "Welcome to the lighthouse!",
            "mes_example": "",
            "tags": ["test"],
            "extensions": {},
            "assets": [
                {
                    "type": "icon",
                    "uri": "embeded://assets/icon/main.png",
                    "name": "main",
                    "ext": "png",
                },
                {
                    "type": "voice",
                    "uri": "embeded://assets/voice/hello.wav",
                    "name": "hello",
                    "ext": "wav",
                },
            ],
        },
    }
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("card.json", json.dumps(card))
        z.writestr("assets/icon/main.png", avatar_png())
        z.writestr("assets/voice/hello.wav", sample_wav())
    return path


def json_card(name: str, greeting: str = "Hi.") -> dict[str, Any]:
    return {
        "spec": "chara_card_v2",
        "spec_version": "2.0",
        "data": {"name": name, "description": "Helps test voices.", "first_mes": greeting},
    }


def characters(url: str) -> dict[str, dict[str, Any]]:
    listed = httpx.get(url + "/v1/characters", timeout=10).json()["characters"]
    return {c["id"]: c for c in listed}


# ----------------------------------------------------------------- tests
def test_import_card_by_file_input(live_server, shots: Path, tmp_path: Path) -> None:
    """A .charx chosen with the file input appears with its avatar; its voice sample can be
    turned into a voice in the lab. A broken file shows the server's message."""
    name = f"Marisol {uuid.uuid4().hex[:4]}"
    card = charx_card(tmp_path / "marisol.charx", name)
    broken = tmp_path / "broken.json"
    broken.write_text('{"spec": "chara_card_v2", "data": ')
    with browser_page(None, width=1100, height=900) as page:
        page.goto(live_server.url + "/")
        page.wait_for_selector(".card[data-id]", timeout=15000)

        # A broken card: the toast says so in plain words; the parser's message is the detail.
        page.set_input_files("#import-file", str(broken))
        err = wait_vc(page, "vc.imports.errors[0]", 15)
        assert err["status"] == 400 and err["message"]
        toast = page.locator(".toast-error").first
        toast.wait_for(timeout=5000)
        headline = toast.locator("p").inner_text()
        assert "isn’t a valid character card" in headline and err["message"] not in headline
        assert err["message"] in toast.locator(".toast-detail code").text_content()
        toast.locator("button:has-text('Dismiss')").click()

        page.set_input_files("#import-file", str(card))
        cid = wait_vc(page, "vc.imports.done[0]", 30)
        item = page.locator(f".card-item[data-character='{cid}']")
        item.wait_for(timeout=5000)
        assert name in item.inner_text()
        assert characters(live_server.url)[cid]["voice_sample"]
        # The avatar comes from avatar_url and is really drawn.
        img = f".card-item[data-character='{cid}'] .avatar img"
        page.wait_for_function(
            f"() => {{ const i = document.querySelector({img!r}); "
            "return i && i.complete && i.naturalWidth > 0; }",
            timeout=10000,
        )
        assert item.locator(".card-sample").is_visible()
        offer = page.locator("#import-sample")
        offer.wait_for(timeout=5000)
        assert name in page.inner_text("#import-note")
        page.wait_for_timeout(400)
        page.screenshot(path=str(shots / "import.png"))

        # "Make a voice from this sample": the lab opens on the clip with the sample loaded.
        offer.click()
        wait_vc(
            page, "vc.lab.open && vc.lab.tab === 'clip' && vc.lab.clip && vc.lab.clip.bytes > 0", 15
        )
        assert page.is_visible("#clip-audio")
        assert name in page.input_value("#clip-name")
        page.click("#clip-save")
        voice = wait_vc(page, "vc.lab.registrations[0] || vc.lab.errors[0]", 90)
        assert "id" in voice, voice
        result = page.locator("#clip-result")
        result.wait_for(timeout=5000)
        if voice.get("approximation"):
            # Said in plain words, the closeness once; the server's explanation folded away.
            shown = result.inner_text()
            assert shown.count("How close it sounds to the clip") == 1
            assert "formant" not in shown.lower() and "vocoder" not in shown.lower()
            assert voice["message"] in result.locator(".approx-detail").text_content()


def test_resumed_conversation_shows_earlier_turns(live_server, shots: Path, tmp_path: Path) -> None:
    """Calling the same character again with the same user resumes: the earlier turns are
    shown and no greeting is spoken. "New conversation" starts another one, with a greeting."""
    user = f"web-resume-{uuid.uuid4().hex[:8]}"
    with browser_page(silence_wav(tmp_path / "quiet.wav")) as page:
        page.goto(live_server.url + "/")
        page.evaluate(f"localStorage.setItem('voiceChat.user', '{user}')")
        page.reload()
        page.wait_for_selector(".card[data-id='nova']", timeout=15000)
        page.click(".card[data-id='nova']")
        wait_vc(page, "vc.connection === 'open'", 30)
        assert vc(page, "vc.session.conversation.resumed") is False
        # Let the greeting play out (typing during it would cut it short).
        greeted = "vc.stats.responses[0] && vc.stats.responses[0].status !== 'in_progress'"
        wait_vc(page, f"{greeted} && vc.state === 'listening'", 45)
        page.fill("#text-input", "Please remember that my boat is called Seagull.")
        page.press("#text-input", "Enter")
        answered = "vc.stats.responses.length > 1 && vc.stats.responses[1].status === 'completed'"
        wait_vc(page, f"{answered} && vc.state === 'listening'", 60)
        said = vc(page, "vc.transcript()")
        page.click("#back")

        # The same user calls again: the conversation goes on.
        page.click(".card[data-id='nova']")
        wait_vc(page, "vc.connection === 'open'", 30)
        conv = vc(page, "vc.session.conversation")
        assert conv["resumed"] is True
        assert any("Seagull" in t["text"] for t in conv["turns"] if t["role"] == "user")
        earlier = wait_vc(
            page, "vc.transcript().filter(m => m.earlier).length >= 3 && vc.transcript()", 5
        )
        assert [m["text"] for m in earlier if m["earlier"]][-3:] == [m["text"] for m in said][-3:]
        assert page.is_visible(".divider-earlier")
        page.wait_for_timeout(1500)
        assert vc(page, "vc.stats.responses.length") == 2  # no greeting this time
        assert "response.created" not in vc(
            page, "vc.stats.events.slice(vc.stats.events.lastIndexOf('session.created'))"
        )
        page.screenshot(path=str(shots / "resumed.png"))

        # New conversation: another one starts with a greeting; the first one is kept.
        page.click("#new-conversation")
        wait_vc(
            page,
            "vc.conversations.resets === 1 && vc.connection === 'open' && "
            "vc.session.conversation.id !== 'default'",
            30,
        )
        assert vc(page, "vc.session.conversation.resumed") is False
        wait_vc(page, "vc.stats.responses.length > 0", 30)
        assert not vc(page, "vc.transcript().some(m => m.earlier)")
        q = {"user": user, "character": "nova"}
        stored = httpx.get(live_server.url + "/v1/conversations", params=q, timeout=10).json()
        assert any("Seagull" in m["text"] for m in stored["messages"])  # the old one is kept


def test_voice_lab(live_server, shots: Path) -> None:
    """List and preview voices, tune a derived voice with the sliders, save it, assign it to a
    character, and delete it (in use: the page offers force). Also fits a 375 px phone."""
    name = f"Lab Tester {uuid.uuid4().hex[:4]}"
    made = httpx.post(
        live_server.url + "/v1/characters",
        content=json.dumps(json_card(name)),
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    assert made.status_code == 201, made.text
    cid = made.json()["id"]
    voice_name = f"Bright {uuid.uuid4().hex[:4]}"
    with browser_page(None, width=1100, height=900) as page:
        page.goto(live_server.url + "/")
        page.wait_for_selector(f".card[data-id='{cid}']", timeout=15000)
        page.click("#lab-button")
        page.wait_for_selector("#voice-list .voice", timeout=10000)
        listed = httpx.get(live_server.url + "/v1/voices", timeout=10).json()["voices"]
        assert page.locator("#voice-list .voice").count() == len(listed)
        ids = [v["id"] for v in listed]
        first = "joe" if "joe" in ids else ids[0]

        # ▶ on a voice: a WAV comes back and the page plays it.
        page.click(f"#voice-list .voice[data-voice='{first}'] .btn-play")
        wait_vc(page, "vc.lab.previewsPlayed >= 1", 30)
        last = vc(page, "vc.lab.lastPreview")
        assert last["voice"] == first and last["riff"] and last["bytes"] > 1000
        assert last["contentType"].startswith("audio/wav") or last["contentType"].startswith(
            "audio/x-wav"
        )

        # Tune: keyboard on the sliders; instant preview if the server has it.
        page.click("#lab-tab-tune")
        page.select_option("#tune-base", first)
        for slider, key, n in (
            ("#tune-pitch", "ArrowRight", 8),
            ("#tune-formant", "ArrowRight", 8),
            ("#tune-expr", "ArrowRight", 6),
        ):
            page.focus(slider)
            for _ in range(n):
                page.keyboard.press(key)
        assert page.input_value("#tune-pitch") == "4"
        # The server offers POST /v1/voices/preview: the change is heard without saving.
        wait_vc(page, "vc.lab.instantPreview !== 'unknown'", 30)
        assert vc(page, "vc.lab.instantPreview") == "available"
        wait_vc(page, "vc.lab.instantPreviews >= 1 && vc.lab.previewsPlayed >= 2", 30)
        assert vc(page, "vc.lab.lastPreview.voice") == "tune"
        assert vc(page, "vc.lab.lastPreview.riff")
        page.fill("#tune-name", voice_name)
        page.click("#tune-form button[type='submit']")
        voice = wait_vc(page, "vc.lab.registrations[0] || vc.lab.errors[0]", 60)
        assert "id" in voice, voice
        assert voice["pitch_semitones"] == 4 and voice["formant_shift"] == pytest.approx(1.08)
        page.wait_for_selector("#tune-result .use-row", timeout=5000)

        # Assign it to the test character from the result; the card shows the new voice.
        page.select_option("#tune-result .use-character", cid)
        page.click("#tune-result .use-row button[type='submit']")
        wait_vc(page, f"vc.lab.assignments.some(a => a.character === '{cid}')", 15)
        assert characters(live_server.url)[cid]["voice"] == voice["id"]
        page.wait_for_timeout(300)
        page.screenshot(path=str(shots / "voice-lab.png"))
        chip = page.locator(f".card-item[data-character='{cid}'] .voice-chip-name")
        assert chip.inner_text() == voice_name

        # Delete: it is in use (409), the page says so and offers to force it.
        page.click("#lab-tab-voices")
        page.click(f"#voice-list .voice[data-voice='{voice['id']}'] .btn-delete")
        page.click("#confirm-ok")
        page.wait_for_selector("#confirm[open] .confirm-actions", timeout=10000)
        page.wait_for_function(
            "() => document.querySelector('#confirm-ok').textContent === 'Delete anyway'",
            timeout=10000,
        )
        assert "use" in page.inner_text("#confirm-body").lower()
        page.click("#confirm-ok")
        wait_vc(page, "vc.lab.deletions.some(d => d.force)", 15)
        page.wait_for_function(
            f"() => !document.querySelector(\"#voice-list .voice[data-voice='{voice['id']}']\")",
            timeout=10000,
        )
        assert voice["id"] not in [
            v["id"] for v in httpx.get(live_server.url + "/v1/voices", timeout=10).json()["voices"]
        ]

        # Phone size: the lab fills the screen and nothing overflows sideways.
        page.set_viewport_size({"width": 375, "height": 667})
        page.click("#lab-tab-tune")
        page.wait_for_timeout(200)
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
        box = page.evaluate(
            "(() => { const d = document.querySelector('#lab'); const r = d.getBoundingClientRect();"
            " const b = d.querySelector('.sheet-body');"
            " return {w: r.width, h: r.height, over: b.scrollWidth - b.clientWidth}; })()"
        )
        assert box["w"] <= 375 and box["h"] <= 667 and box["over"] <= 0, box
        # Keyboard: Escape closes the lab and focus goes back to the page.
        page.keyboard.press("Escape")
        wait_vc(page, "!vc.lab.open", 5)
