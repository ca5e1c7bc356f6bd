"""Character cards through the real server: import every container, talk, export, edit, CLI.

The card files are written here by hand (PNG chunks, zip members) rather than with the card
library, so the server is checked against files as other tools write them.
"""

from __future__ import annotations

import base64
import io
import json
import math
import struct
import subprocess
import sys
import uuid
import wave
import zipfile
import zlib
from pathlib import Path
from typing import Any

import httpx
import pytest
from rawhttp import host_of, raw_request
from speech import espeak

from voice_chat.client.launcher import ROOT
from voice_chat.client.rtclient import RealtimeClient

pytestmark = pytest.mark.slow
EXT = {"x_tool": {"rating": 5, "nested": [1, {"a": "b"}]}, "depth_prompt": {"depth": 4}}


# ----------------------------------------------------------------- card files
def card_data(name: str, greeting: str, **more: Any) -> dict[str, Any]:
    return {
        "name": name,
        "description": f"{{{{char}}}} is a test character called {name}.",
        "personality": "calm",
        "scenario": "a quiet room",
        "first_mes": greeting,
        "mes_example": "<START>\n{{user}}: Hi.\n{{char}}: Hello.",
        "creator_notes": f"{name} notes",
        "system_prompt": "",
        "post_history_instructions": "",
        "alternate_greetings": [],
        "tags": ["test"],
        "creator": "tests",
        "character_version": "1",
        "extensions": json.loads(json.dumps(EXT)),
        "x_unknown_field": {"keep": ["me"]},
        **more,
    }


def v2(name: str, greeting: str, **more: Any) -> dict[str, Any]:
    return {
        "spec": "chara_card_v2",
        "spec_version": "2.0",
        "data": card_data(name, greeting, **more),
        "x_top_level": "kept",
    }


def v3(name: str, greeting: str, **more: Any) -> dict[str, Any]:
    card = v2(name, greeting, group_only_greetings=[], **more)
    card.update(spec="chara_card_v3", spec_version="3.0")
    return card


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png(
    texts: dict[str, dict[str, Any]] | None = None, rgb: tuple[int, int, int] = (200, 60, 60)
) -> bytes:
    rows = (b"\x00" + bytes(rgb) * 16) * 16
    parts = [b"\x89PNG\r\n\x1a\n", _chunk(b"IHDR", struct.pack(">IIBBBBB", 16, 16, 8, 2, 0, 0, 0))]
    parts.append(_chunk(b"IDAT", zlib.compress(rows)))
    for key, obj in (texts or {}).items():
        parts.append(
            _chunk(b"tEXt", key.encode() + b"\0" + base64.b64encode(json.dumps(obj).encode()))
        )
    return b"".join([*parts, _chunk(b"IEND", b"")])


def wav(seconds: float = 0.5, rate: int = 16000) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(rate)
        w.writeframes(
            b"".join(
                struct.pack("<h", int(8000 * math.sin(i / 8))) for i in range(int(seconds * rate))
            )
        )
    return out.getvalue()


def charx(card: dict[str, Any], files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("card.json", json.dumps(card))
        for name, data in files.items():
            z.writestr(name, data)
    return out.getvalue()


def charx_card(name: str, greeting: str) -> tuple[bytes, bytes, bytes]:
    icon, sample = png(rgb=(10, 200, 10)), wav()
    card = v3(
        name,
        greeting,
        assets=[
            {
                "type": "icon",
                "uri": "embeded://assets/icon/images/main.png",
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
    )
    files = {
        "assets/icon/images/main.png": icon,
        "assets/voice/hello.wav": sample,
        "x_app/state.json": b'{"k": 1}',
    }
    return charx(card, files), icon, sample


def all_containers(tag: str) -> dict[str, tuple[bytes, str]]:
    """container -> (file bytes, the greeting as spoken to a user named Sam)."""
    v1 = {
        "name": f"Vee {tag}",
        "description": "A V1 card.",
        "personality": "",
        "scenario": "",
        "first_mes": "Hello {{user}}, I am an old card.",
        "mes_example": "",
    }
    files = {
        "v1_json": (json.dumps(v1).encode(), "Hello Sam, I am an old card."),
        "v2_json": (
            json.dumps(v2(f"Twotone {tag}", "Good morning, {{user}}.")).encode(),
            "Good morning, Sam.",
        ),
        "v2_png": (
            png({"chara": v2(f"Pinky {tag}", "I live in a picture.")}),
            "I live in a picture.",
        ),
        "v3_json": (
            json.dumps(v3(f"Trey {tag}", "Version three says hi.")).encode(),
            "Version three says hi.",
        ),
        "v3_png": (
            png(
                {
                    "chara": v2(f"Old {tag}", "Wrong one."),
                    "ccv3": v3(f"Quinn {tag}", "The newer chunk wins."),
                }
            ),
            "The newer chunk wins.",
        ),
    }
    files["charx"] = (charx_card(f"Zip {tag}", "I came in a zip file.")[0], "I came in a zip file.")
    return files


def upload(
    server: Any, data: bytes, *, as_json: bool = False, voice: str | None = None
) -> httpx.Response:
    if as_json:
        return httpx.post(
            server.url + "/v1/characters",
            content=data,
            headers={"Content-Type": "application/json"},
            timeout=30,
        )
    form = {"voice": voice} if voice else None
    return httpx.post(
        server.url + "/v1/characters", files={"file": ("card.bin", data)}, data=form, timeout=30
    )


async def first_greeting(server: Any, character: str) -> str:
    async with RealtimeClient.connect(
        server.ws_url, character=character, user=uuid.uuid4().hex, user_name="Sam"
    ) as rt:
        done = await rt.wait_for("response.done", timeout=60)
        assert done.event["response"]["status"] == "completed"
        return " ".join(done.event["response"]["text"].split())


# ---------------------------------------------------------------------- tests
async def test_import_every_container_then_talk(live_server) -> None:
    tag = uuid.uuid4().hex[:6]
    ids: dict[str, str] = {}
    for kind, (data, _) in all_containers(tag).items():
        r = upload(live_server, data, as_json=kind.endswith("json") and kind != "v1_json")
        assert r.status_code == 201, (kind, r.text)
        ids[kind] = r.json()["id"]
    assert len(set(ids.values())) == len(ids)
    listed = {
        c["id"]: c for c in httpx.get(live_server.url + "/v1/characters").json()["characters"]
    }
    assert set(ids.values()) <= set(listed) and {"nova", "aria", "sage", "pip"} <= set(listed)
    assert listed[ids["v3_png"]]["name"] == f"Quinn {tag}"
    assert listed[ids["charx"]]["voice_sample"]["media_type"] == "audio/wav"
    # Avatars: the PNG itself (card chunks removed) or the CHARX icon; voice sample served.
    for kind in ("v2_png", "v3_png", "charx"):
        a = httpx.get(live_server.url + listed[ids[kind]]["avatar_url"])
        assert (
            a.status_code == 200 and a.content.startswith(b"\x89PNG") and b"chara" not in a.content
        )
    _, icon, sample = charx_card("x", "y")
    assert httpx.get(live_server.url + f"/v1/characters/{ids['charx']}/avatar").content == icon
    got = httpx.get(live_server.url + listed[ids["charx"]]["voice_sample"]["url"])
    assert (
        got.status_code == 200
        and got.content == sample
        and got.headers["content-type"] == "audio/wav"
    )
    assert (
        httpx.get(live_server.url + f"/v1/characters/{ids['v2_json']}/voice-sample").status_code
        == 404
    )
    # The card as stored: V2 stays V2, V3 stays V3, unknown fields kept.
    card = httpx.get(live_server.url + f"/v1/characters/{ids['v3_json']}").json()
    assert card["spec"] == "chara_card_v3" and card["x_top_level"] == "kept"
    assert card["data"]["extensions"]["x_tool"] == EXT["x_tool"]
    assert (
        httpx.get(live_server.url + f"/v1/characters/{ids['v1_json']}").json()["spec"]
        == "chara_card_v2"
    )
    # Every imported character greets with its own greeting.
    for kind, (_, greeting) in all_containers(tag).items():
        assert await first_greeting(live_server, ids[kind]) == greeting, kind
    # A spoken turn with an imported character.
    async with RealtimeClient.connect(
        live_server.ws_url, character=ids["charx"], user=uuid.uuid4().hex
    ) as rt:
        await rt.wait_for("response.done", timeout=60)
        await rt.send_speech(espeak("What is your favorite color?"))
        done = await rt.wait_for("response.done", timeout=60)
        transcript = rt.events("conversation.item.input_audio_transcription.completed")[-1][
            "transcript"
        ]
        assert "color" in transcript.lower()
        assert done.event["response"]["status"] == "completed" and done.event["response"]["text"]


def test_export_round_trips_keep_unknown_data(live_server) -> None:
    data, icon, sample = charx_card(f"Round {uuid.uuid4().hex[:6]}", "Round and round.")
    cid = upload(live_server, data, voice="joe").json()["id"]
    base = live_server.url + f"/v1/characters/{cid}/export"
    for fmt in ("v2", "v3"):
        r = httpx.get(base, params={"format": fmt})
        assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
        card = r.json()
        assert card["spec"] == f"chara_card_{fmt}" and card["x_top_level"] == "kept"
        ext = card["data"]["extensions"]
        assert ext["x_tool"] == EXT["x_tool"] and ext["voice_chat"]["voice"] == "joe"
        assert card["data"]["x_unknown_field"] == {"keep": ["me"]}
    png_bytes = httpx.get(base, params={"format": "png"}).content
    texts = {k: v for k, v in _png_texts(png_bytes).items() if k in ("chara", "ccv3")}
    assert (
        json.loads(base64.b64decode(texts["ccv3"]))["data"]["extensions"]["x_tool"] == EXT["x_tool"]
    )
    assert json.loads(base64.b64decode(texts["chara"]))["spec"] == "chara_card_v2"
    with zipfile.ZipFile(io.BytesIO(httpx.get(base, params={"format": "charx"}).content)) as z:
        assert (
            z.read("assets/voice/hello.wav") == sample and z.read("x_app/state.json") == b'{"k": 1}'
        )
        assert z.read("assets/icon/images/main.png") == icon
        assert json.loads(z.read("card.json"))["data"]["x_unknown_field"] == {"keep": ["me"]}
    # Exported CHARX imports again with everything.
    again = upload(live_server, httpx.get(base, params={"format": "charx"}).content).json()
    assert again["id"] != cid and again["voice"] == "joe" and again["voice_sample"]
    assert httpx.get(base, params={"format": "gif"}).status_code == 400


def _png_texts(data: bytes) -> dict[str, bytes]:
    out, pos = {}, 8
    while pos < len(data):
        (length,), kind = struct.unpack(">I", data[pos : pos + 4]), data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"tEXt":
            key, _, value = body.partition(b"\0")
            out[key.decode()] = value
        pos += 12 + length
    return out


def test_hostile_uploads_are_refused_and_nothing_is_stored(live_server) -> None:
    def state() -> tuple[list[str], list[str]]:
        ids = sorted(
            c["id"] for c in httpx.get(live_server.url + "/v1/characters").json()["characters"]
        )
        root = live_server.data / "characters"
        files = (
            sorted(str(p.relative_to(root)) for p in root.rglob("*") if ".staging" not in p.parts)
            if root.exists()
            else []
        )
        return ids, files

    before = state()
    zip_slip = charx(v3("Slip", "x"), {"../../evil.txt": b"x"})
    bomb = charx(v3("Bomb", "x"), {"big.bin": b"\0" * (17 << 20)})
    bad_crc = bytearray(png({"chara": v2("Crc", "x")}))
    bad_crc[30] ^= 0xFF
    cases = [
        (b"hello, not a card", 415),
        (b"{not json", 400),
        (b"[1, 2]", 415),
        (json.dumps({"spec": "chara_card_v2", "spec_version": "2.0"}).encode(), 422),
        (json.dumps(v2("   ", "x")).encode(), 422),
        (json.dumps(v2("Long", "x" * 70_000)).encode(), 422),
        (
            json.dumps(
                v2("Deep", "x", extensions={"a": json.loads("[" * 100 + "]" * 100)})
            ).encode(),
            422,
        ),
        (
            json.dumps(
                v3(
                    "Regex",
                    "x",
                    character_book={
                        "entries": [
                            {
                                "keys": ["/(unclosed/"],
                                "content": "c",
                                "use_regex": True,
                                "enabled": True,
                                "insertion_order": 0,
                            }
                        ]
                    },
                )
            ).encode(),
            422,
        ),
        (png(), 422),
        (bytes(bad_crc), 422),
        (zip_slip, 422),
        (bomb, 413),
        (b"", 400),
    ]
    for data, status in cases:
        r = upload(live_server, data)
        assert r.status_code == status, (data[:40], r.text)
        err = r.json()["error"]
        assert err["code"] and err["message"]
    r = upload(live_server, json.dumps(v2("Voiceless", "x")).encode(), voice="no-such-voice")
    assert r.status_code == 422 and r.json()["error"]["code"] == "unknown_voice"
    r = httpx.post(live_server.url + "/v1/characters", files={"other": ("a", b"b")}, timeout=10)
    assert r.status_code == 400
    # Over the cap: refused from the Content-Length alone, or after the cap when chunked.
    reply = raw_request(
        live_server,
        f"POST /v1/characters HTTP/1.1\r\nHost: {host_of(live_server)}\r\nContent-Type: image/png\r\n"
        f"Content-Length: {40 << 20}\r\n\r\n",
        b"\x89PNG",
    )
    assert reply.startswith("HTTP/1.1 413") and "too_large" in reply
    head = f"POST /v1/characters HTTP/1.1\r\nHost: {host_of(live_server)}\r\nContent-Type: image/png\r\nTransfer-Encoding: chunked\r\n\r\n"
    block = b"\0" * (1 << 20)
    reply = raw_request(
        live_server, head, b"".join(b"%x\r\n%s\r\n" % (len(block), block) for _ in range(34))
    )
    assert reply.startswith("HTTP/1.1 413")
    # Shipped cards cannot be deleted or replaced; odd ids are just unknown.
    assert httpx.delete(live_server.url + "/v1/characters/sage").status_code == 403
    r = httpx.put(
        live_server.url + "/v1/characters/sage",
        content=json.dumps(v2("Sage2", "x")),
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 403 and r.json()["error"]["code"] == "shipped_character"
    for odd in ("..%2F..%2Fetc", "NOVA", "a" * 100):
        assert httpx.get(live_server.url + f"/v1/characters/{odd}").status_code == 404
        assert httpx.delete(live_server.url + f"/v1/characters/{odd}").status_code == 404
    assert state() == before


def test_voice_assignment_replace_and_delete(live_server) -> None:
    url = live_server.url + "/v1/characters"
    cid = upload(
        live_server, json.dumps(v2(f"Edit {uuid.uuid4().hex[:6]}", "Edit me.")).encode()
    ).json()["id"]
    r = httpx.put(f"{url}/{cid}", json={"voice": "joe"})
    assert r.status_code == 200 and r.json()["voice"] == "joe"
    assert httpx.get(f"{url}/{cid}").json()["data"]["extensions"]["voice_chat"] == {"voice": "joe"}
    assert httpx.get(f"{url}/{cid}").json()["data"]["extensions"]["x_tool"] == EXT["x_tool"]
    r = httpx.put(f"{url}/{cid}", json={"voice": "no-such-voice"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "unknown_voice"
    # Replace the card (a PNG now): same id, new greeting and avatar, voice given in the form.
    r = httpx.put(
        f"{url}/{cid}",
        files={"file": ("c.png", png({"chara": v2("Edited", "Brand new.")}))},
        data={"voice": "joe"},
    )
    assert r.status_code == 200 and r.json()["id"] == cid and r.json()["name"] == "Edited"
    assert r.json()["avatar_url"] and r.json()["voice"] == "joe"
    r = httpx.put(f"{url}/{cid}", content=b"{broken", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and httpx.get(f"{url}/{cid}").json()["data"]["name"] == "Edited"
    # A shipped character gets a voice through a user copy; deleting it restores the shipped card.
    shipped_voice = httpx.get(f"{url}/pip").json()["data"]["extensions"]["voice_chat"]["voice"]
    r = httpx.put(f"{url}/pip", json={"voice": "joe"})
    assert r.status_code == 200 and r.json()["voice"] == "joe" and r.json()["customized"]
    r = httpx.delete(f"{url}/pip")
    assert r.status_code == 200 and r.json()["restored"]["voice"] == shipped_voice
    assert httpx.delete(f"{url}/{cid}").status_code == 200
    assert httpx.get(f"{url}/{cid}").status_code == 404
    assert httpx.delete(f"{url}/{cid}").status_code == 404


def cli(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "voice_chat", "characters", "--data", str(data), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_list_import_export_remove(live_server, tmp_path: Path) -> None:
    # The CLI works on the server's data directory; the running server sees its changes.
    data = live_server.data
    card_file = tmp_path / "cli.charx"
    card_file.write_bytes(charx_card(f"Cli {uuid.uuid4().hex[:6]}", "From the command line.")[0])
    r = cli(data, "import", str(card_file), "--voice", "joe")
    assert r.returncode == 0, r.stderr
    cid = r.stdout.split()[-1]
    assert cid in {
        c["id"] for c in httpx.get(live_server.url + "/v1/characters").json()["characters"]
    }
    rows = {row["id"]: row for row in json.loads(cli(data, "list", "--json").stdout)}
    assert (
        rows[cid]["voice"] == "joe" and rows[cid]["voice_sample"] == "hello.wav" and "nova" in rows
    )
    out = tmp_path / "out.charx"
    assert cli(data, "export", cid, "--format", "charx", "-o", str(out)).returncode == 0
    with zipfile.ZipFile(out) as z:
        assert "assets/voice/hello.wav" in z.namelist()
    assert (
        json.loads(cli(data, "export", cid, "--format", "v3", "-o", "-").stdout)["spec"]
        == "chara_card_v3"
    )
    assert cli(data, "remove", cid).returncode == 0
    assert httpx.get(live_server.url + f"/v1/characters/{cid}").status_code == 404
    # Bad input: exit code 2 and a clear message, nothing stored.
    bad = tmp_path / "bad.json"
    bad.write_text('{"spec": "chara_card_v2"}')
    bad_args = [
        ("import", str(bad)),
        ("import", str(tmp_path / "missing.png")),
        ("remove", "nova"),
        ("export", "no-such"),
        ("import", str(card_file), "--voice", "nope"),
        ("export", "nova", "--format", "gif"),
    ]
    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "voice_chat", "characters", "--data", str(data), *args],
            cwd=ROOT,
            stderr=subprocess.PIPE,
            text=True,
        )
        for args in bad_args
    ]
    for args, run in zip(bad_args, runs, strict=True):
        _, err = run.communicate(timeout=60)
        assert run.returncode == 2 and "voice-chat characters" in err, (args, err)
    listing = cli(data, "list").stdout
    assert cid not in listing and "nova" in listing and "shipped" in listing
