"""Characters created and edited from the page's form: fields, picture, limits, atomic edits.

Real server, real HTTP: ``POST /v1/characters`` and ``PUT /v1/characters/{id}`` with a
``fields`` part (JSON) and an optional ``picture``; the result is a Character Card V2 that
exports and imports again.
"""

from __future__ import annotations

import io
import json
import threading
import zlib
from typing import Any

import httpx
import pytest
from PIL import Image

from voice_chat.cards import load_card

FIELDS = {
    "name": "Marisol",
    "description": "{{char}} keeps the lighthouse on the northern cliffs.",
    "personality": "warm, patient, a little wry",
    "scenario": "{{user}} visits the lighthouse on a stormy night.",
    "greetings": ["Welcome to the lighthouse!", "Another storm, another visitor."],
    "mes_example": "<START>\n{{user}}: Hi.\n{{char}}: Come in, come in.",
    "voice": "sage",
}


def png(width: int = 64, height: int = 48, color: tuple[int, int, int] = (200, 90, 40)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, "PNG")
    return out.getvalue()


def bomb_png(side: int = 30000) -> bytes:
    """A valid PNG header claiming side x side pixels, with a tiny body: a decompression bomb."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body)
        return len(body).to_bytes(4, "big") + kind + body + crc.to_bytes(4, "big")

    ihdr = side.to_bytes(4, "big") * 2 + bytes([8, 2, 0, 0, 0])
    row = b"\x00" + b"\x00" * (side * 3)
    data = zlib.compress(row * 4, 9)  # only a few rows: the file stays small
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


def send(
    url: str,
    fields: Any,
    picture: bytes | None = None,
    *,
    method: str = "POST",
    character: str | None = None,
) -> httpx.Response:
    files: dict[str, Any] = {"fields": (None, json.dumps(fields), "application/json")}
    if picture is not None:
        files["picture"] = ("picture.png", picture, "image/png")
    target = url + "/v1/characters" + (f"/{character}" if character else "")
    return httpx.request(method, target, files=files, timeout=30)


def listed(url: str) -> dict[str, dict[str, Any]]:
    return {c["id"]: c for c in httpx.get(url + "/v1/characters", timeout=10).json()["characters"]}


def test_create_edit_export_import(live_server) -> None:
    url = live_server.url
    r = send(url, FIELDS, png())
    assert r.status_code == 201, r.text
    made = r.json()
    cid = made["id"]
    assert made["name"] == "Marisol" and made["voice"] == "sage" and made["greetings"] == 2
    assert made["description"].startswith("Marisol keeps the lighthouse")
    # The picture is stored as a PNG no bigger than 512 px.
    pic = httpx.get(url + made["avatar_url"], timeout=10)
    assert pic.headers["content-type"] == "image/png"
    with Image.open(io.BytesIO(pic.content)) as img:
        assert img.size == (64, 48)
    # A real V2 card.
    card = httpx.get(url + f"/v1/characters/{cid}", timeout=10).json()
    assert card["spec"] == "chara_card_v2"
    data = card["data"]
    assert data["first_mes"] == "Welcome to the lighthouse!"
    assert data["alternate_greetings"] == ["Another storm, another visitor."]
    assert data["extensions"]["voice_chat"]["voice"] == "sage"

    # Edit: the fields sent change, the rest (and the picture) stay.
    r = send(url, {"personality": "stern", "voice": "aria"}, method="PUT", character=cid)
    assert r.status_code == 200, r.text
    data = httpx.get(url + f"/v1/characters/{cid}", timeout=10).json()["data"]
    assert data["personality"] == "stern" and data["scenario"] == FIELDS["scenario"]
    assert data["extensions"]["voice_chat"]["voice"] == "aria"
    assert httpx.get(url + made["avatar_url"], timeout=10).content == pic.content

    # Export in every format and import again: the same card, field for field.
    for fmt in ("v2", "png", "charx"):
        exported = httpx.get(url + f"/v1/characters/{cid}/export?format={fmt}", timeout=10)
        assert exported.status_code == 200
        again = load_card(exported.content)
        for key in ("name", "description", "personality", "scenario", "first_mes", "mes_example"):
            assert again.data[key] == data[key], (fmt, key)
        assert again.alternate_greetings == data["alternate_greetings"]
        assert again.voice == "aria"
        if fmt != "v2":
            avatar = again.avatar()
            assert avatar is not None
            with Image.open(io.BytesIO(avatar[0])) as img:
                assert img.size == (64, 48)
        back = httpx.post(
            url + "/v1/characters",
            files={"file": (f"x.{fmt}", exported.content)},
            timeout=30,
        )
        assert back.status_code == 201, back.text
        assert back.json()["name"] == "Marisol" and back.json()["voice"] == "aria"


def test_shipped_character_edit_keeps_its_portrait_and_restores(live_server) -> None:
    url = live_server.url
    before = listed(url)["pip"]
    assert before["avatar_type"] == "image/svg+xml"
    r = send(url, {"scenario": "Pip is on a spaceship."}, method="PUT", character="pip")
    assert r.status_code == 200, r.text
    after = r.json()
    assert after["customized"] and after["avatar_type"] == "image/svg+xml"
    # Exports carry the portrait as a real raster picture.
    exported = load_card(httpx.get(url + "/v1/characters/pip/export?format=png").content)
    assert exported.data["scenario"] == "Pip is on a spaceship."
    assert exported.avatar() is not None
    r = httpx.delete(url + "/v1/characters/pip", timeout=10)
    assert r.status_code == 200 and r.json()["restored"]["customized"] is False


@pytest.mark.parametrize(
    ("fields", "code", "words"),
    [
        ({**FIELDS, "name": "  "}, "missing_name", "name"),
        ({k: v for k, v in FIELDS.items() if k != "name"}, "missing_name", "name"),
        ({**FIELDS, "greetings": ["Hi", "x" * 2001]}, "greeting_too_long", "Greeting 2"),
        ({**FIELDS, "greetings": ["Hi"] * 17}, "too_many_greetings", "16"),
        ({**FIELDS, "personality": "x" * 4001}, "field_too_long", "personality"),
        ({**FIELDS, "voice": "no-such-voice"}, "unknown_voice", "no-such-voice"),
        ({**FIELDS, "colour": "red"}, "invalid_fields", "colour"),
        ([1, 2], "invalid_fields", "object"),
    ],
)
def test_bad_fields_are_refused(live_server, fields: Any, code: str, words: str) -> None:
    before = set(listed(live_server.url))
    r = send(live_server.url, fields)
    assert 400 <= r.status_code < 500, r.text
    err = r.json()["error"]
    assert err["code"] == code and words.lower() in err["message"].lower()
    assert set(listed(live_server.url)) == before  # nothing stored


@pytest.mark.parametrize(
    ("picture", "status", "code"),
    [
        (b"GIF89a not really", 415, "invalid_picture"),
        (b"hello, I am text", 415, "invalid_picture"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, 415, "invalid_picture"),
        (png()[:40], 415, "invalid_picture"),
        (bomb_png(), 413, "picture_bomb"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * (4 * 1024 * 1024 + 10), 413, "picture_too_large"),
    ],
)
def test_bad_pictures_are_refused(live_server, picture: bytes, status: int, code: str) -> None:
    before = set(listed(live_server.url))
    r = send(live_server.url, {**FIELDS, "name": "Pictured"}, picture)
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code
    assert set(listed(live_server.url)) == before
    # An edit with a bad picture leaves the character as it was.
    r = send(live_server.url, {"name": "Renamed"}, picture, method="PUT", character="nova")
    assert r.status_code == status
    assert listed(live_server.url)["nova"]["name"] == "Nova"


def test_concurrent_edits_last_write_wins_whole(live_server) -> None:
    url = live_server.url
    cid = send(url, {**FIELDS, "name": "Racer"}).json()["id"]
    results: list[int] = []

    def edit(n: int) -> None:
        text = f"version {n} " * 50
        fields = {"description": text, "personality": text, "scenario": text}
        results.append(send(url, fields, method="PUT", character=cid).status_code)

    threads = [threading.Thread(target=edit, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [200] * 8
    data = httpx.get(url + f"/v1/characters/{cid}", timeout=10).json()["data"]
    # One edit won, whole: all three fields come from the same request.
    assert data["description"] == data["personality"] == data["scenario"]
    assert data["description"].startswith("version ")
