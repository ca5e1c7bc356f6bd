"""The page people come back to, in headless Chromium: faces that speak, characters made in the
page, conversations with their own URL, settings, reply controls, accessibility, phone size.

Uses the helpers of ``test_browser.py`` and the shared real server. Accessibility is checked
with axe-core (the copy bundled in ``axe-playwright-python``) against WCAG 2.1 A and AA.
Screenshots go to ``$VOICE_CHAT_SCREENSHOTS`` when set, else to a temporary folder.
"""

from __future__ import annotations

import io
import uuid
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from test_browser import browser_page, screenshot_dir, vc, wait_vc
from test_browser_lab import silence_wav

pytestmark = [pytest.mark.slow, pytest.mark.browser]
WCAG = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return screenshot_dir(tmp_path_factory)


def axe_violations(page: Any, context: str = "document") -> list[dict[str, Any]]:
    """axe-core's WCAG 2.1 A/AA violations on the page as it is now."""
    axe = pytest.importorskip("axe_playwright_python")
    script = (Path(axe.__file__).parent / "axe.min.js").read_text()
    if not page.evaluate("!!window.axe"):
        page.add_script_tag(content=script)
    result = page.evaluate(
        f"async () => (await axe.run({context}, {{runOnly: {{type: 'tag', values: {WCAG}}}}}))"
        ".violations.map(v => ({id: v.id, help: v.help, nodes: v.nodes.map(n => n.target)}))"
    )
    return result  # type: ignore[no-any-return]


def assert_accessible(page: Any, where: str) -> None:
    found = axe_violations(page)
    assert not found, f"axe-core WCAG 2.1 AA violations ({where}): {found}"


def picture_png(width: int = 300, height: int = 200) -> bytes:
    """A painted picture, wider than high (the page crops it to a square)."""
    from PIL import Image

    y, x = np.mgrid[0:height, 0:width]
    img = np.stack([40 + x * 200 // width, 90 + y * 120 // height, 160 - x * 80 // width], -1)
    out = io.BytesIO()
    Image.fromarray(img.astype(np.uint8), "RGB").save(out, "PNG")
    return out.getvalue()


def card_data(url: str, cid: str) -> dict[str, Any]:
    return httpx.get(f"{url}/v1/characters/{cid}", timeout=10).json()["data"]  # type: ignore[no-any-return]


def test_the_face_speaks_with_the_audio_and_stops_at_barge_in(
    live_server, shots: Path, tmp_path: Path
) -> None:
    """The portrait's mouth follows the reply audio as it plays; a barge-in shuts it at once."""
    with browser_page(silence_wav(tmp_path / "quiet.wav"), width=1100, height=800) as page:
        page.goto(live_server.url + "/")
        page.wait_for_selector(".card[data-id='nova'] img", timeout=15000)
        page.click(".card[data-id='nova']")
        wait_vc(page, "vc.connection === 'open'", 30)
        page.wait_for_selector("#call-avatar .portrait .mouth-open", state="attached", timeout=5000)
        # The greeting plays: the mouth opens and closes with it, in the DOM too.
        wait_vc(page, "vc.state === 'speaking' && vc.stats.responses[0].playedMs > 700", 40)
        opened = wait_vc(
            page,
            "Number(getComputedStyle(document.querySelector('#call-avatar .mouth-open')).opacity)"
            " > 0.5",
            5,
        )
        assert opened
        page.screenshot(path=str(shots / "speaking-face.png"))
        playing_since = vc(page, "vc.stats.responses[0].startedPlayingAt")
        # Cut in by typing: the reply's audio stops, and so does the mouth.
        assert vc(page, "vc.sendText('Tell me about the sea.')")
        hit = wait_vc(page, "vc.stats.bargeIns.find(b => b.reason === 'text')", 5)
        page.wait_for_timeout(400)
        samples = vc(page, "vc.face.samples")
        assert isinstance(samples, list)
        at = hit["at"]
        during = [v for t, v in samples if playing_since <= t < at]
        assert len(during) > 20, samples
        assert max(during) > 0.4, during  # it opens...
        assert sum(1 for v in during if v < max(during) - 0.25) >= 3, during  # ...and closes
        assert len({round(v, 2) for v in during}) >= 8, during  # it moves, not a fixed pose
        # Shut within 100 ms of the barge-in, and it stays shut while nothing plays.
        next_audio = vc(
            page,
            f"(vc.stats.responses.find(r => r.startedPlayingAt > {at}) || {{}}).startedPlayingAt"
            f" || {at + 400}",
        )
        after = [(t, v) for t, v in samples if at + 100 <= t < next_audio]
        assert after and all(v == 0 for _, v in after), after
        first_shut = min(t for t, v in samples if t >= at and v == 0)
        assert first_shut - at < 100
        assert hit["stopMs"] < 100, hit
        assert_accessible(page, "call")


def test_character_made_in_the_page(live_server, shots: Path, tmp_path: Path) -> None:
    """Create with a picture and a voice, talk to it, export it three ways, import it back."""
    url = live_server.url
    name = f"Marisol {uuid.uuid4().hex[:4]}"
    picture = tmp_path / "marisol.png"
    picture.write_bytes(picture_png())
    greetings = ["Welcome to the lighthouse, traveller!", "Another storm, another visitor."]
    with browser_page(silence_wav(tmp_path / "quiet.wav"), width=1100, height=900) as page:
        page.goto(url + "/")
        page.wait_for_selector(".card[data-id='nova']", timeout=15000)
        page.click("#create-button")
        page.wait_for_selector("#editor[open]")
        # A name is required: the page says so and nothing is sent.
        page.click("#editor-save")
        assert "name" in page.inner_text("#editor-status").lower()
        assert vc(page, "vc.editor.saved.length") == 0
        page.fill("#editor-name", name)
        page.fill("#editor-description", "{{char}} keeps the lighthouse on the northern cliffs.")
        page.fill("#editor-personality", "warm, patient, a little wry")
        page.fill("#editor-scenario", "{{user}} visits the lighthouse on a stormy night.")
        page.fill("#editor-greetings textarea", greetings[0])
        page.click("#editor-add-greeting")
        page.locator("#editor-greetings textarea").nth(1).fill(greetings[1])
        page.fill("#editor-examples", "<START>\n{{user}}: Hi.\n{{char}}: Come in, come in.")
        page.set_input_files("#editor-picture", str(picture))
        pic = wait_vc(page, "vc.editor.picture", 5)
        assert pic["width"] == pic["height"] == 200  # cropped to a square
        wait_vc(page, "vc.voices.some(v => v.id === 'sage')", 10)
        page.select_option("#editor-voice", "sage")
        page.click("#editor-voice-play")
        wait_vc(page, "vc.lab.previewsPlayed > 0 && vc.lab.lastPreview.voice === 'sage'", 30)
        assert_accessible(page, "editor")
        page.evaluate("document.querySelector('#editor .sheet-body').scrollTop = 0")
        page.screenshot(path=str(shots / "character-editor.png"))
        page.click("#editor-save")
        saved = wait_vc(page, "vc.editor.saved[0]", 20)
        cid = saved["id"]
        assert saved["voice"] == "sage" and saved["isNew"]
        page.wait_for_selector(f".card[data-id='{cid}'] img", timeout=5000)

        # It speaks with the chosen voice: the session says so and the greeting is heard.
        page.click(f".card[data-id='{cid}']")
        page.wait_for_selector("#greet[open]")  # two greetings: which one starts?
        page.click("#greet-ok")  # "surprise me"
        wait_vc(page, "vc.connection === 'open'", 30)
        assert vc(page, "vc.session.voice") == "sage"
        first = wait_vc(page, "vc.stats.responses.find(r => r.playedMs > 300)", 40)
        assert first["text"].strip() in greetings
        page.click("#back")

        # Export from the page: JSON, PNG and CHARX; each imports again with every field.
        original = card_data(url, cid)
        page.click(f".card-item[data-character='{cid}'] .card-edit")
        page.wait_for_selector("#editor[open] #editor-manage:not([hidden])")
        files = []
        for fmt in ("json", "png", "charx"):
            with page.expect_download(timeout=90_000) as info:
                page.click(f"#editor-export-{fmt}")
            path = tmp_path / f"export.{fmt}"
            info.value.save_as(str(path))
            files.append(path)
        page.click("#editor-cancel")
        for n, path in enumerate(files):
            page.set_input_files("#import-file", str(path))
            copy = wait_vc(page, f"vc.imports.done[{n}]", 20)
            data = card_data(url, copy)
            for key in ("name", "description", "personality", "scenario", "first_mes"):
                assert data[key] == original[key], (path.name, key)
            assert data["mes_example"] == original["mes_example"]
            assert data["alternate_greetings"] == original["alternate_greetings"]
            assert data["extensions"]["voice_chat"] == original["extensions"]["voice_chat"]
            listed = {c["id"]: c for c in httpx.get(url + "/v1/characters").json()["characters"]}
            if path.suffix != ".json":
                assert listed[copy]["avatar_url"], path.name  # the picture came along
        # Import lets you choose the voice right away.
        page.select_option("#import-voice", "aria")
        last = vc(page, "vc.imports.done[2]")
        wait_vc(page, f"vc.characters.find(c => c.id === {last!r}).voice === 'aria'", 10)

        # Deleting asks first.
        page.click(f".card-item[data-character='{last}'] .card-edit")
        page.click("#editor-delete")
        page.wait_for_selector("#confirm[open]")
        page.click("#confirm-cancel")
        assert last in [c["id"] for c in httpx.get(url + "/v1/characters").json()["characters"]]
        page.click("#editor-delete")
        page.click("#confirm-ok")
        wait_vc(page, f"!vc.characters.some(c => c.id === {last!r})", 10)
        assert httpx.get(f"{url}/v1/characters/{last}").status_code == 404


def test_conversations_have_urls_names_and_fit_a_phone(
    live_server, shots: Path, tmp_path: Path
) -> None:
    """Reload and back/forward keep the conversation; your name is the card's {{user}}; the
    list shows each conversation's last line and time; all of it works at 375 px."""
    url = live_server.url
    user = f"web-conv-{uuid.uuid4().hex[:8]}"
    card = {
        "spec": "chara_card_v2",
        "spec_version": "2.0",
        "data": {
            "name": f"Skipper {uuid.uuid4().hex[:4]}",
            "description": "{{char}} sails a small boat.",
            "first_mes": "Ahoy, {{user}}!",
            "alternate_greetings": ["Fair winds, {{user}}."],
        },
    }
    cid = httpx.post(url + "/v1/characters", json=card, timeout=10).json()["id"]
    quiet = silence_wav(tmp_path / "quiet.wav")
    with browser_page(quiet, width=375, height=740, mobile=True) as page:
        page.goto(url + "/")
        page.evaluate(f"localStorage.setItem('voiceChat.user', '{user}')")
        page.wait_for_selector(f".card[data-id='{cid}']", timeout=15000)
        # Settings: your name, kept in this browser.
        page.click("#settings-button")
        page.wait_for_selector("#settings[open]")
        assert_accessible(page, "settings")
        page.fill("#settings-name", "Ahab")
        page.click("#settings-save")
        # the dialog saves on its close event, a task after the click
        wait_vc(page, "vc.settings.name === 'Ahab'", 5)
        page.reload()
        page.wait_for_selector(f".card[data-id='{cid}']", timeout=15000)
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
        # Two greetings: the page asks which one starts the conversation.
        page.click(f".card[data-id='{cid}']")
        page.wait_for_selector("#greet[open]")
        assert_accessible(page, "greeting choice")
        page.check("#greet-list input[value='1']")
        page.click("#greet-ok")
        wait_vc(page, "vc.connection === 'open'", 30)
        assert vc(page, "vc.session.user.name") == "Ahab"
        greeting = wait_vc(page, "vc.stats.responses.find(r => r.status !== 'in_progress')", 40)
        assert greeting["text"] == "Fair winds, Ahab."
        conversation = vc(page, "vc.conversation")
        assert page.url.endswith(f"#/talk/{cid}/{conversation}")
        page.fill("#text-input", "My boat is called Seagull.")
        page.press("#text-input", "Enter")
        wait_vc(page, "vc.stats.responses.filter(r => r.status === 'completed').length > 1", 60)
        # "Say it another way": the reply is made anew and spoken; the old one is gone.
        replies = vc(page, "vc.transcript().filter(m => m.role === 'assistant').length")
        page.click(".msg.bot .regenerate")
        wait_vc(
            page,
            "vc.stats.regenerations === 1 && vc.stats.responses.length === 3 && "
            "vc.stats.responses[2].status === 'completed' && vc.stats.responses[2].playedMs > 0",
            60,
        )
        assert vc(page, "vc.transcript().filter(m => m.role === 'assistant').length") == replies
        q = {"user": user, "character": cid, "conversation": vc(page, "vc.conversation")}
        stored = httpx.get(url + "/v1/conversations", params=q).json()["messages"]
        assert [m["role"] for m in stored] == ["assistant", "user", "assistant"]
        assert stored[2]["text"] == vc(page, "vc.stats.responses[2].text")
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
        assert_accessible(page, "call at 375 px")
        page.screenshot(path=str(shots / "phone-conversation.png"))

        # Reload: the same conversation, its earlier turns shown, no new greeting.
        page.reload()
        wait_vc(page, "vc.connection === 'open'", 30)
        assert vc(page, "vc.conversation") == conversation
        earlier = wait_vc(page, "vc.transcript().filter(m => m.earlier)", 5)
        assert any("Seagull" in m["text"] for m in earlier)
        # Back to the picker: the conversation is listed with its last line and time.
        page.click("#back")
        item = page.locator(f".recent-item[data-conversation='{conversation}']")
        item.wait_for(timeout=10000)
        text = item.inner_text()
        assert "just now" in text and card["data"]["name"] in text
        last = httpx.get(url + "/v1/conversations", params={"user": user}).json()
        assert last["conversations"][0]["last_message"]["text"][:20] in text
        assert "Last talked" in page.inner_text(f".card-item[data-character='{cid}']")
        assert_accessible(page, "picker with conversations at 375 px")
        top = "document.querySelector('#main')"
        page.evaluate(f"for (const e of [document.scrollingElement, {top}]) e.scrollTop = 0")
        page.screenshot(path=str(shots / "phone-conversation-list.png"))
        # Back and forward move between the picker and the conversation.
        page.go_back()
        wait_vc(page, f"vc.connection === 'open' && vc.conversation === {conversation!r}", 30)
        page.go_forward()
        wait_vc(page, "vc.state === 'idle'", 10)
        assert page.is_visible("#picker")
        # A new conversation keeps the old one in the list.
        page.click(f".recent-item[data-conversation='{conversation}'] .recent-open")
        wait_vc(page, "vc.connection === 'open'", 30)
        page.click("#new-conversation")
        page.wait_for_selector("#greet[open]")
        page.click("#greet-ok")  # "surprise me"
        wait_vc(page, f"vc.connection === 'open' && vc.conversation !== {conversation!r}", 30)
        wait_vc(page, "vc.stats.responses.at(-1).status === 'completed'", 40)  # its greeting
        page.click("#back")
        page.wait_for_selector(f".recent-item[data-character='{cid}'] >> nth=1", timeout=10000)
        # The editor fits the phone too.
        page.click(f".card-item[data-character='{cid}'] .card-edit")
        page.wait_for_selector("#editor[open]")
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
        box = page.locator("#editor").bounding_box()
        assert box is not None and box["width"] <= 375
        page.screenshot(path=str(shots / "phone-editor.png"))
