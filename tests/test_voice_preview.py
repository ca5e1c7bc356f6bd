"""Unsaved voice previews for the voice lab's sliders: real synthesis, nothing stored."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from voice_chat.audio.dsp import median_f0
from voice_chat.audio.pcm import read_wav
from voice_chat.server.app import create_app
from voice_chat.settings import Settings


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory):
    app = create_app(Settings(data=tmp_path_factory.mktemp("preview")))
    with TestClient(app, base_url="http://127.0.0.1:8000") as c:
        yield c


# Long enough that Joe's random prosody (Piper's noise scale) averages out in the median.
TEXT = "Hello there, this is a test of my voice. I like long walks by the sea in the evening."


def _f0(client: TestClient, params: dict) -> float:
    r = client.post("/v1/voices/preview", json={"kind": "derived", "params": params, "text": TEXT})
    assert r.status_code == 200 and r.headers["content-type"] == "audio/wav"
    audio, rate = read_wav(r.content)
    assert len(audio) / rate > 1.0 and np.isfinite(audio).all()
    return median_f0(audio, rate)


def test_preview_moves_pitch_and_stores_nothing(client: TestClient, tmp_path: Path) -> None:
    # Joe's prosody is random from one synthesis to the next (about +-7 % in median pitch), so
    # compare the median of seven previews each (with three, 1 run in 3 missed by 0.02).
    base = float(np.median([_f0(client, {"base": "joe"}) for _ in range(7)]))
    up = float(np.median([_f0(client, {"base": "joe", "pitch_semitones": 5}) for _ in range(7)]))
    assert abs(up / base - 2 ** (5 / 12)) < 0.1  # 1.335 +- 7.5 %
    voices = client.get("/v1/voices").json()["voices"]
    assert "preview" not in {v["id"] for v in voices}


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"kind": "derived", "params": {"base": "joe", "pitch_semitones": 40}}, "invalid_params"),
        ({"kind": "derived", "params": {"base": "joe", "colour": "blue"}}, "invalid_params"),
        ({"kind": "derived", "params": {"base": "nobody"}}, "synthesis_failed"),
    ],
)
def test_bad_previews_are_refused(client: TestClient, body: dict, code: str) -> None:
    r = client.post("/v1/voices/preview", json=body)
    assert r.status_code in (400, 422) and r.json()["error"]["code"] == code


def test_preview_validates_text(client: TestClient) -> None:
    r = client.post(
        "/v1/voices/preview", json={"kind": "derived", "params": {"base": "joe"}, "text": ""}
    )
    assert r.status_code == 422
