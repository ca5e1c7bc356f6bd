"""The terminal client without sound: text-only mode, and lines broken between words.

On a machine with no audio device (as here, when no sound server runs) ``voice-chat talk``
starts in text-only mode and says so: typed turns, printed replies, and the replies' audio in a
WAV when ``--reply-audio`` asks for it. The tmux test drives the real client in a real
terminal 56 columns wide against the real server.
"""

from __future__ import annotations

import re
import shutil
import sys
import uuid
import wave
from pathlib import Path

import pytest
from test_client_audio import ROOT, Tmux

from voice_chat.client.launcher import LiveServer
from voice_chat.client.textmode import TextOnlyOutput, wrap

WIDTH = 56


def test_wrap_breaks_between_words_with_a_hanging_name() -> None:
    line = "Nova: " + " ".join(["extraordinarily"] * 3 + ["long", "words", "and", "short"] * 4)
    out = wrap(line, 30).split("\n")
    assert all(len(row) <= 30 for row in out)
    assert " ".join(row.strip() for row in out) == line  # no word was cut
    assert out[1].startswith(" " * len("Nova: "))  # continuation lines hang under the text
    assert wrap("short line", 30) == "short line"


def test_text_only_output_counts_what_arrived_and_writes_it(tmp_path: Path) -> None:
    out = TextOnlyOutput(tmp_path / "replies.wav")
    out.start_response("r1", 16000)
    out.feed("r1", b"\x00\x10" * 16000)  # one second
    assert not out.is_playing() and out.played_ms("r1") == 1000
    assert out.interrupt("r1") == 1000  # read, so heard in full
    out.finish_response("r1")
    out.close()
    with wave.open(str(tmp_path / "replies.wav")) as w:
        assert w.getframerate() == 16000 and w.getnframes() == 16000


def _status(tmux: Tmux) -> str:
    rows = [r for r in tmux.screen().splitlines() if r.startswith(" ") and "text only" in r]
    return rows[-1].split()[0] if rows else ""


def _printed(screen: str, name: str) -> list[str]:
    """The printed ``name: ...`` lines of the screen, continuation lines joined with spaces."""
    out: list[str] = []
    rows = screen.splitlines()
    for i, row in enumerate(rows):
        if row.startswith(f"{name}: "):
            text = row
            for more in rows[i + 1 :]:
                if not more.startswith(" " * (len(name) + 2)) or not more.strip():
                    break
                text += " " + more.strip()
            out.append(text)
    return out


@pytest.mark.slow
def test_text_only_mode_without_an_audio_device(live_server: LiveServer, tmp_path: Path) -> None:
    if shutil.which("tmux") is None:
        pytest.skip("tmux not installed")
    tmux = Tmux(f"vc-text-{uuid.uuid4().hex[:8]}")
    audio, done = tmp_path / "replies.wav", tmp_path / "exit-code"
    user = f"text-{uuid.uuid4().hex[:8]}"
    args = ["talk", "--server", live_server.ws_url, "--user", user, "--reply-audio", str(audio)]
    talk = " ".join([sys.executable, "-m", "voice_chat", *args])
    # No sound server, no sound card: PortAudio finds no device at all.
    command = (
        f"cd {ROOT} && env -u XDG_RUNTIME_DIR -u JACK_DEFAULT_SERVER {talk}; "
        f"echo $? > {done}; sleep 60"
    )
    tmux.run("new-session", "-d", "-s", "talk", "-x", str(WIDTH), "-y", "40", command)
    try:
        tmux.wait_for(lambda: "Text-only mode" in tmux.screen(), 20, "the text-only notice")
        greeting = "Nova: Hey, it's Nova. Good to hear from you! How's your day going?"
        # READY also shows in the moment between connecting and the greeting's first event
        # (a loaded CI runner saw it there): wait for both, the greeting printed and READY.
        tmux.wait_for(
            lambda: greeting in _printed(tmux.screen(), "Nova") and _status(tmux) == "READY",
            60,
            "the greeting, then ready",
        )
        tmux.keys("Tell me a little about the sea and why you like it", "Enter")
        tmux.wait_for(lambda: "you: Tell me a little" in tmux.screen(), 10, "the typed line")
        tmux.wait_for(lambda: len(_printed(tmux.screen(), "Nova")) >= 2, 60, "the reply")
        tmux.wait_for(lambda: _status(tmux) == "READY", 30, "ready after the reply")
        screen = tmux.screen()
        assert all(len(row) <= WIDTH for row in screen.splitlines())
        # Every printed line broke between words: joined again, each word is whole.
        for line in _printed(screen, "Nova") + _printed(screen, "you"):
            for word in re.findall(r"[A-Za-z']+", line):
                assert len(word) < 25, line
        reply = _printed(screen, "Nova")[-1]
        assert len(reply) > len("Nova: ") + 3
        tmux.keys("C-c")
        tmux.wait_for(done.exists, 10, "exit")
        assert done.read_text().strip() == "0"
        assert "Traceback" not in tmux.screen()
        with wave.open(str(audio)) as w:  # the greeting and the reply, as sound
            assert w.getnframes() / w.getframerate() > 2.0
    finally:
        tmux.run("kill-server")
