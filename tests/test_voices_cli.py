"""``voice-chat voices ...`` on a data directory, no server: list, add, preview, assign, remove."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from voice_chat.audio import dsp
from voice_chat.audio.pcm import read_wav
from voice_chat.client.launcher import ROOT

pytestmark = pytest.mark.slow


def cli(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "voice_chat", "voices", "--data", str(data), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def ids(data: Path) -> dict[str, dict]:
    out = cli(data, "list", "--json")
    assert out.returncode == 0, out.stderr
    return {v["id"]: v for v in json.loads(out.stdout)["voices"]}


def test_cli_add_preview_assign_remove(tmp_path: Path) -> None:
    data = tmp_path / "data"
    shipped = ids(data)
    assert shipped["joe"]["shipped"] is True and shipped["joe"]["sample_rate"] == 22050
    out = cli(
        data,
        "add",
        "--name",
        "Low Joe",
        "--kind",
        "derived",
        "--params-json",
        '{"base": "joe", "speed": 0.9}',
        "--param",
        "pitch_semitones=-3",
        "--param",
        "description=deeper",
    )
    assert out.returncode == 0 and "registered low-joe" in out.stdout, out.stderr
    voice = ids(data)["low-joe"]
    assert voice["shipped"] is False and voice["pitch_semitones"] == -3.0 and voice["speed"] == 0.9
    assert voice["description"] == "deeper"
    assert "low-joe" in cli(data, "list").stdout
    wav = tmp_path / "low.wav"
    out = cli(data, "preview", "low-joe", "--text", "Good evening, everyone.", "-o", str(wav))
    assert out.returncode == 0, out.stderr
    audio, rate = read_wav(wav.read_bytes())
    assert rate == 22050 and audio.size > rate // 2 and 60 < dsp.median_f0(audio, rate) < 160
    out = cli(data, "assign", "low-joe", "nova")
    assert out.returncode == 0 and "nova" in out.stdout, out.stderr
    out = cli(data, "remove", "low-joe")
    assert out.returncode == 2 and "voice_in_use" in out.stderr and "nova" in out.stderr
    assert cli(data, "remove", "low-joe", "--force").returncode == 0
    assert "low-joe" not in ids(data)
    assert sorted(p.name for p in (data / "voices").iterdir()) == [".lock", ".staging"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["add", "--name", "X", "--kind", "banjo"], "unknown_kind"),
        (["add", "--name", "X", "--kind", "derived", "--param", "base"], "KEY=VALUE"),
        (["add", "--name", "X", "--kind", "derived", "--params-json", "{no"], "not valid JSON"),
        (
            [
                "add",
                "--name",
                "X",
                "--kind",
                "derived",
                "--param",
                "base=joe",
                "--param",
                "pitch_semitones=40",
            ],
            "invalid_params",
        ),
        (["add", "--name", "X", "--kind", "clip", "--file", "/no/such.wav"], "no such file"),
        (["preview", "nope", "-o", "x.wav"], "unknown_voice"),
        (["preview", "joe", "--text", " ", "-o", "x.wav"], "--text"),
        (["remove", "joe"], "voice_shipped"),
        (["remove", "nope"], "unknown_voice"),
        (["assign", "joe", "nobody"], "unknown_character"),
        (["assign", "nope", "nova"], "unknown_voice"),
    ],
)
def test_cli_bad_input_exits_2(tmp_path: Path, args: list[str], message: str) -> None:
    out = cli(tmp_path / "data", *args)
    assert out.returncode == 2, (out.stdout, out.stderr)
    assert message in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert "Traceback" not in out.stderr
