"""The client's sound-card path for real, on a virtual device: a JACK server with the dummy
driver (``jackd -d dummy``: real-time paced, silent capture), reached through PortAudio's JACK
host API. Also the terminal UI under tmux against the real server on that device.

Needs the apt packages ``libportaudio2 jackd2 tmux``; skipped where they are missing.
"""

from __future__ import annotations

import ctypes.util
import json
import os
import pty
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from conftest import LiveServer

ROOT = Path(__file__).resolve().parent.parent
DEVICE = "system"  # the JACK host API's device in PortAudio


@pytest.fixture(scope="module")
def jack_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A private JACK server (dummy driver, 48 kHz); yields the environment for clients."""
    if shutil.which("jackd") is None or shutil.which("jack_wait") is None:
        pytest.skip("jackd not installed (apt-get install jackd2)")
    if ctypes.util.find_library("portaudio") is None:
        pytest.skip("PortAudio not installed (apt-get install libportaudio2)")
    name = f"vc-test-{uuid.uuid4().hex[:8]}"
    home = tmp_path_factory.mktemp("jack-home")
    env = {
        **os.environ,
        "HOME": str(home),
        "JACK_DEFAULT_SERVER": name,
        "JACK_NO_START_SERVER": "1",
        "JACK_NO_AUDIO_RESERVATION": "1",
    }
    env.pop("XDG_RUNTIME_DIR", None)  # no PulseAudio: the test uses JACK only
    log = open(home / "jackd.log", "wb")
    jackd = ["jackd", "--no-realtime", "-n", name, "-d", "dummy", "-r", "48000", "-p", "1024"]
    proc = subprocess.Popen(
        [*jackd, "-C", "2", "-P", "2"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        ready = subprocess.run(["jack_wait", "-w", "-t", "10"], env=env, capture_output=True)
        if ready.returncode != 0 or proc.poll() is not None:
            pytest.skip(f"jackd did not start: {(home / 'jackd.log').read_text()[-500:]}")
        probe = subprocess.run(
            [sys.executable, "-m", "voice_chat", "devices"], env=env, capture_output=True, text=True
        )
        if DEVICE not in probe.stdout:
            pytest.skip(f"PortAudio has no JACK device here: {probe.stdout}{probe.stderr}")
        yield env
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def test_devices_command_lists_the_virtual_device(jack_env: dict[str, str]) -> None:
    devices = [sys.executable, "-m", "voice_chat", "devices"]
    out = subprocess.run(devices, env=jack_env, capture_output=True, text=True)
    assert out.returncode == 0
    assert "input devices:" in out.stdout and "output devices:" in out.stdout
    assert "system  [JACK Audio Connection Kit]  2 ch, 48000 Hz" in out.stdout
    assert "Cannot connect" not in out.stderr  # libjack chatter is silenced


AUDIO_IO_SCRIPT = r"""
import asyncio, json, time
import numpy as np
from voice_chat.client.audio_io import AudioInput, AudioOutput
from voice_chat.client.devices import default_index, list_devices, load_sounddevice, resolve_device

async def main():
    sd = load_sounddevice()
    devices = list_devices(sd)
    dev_in = resolve_device("system", "input", devices, default_index(sd, "input"))
    dev_out = resolve_device("system", "output", devices, default_index(sd, "output"))
    out = AudioOutput(sd, dev_out)
    mic = AudioInput(sd, dev_in, asyncio.get_running_loop())
    t = np.arange(22050) / 22050  # 1 s of 440 Hz at the voice's rate
    pcm = (0.3 * np.sin(2 * np.pi * 440 * t) * 32767).astype("<i2").tobytes()
    out.start_response("r1", 22050)
    for i in range(0, len(pcm), 4410):
        out.feed("r1", pcm[i:i + 4410])
    out.finish_response("r1")
    start = time.monotonic()
    captured = 0
    mid_ms = None
    while time.monotonic() - start < 1.6:
        try:
            block = await asyncio.wait_for(mic.queue.get(), 0.5)
            captured += block.size
        except asyncio.TimeoutError:
            pass
        if mid_ms is None and time.monotonic() - start > 0.5:
            mid_ms = out.played_ms("r1")
    elapsed = time.monotonic() - start
    result = {
        "out_rate": out.rate, "in_rate": mic.rate, "played_ms": out.played_ms("r1"),
        "mid_ms": mid_ms, "playing": out.is_playing(), "captured": captured, "elapsed": elapsed,
    }
    out.start_response("r2", 22050)
    out.feed("r2", pcm)
    await asyncio.sleep(0.3)
    result["barge_in_heard_ms"] = out.interrupt("r2")
    result["after_flush_playing"] = out.is_playing()
    out.close()
    mic.close()
    print(json.dumps(result))

asyncio.run(main())
"""


def test_audio_io_moves_frames_on_the_virtual_device(jack_env: dict[str, str]) -> None:
    out = subprocess.run(
        [sys.executable, "-c", AUDIO_IO_SCRIPT],
        env=jack_env,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout.strip().splitlines()[-1])
    assert r["out_rate"] == 48000 and r["in_rate"] == 48000  # the device's native rate
    assert r["played_ms"] == pytest.approx(1000, abs=15)  # all of it, resampled 22.05k -> 48k
    assert 100 < r["mid_ms"] < 900  # ... at real-time pace, not all at once
    assert not r["playing"]
    assert r["captured"] == pytest.approx(16000 * r["elapsed"], rel=0.3)  # 48k -> 16 kHz blocks
    assert 0 < r["barge_in_heard_ms"] < 700 and not r["after_flush_playing"]


def _run_in_pty(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run with stdin/stdout on a pseudo-terminal (the interactive path), stderr captured."""
    master, slave = pty.openpty()
    try:
        return subprocess.run(
            args, stdin=slave, stdout=slave, stderr=subprocess.PIPE, env=env, text=True, timeout=30
        )
    finally:
        os.close(slave)
        os.close(master)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--input-device", "no-such-mic"], "no input device matches 'no-such-mic'"),
        (["--output-device", "99"], "no audio device with index 99"),
    ],
)
def test_missing_device_is_one_clear_line(
    jack_env: dict[str, str], flags: list[str], message: str
) -> None:
    args = [sys.executable, "-m", "voice_chat", "talk", "--server", "ws://127.0.0.1:9", *flags]
    out = _run_in_pty(args, jack_env)
    assert out.returncode == 2
    assert message in out.stderr and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


# ---------------------------------------------------------------- the terminal UI under tmux


class Tmux:
    def __init__(self, socket_name: str) -> None:
        self.socket = socket_name

    def run(self, *args: str) -> str:
        out = subprocess.run(
            ["tmux", "-L", self.socket, *args], capture_output=True, text=True, timeout=10
        )
        return out.stdout

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-t", "talk", "-S", "-200")

    def status(self) -> str:
        """The state word on the UI's status line (the last one drawn)."""
        lines = [ln for ln in self.screen().splitlines() if ln.startswith(" ") and "mic " in ln]
        return lines[-1].split()[0] if lines else ""

    def wait_for(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}; screen:\n{self.screen()}")

    def keys(self, *keys: str) -> None:
        self.run("send-keys", "-t", "talk", *keys)


def _events(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.mark.slow
def test_terminal_ui_under_tmux(
    jack_env: dict[str, str], live_server: LiveServer, tmp_path: Path
) -> None:
    if shutil.which("tmux") is None:
        pytest.skip("tmux not installed")
    tmux = Tmux(f"vc-{uuid.uuid4().hex[:8]}")
    log = tmp_path / "events.jsonl"
    done = tmp_path / "exit-code"
    flags = ["--input-device", DEVICE, "--output-device", DEVICE, "--event-log", str(log)]
    flags += [
        "--user",
        f"tmux-{uuid.uuid4().hex[:8]}",
    ]  # a new conversation: it starts with a greeting
    talk = " ".join(
        [sys.executable, "-m", "voice_chat", "talk", "--server", live_server.ws_url, *flags]
    )
    env_prefix = " ".join(
        f"{k}={jack_env[k]}" for k in ("HOME", "JACK_DEFAULT_SERVER", "JACK_NO_START_SERVER")
    )
    command = f"cd {ROOT} && env -u XDG_RUNTIME_DIR {env_prefix} {talk}; echo $? > {done}; sleep 60"
    tmux.run("new-session", "-d", "-s", "talk", "-x", "150", "-y", "30", command)
    try:
        # connecting -> the greeting plays (speaking) -> ready
        tmux.wait_for(lambda: tmux.status() in ("SPEAKING", "READY"), 30, "the greeting")
        tmux.wait_for(lambda: tmux.status() == "READY", 30, "ready after the greeting")
        assert "Nova:" in tmux.screen()  # the greeting line, once played
        assert "hold SPACE to talk" in tmux.screen()

        # hold the key: auto-repeat is simulated by a key every 40 ms
        tmux.keys("Space")
        tmux.wait_for(lambda: tmux.status() == "RECORDING", 5, "recording")
        for _ in range(25):
            tmux.keys("Space")
            time.sleep(0.04)
        assert tmux.status() == "RECORDING"
        # release: repeats stop -> the turn is committed (the dummy mic hears silence)
        tmux.wait_for(
            lambda: any(
                e.get("event", {}).get("type") == "input_audio_buffer.commit" for e in _events(log)
            ),
            5,
            "the commit after releasing the key",
        )
        tmux.wait_for(lambda: tmux.status() == "READY", 60, "ready after the silent turn")

        # type a line: sent as text, then thinking/speaking and the reply
        tmux.keys("Who are you?", "Enter")
        tmux.wait_for(lambda: "you: Who are you?" in tmux.screen(), 5, "the typed line")
        tmux.wait_for(lambda: tmux.status() in ("THINKING", "SPEAKING"), 10, "thinking")
        tmux.wait_for(lambda: tmux.status() == "SPEAKING", 60, "speaking")
        # barge in: the talk key while the character speaks stops it at once
        tmux.keys("Space")
        tmux.wait_for(lambda: tmux.status() == "RECORDING", 5, "recording after barge-in")
        tmux.wait_for(lambda: "[interrupted]" in tmux.screen(), 15, "the interrupted reply line")
        tmux.keys("Escape")  # discard the recording
        tmux.wait_for(lambda: tmux.status() == "READY", 10, "ready after Esc")

        sent = [e["event"] for e in _events(log) if e["dir"] == "out" and "event" in e]
        kinds = [ev["type"] for ev in sent]
        assert kinds[0] == "session.update"
        assert sent[0]["session"]["turn_detection"] == {"type": "manual"}
        assert "conversation.item.create" in kinds and "input_audio_buffer.clear" in kinds
        assert "conversation.item.truncate" in kinds
        assert kinds.index("response.cancel") < kinds.index("conversation.item.truncate") or (
            "response.cancel" not in kinds
        )

        tmux.keys("C-c")
        tmux.wait_for(done.exists, 10, "exit")
        assert done.read_text().strip() == "0"
        assert "Traceback" not in tmux.screen()
    finally:
        tmux.run("kill-server")
