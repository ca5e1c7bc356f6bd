"""The push-to-talk client against the real server and models (``live_server`` in conftest)."""

from __future__ import annotations

import asyncio
import io
import json
import shutil
import subprocess
import sys
import threading
import time
import uuid
import wave
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

from voice_chat.client.audio_io import AudioOutput
from voice_chat.client.connection import build_url
from voice_chat.client.controller import Controller, Phase
from voice_chat.client.devices import DeviceInfo
from voice_chat.client.pcm import level_dbfs, pcm16_to_float

if TYPE_CHECKING:
    from conftest import LiveServer

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent


def _espeak_wav(path: Path, text: str) -> Path:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng not installed (apt-get install espeak-ng)")
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(path), text], check=True)
    return path  # 22050 Hz mono: the client converts it to 16 kHz


def _talk(server: LiveServer, *args: str, timeout: float = 150) -> subprocess.CompletedProcess[str]:
    user = f"client-test-{uuid.uuid4().hex[:8]}"  # a new conversation (the server keeps history)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "voice_chat",
            "talk",
            "--server",
            server.ws_url,
            "--user",
            user,
            *args,
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=timeout,
    )


def _log(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _received(log: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [e["event"] for e in log if e["dir"] == "in" and e.get("event", {}).get("type") == kind]


def _wav(path: Path) -> tuple[int, np.ndarray]:
    with wave.open(str(path)) as w:
        assert w.getnchannels() == 1 and w.getsampwidth() == 2
        return w.getframerate(), pcm16_to_float(w.readframes(w.getnframes()))


def test_file_mode_round_trip(live_server: LiveServer, tmp_path: Path) -> None:
    wav_in = _espeak_wav(tmp_path / "in.wav", "What is your favorite color?")
    wav_out, events = tmp_path / "out.wav", tmp_path / "events.jsonl"
    out = _talk(
        live_server,
        "--input-file",
        str(wav_in),
        "--output-file",
        str(wav_out),
        "--text",
        "--event-log",
        str(events),
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 2, out.stdout  # the greeting is neither printed nor written
    you, reply = lines
    assert you.startswith("you: ") and "favorite" in you.lower() and "color" in you.lower()
    assert reply.startswith("Nova: ") and len(reply) > len("Nova: ") + 2

    log = _log(events)
    sent = [e["event"]["type"] for e in log if e["dir"] == "out" and "event" in e]
    assert sent == ["session.update", "input_audio_buffer.commit"]
    frames = [e["audio_bytes"] for e in log if e["dir"] == "out" and "audio_bytes" in e]
    assert set(frames[:-1]) == {640}  # 20 ms frames of 16 kHz PCM16
    sent_at = [e["t"] for e in log if e["dir"] == "out" and "audio_bytes" in e]
    assert sent_at[-1] - sent_at[0] > 0.8 * len(frames) * 0.02  # real-time pace
    greeting, answer = _received(log, "response.created")[:2]
    done = {e["response"]["id"]: e["response"] for e in _received(log, "response.done")}
    assert done[greeting["response"]["id"]]["status"] == "completed"  # not cut by our turn
    started = [
        e
        for e in _received(log, "response.audio.started")
        if e["response_id"] == answer["response"]["id"]
    ]
    audio_done = [
        e
        for e in _received(log, "response.audio.done")
        if e["response_id"] == answer["response"]["id"]
    ]

    rate, audio = _wav(wav_out)
    assert rate == started[0]["sample_rate"]  # PCM16 WAV at the announced rate
    duration = len(audio) / rate
    assert 0.5 < duration < 30
    assert duration == pytest.approx(audio_done[0]["audio_ms"] / 1000, abs=0.05)  # reply only
    assert level_dbfs(audio) > -40  # speech, not silence


def test_file_mode_hands_free_vad(live_server: LiveServer, tmp_path: Path) -> None:
    wav_in = _espeak_wav(tmp_path / "in.wav", "Hello, what is your name?")
    events = tmp_path / "events.jsonl"
    out = _talk(
        live_server, "--vad", "--input-file", str(wav_in), "--text", "--event-log", str(events)
    )
    assert out.returncode == 0, out.stderr
    you, reply = out.stdout.strip().splitlines()
    assert "name" in you.lower() and reply.startswith("Nova: ")
    log = _log(events)
    sent = [e["event"] for e in log if e["dir"] == "out" and "event" in e]
    assert sent[0]["session"]["turn_detection"] == {"type": "server_vad"}
    assert [e["type"] for e in sent] == ["session.update"]  # the server's VAD ended the turn
    assert _received(log, "input_audio_buffer.speech_stopped")


def test_greeting_only_output_file(live_server: LiveServer, tmp_path: Path) -> None:
    wav_out = tmp_path / "greeting.wav"
    out = _talk(live_server, "--output-file", str(wav_out), "--text", "--character", "nova")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("Nova: ") and len(out.stdout.splitlines()) == 1
    rate, audio = _wav(wav_out)
    assert 0.5 < len(audio) / rate < 30 and level_dbfs(audio) > -40


def test_unknown_character_is_a_clear_error(live_server: LiveServer) -> None:
    out = _talk(live_server, "--character", "nobody-here", "--say", "hi", "--text", timeout=30)
    assert out.returncode != 0
    assert "Traceback" not in out.stderr
    assert "nobody-here" in out.stderr or "unknown" in out.stderr.lower()


class _VirtualStream:
    """A PortAudio-like output stream whose callback runs in real time on a thread."""

    def __init__(self, samplerate: int, channels: int, callback: Any, **_: Any) -> None:
        self.rate, self.channels, self.callback = samplerate, channels, callback
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        block = self.rate // 50
        next_at = time.monotonic()
        while not self._stop.is_set():
            out = np.zeros((block, self.channels), dtype=np.float32)
            self.callback(out, block, None, None)
            next_at += block / self.rate
            time.sleep(max(0.0, next_at - time.monotonic()))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)

    def close(self) -> None:
        pass


class _VirtualSounddevice:
    PortAudioError = RuntimeError
    OutputStream = _VirtualStream


async def test_barge_in_cancels_and_truncates(live_server: LiveServer) -> None:
    """The talk key pressed while the character speaks: playback stops, the reply is cancelled
    and the server keeps only what was heard."""
    device = DeviceInfo(0, "virtual", "test", 0, 2, 44100.0)
    output = AudioOutput(_VirtualSounddevice(), device)  # type: ignore[arg-type]
    lines: list[str] = []
    log = io.StringIO()
    url = build_url(live_server.ws_url, "nova", f"barge-in-{uuid.uuid4().hex[:8]}", "manual")
    controller = Controller(url, output, lines.append, log=log)
    runner = asyncio.create_task(controller.run())

    async def until(predicate: Any, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            assert time.monotonic() < deadline, f"timed out waiting for {what}: {lines}"
            controller.tick()
            await asyncio.sleep(0.02)

    try:
        await until(lambda: controller.connected, 20, "the session")
        greeted = lambda: any(line.startswith("Nova:") for line in lines)  # noqa: E731
        await until(greeted, 40, "the greeting to be played")
        await until(lambda: controller.phase is Phase.READY, 10, "ready")
        controller.send_text("Tell me a long story about the sea and the ships on it.")
        await until(lambda: controller.phase is Phase.SPEAKING, 90, "the reply to start")
        rid = controller._audio_rid
        assert rid is not None
        await until(lambda: output.played_ms(rid) >= 300, 10, "300 ms of the reply heard")
        controller.start_recording()  # the talk key
        assert not output.is_playing() and controller.phase is Phase.RECORDING
        controller.cancel_recording()
        await until(lambda: any("[interrupted]" in line for line in lines), 20, "truncated")
    finally:
        controller.stop()
        await asyncio.wait_for(runner, 10)
        output.close()

    entries = [json.loads(line) for line in log.getvalue().splitlines()]
    sent = [e["event"] for e in entries if e["dir"] == "out" and "event" in e]
    cancel = next(e for e in sent if e["type"] == "response.cancel")
    truncate = next(e for e in sent if e["type"] == "conversation.item.truncate")
    assert cancel["response_id"] == truncate["response_id"] == rid
    assert 300 <= truncate["audio_end_ms"] < 1500  # what was actually played
    received = [e["event"] for e in entries if e["dir"] == "in" and "event" in e]
    done = next(e for e in received if e["type"] == "response.done" and e["response"]["id"] == rid)
    assert done["response"]["status"] == "cancelled"
    truncated = next(e for e in received if e["type"] == "conversation.item.truncated")
    assert truncated["audio_end_ms"] == truncate["audio_end_ms"]
    heard = truncated["text"].strip()
    assert len(heard) < len(done["response"]["text"].strip())  # history keeps what was heard
    assert " ".join(["Nova:", heard, "[interrupted]"]).replace("  ", " ") in lines
