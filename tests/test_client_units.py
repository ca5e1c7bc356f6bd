"""Fast tests of the push-to-talk client's pieces (no server, no sound card)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import wave
from pathlib import Path

import numpy as np
import pytest

from voice_chat.client import connection as ev
from voice_chat.client.audio_io import PlaybackBuffer
from voice_chat.client.connection import ConnectError, Connection, build_url
from voice_chat.client.controller import Controller, Phase
from voice_chat.client.devices import AudioDeviceError, DeviceInfo, format_devices, resolve_device
from voice_chat.client.pcm import (
    Resampler,
    WavWriter,
    float_to_pcm16,
    level_dbfs,
    meter,
    pcm16_to_float,
    read_wav,
)
from voice_chat.client.ptt import KeyState, PushToTalk

ROOT = Path(__file__).resolve().parent.parent
TALK = [sys.executable, "-m", "voice_chat", "talk"]

# ---------------------------------------------------------------- push-to-talk key logic


def test_hold_with_autorepeat_sends_on_release() -> None:
    ptt = PushToTalk(hold_window=0.75, release_timeout=0.25)
    assert ptt.press(0.0) == "start"
    # OS repeat delay 0.5 s, then a repeat every 33 ms for a second
    times = [0.5 + i * 0.033 for i in range(30)]
    for t in times:
        assert ptt.press(t) is None
        assert ptt.tick(t + 0.01) is None
    assert ptt.state is KeyState.HELD
    assert ptt.tick(times[-1] + 0.2) is None
    assert ptt.tick(times[-1] + 0.3) == "stop"
    assert not ptt.active


def test_tap_latches_and_second_tap_sends() -> None:
    ptt = PushToTalk(hold_window=0.75, release_timeout=0.25)
    assert ptt.press(0.0) == "start"
    assert ptt.tick(0.5) is None and ptt.state is KeyState.PENDING
    assert ptt.tick(0.8) is None and ptt.state is KeyState.LATCHED
    assert ptt.tick(5.0) is None  # recording stays on
    assert ptt.press(5.0) == "stop"
    assert ptt.state is KeyState.IDLE


def test_toggle_only_ignores_repeats_of_a_held_key() -> None:
    ptt = PushToTalk(hold_window=0.75, release_timeout=0.25, toggle_only=True)
    assert ptt.press(0.0) == "start"
    for i in range(20):  # key held: repeats after 0.5 s
        assert ptt.press(0.5 + i * 0.03) is None
    assert ptt.press(3.0) == "stop"


def test_late_tick_second_press_counts_as_tap() -> None:
    ptt = PushToTalk(hold_window=0.75, release_timeout=0.25)
    ptt.press(0.0)
    assert ptt.press(2.0) == "stop"  # no tick ran in between: still a second tap


# ---------------------------------------------------------------- PCM and WAV


def _write_wav(path: Path, data: bytes, rate: int, channels: int, width: int) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(data)


def test_pcm16_round_trip_and_clipping() -> None:
    x = np.array([0.0, 0.5, -0.5, 1.5, -1.5], dtype=np.float32)
    y = pcm16_to_float(float_to_pcm16(x))
    assert np.allclose(y[:3], x[:3], atol=1e-4)
    assert y[3] == pytest.approx(32767 / 32768) and y[4] == -1.0


@pytest.mark.parametrize(
    ("rate", "channels", "width"), [(44100, 2, 2), (8000, 1, 1), (48000, 1, 3)]
)
def test_read_wav_any_format_to_16k_mono(
    tmp_path: Path, rate: int, channels: int, width: int
) -> None:
    t = np.arange(rate) / rate  # 1 s of 440 Hz
    tone = 0.5 * np.sin(2 * np.pi * 440 * t)
    if width == 1:
        raw = ((tone * 127) + 128).astype(np.uint8)
    elif width == 2:
        raw = (tone * 32767).astype("<i2")
    else:
        ints = (tone * (2**23 - 1)).astype(np.int32)
        raw = np.stack([ints & 0xFF, (ints >> 8) & 0xFF, (ints >> 16) & 0xFF], axis=1).astype(
            np.uint8
        )
    if channels == 2:
        raw = np.repeat(raw, 2)
    path = tmp_path / "x.wav"
    _write_wav(path, raw.tobytes(), rate, channels, width)
    samples = read_wav(path)
    assert samples.dtype == np.float32
    assert abs(len(samples) - 16000) <= 16
    assert level_dbfs(samples) == pytest.approx(20 * np.log10(0.5 / np.sqrt(2)), abs=0.6)


def test_read_wav_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not a wav at all")
    with pytest.raises(ValueError, match="not a PCM WAV"):
        read_wav(bad)
    with pytest.raises(ValueError, match="no such file"):
        read_wav(tmp_path / "missing.wav")


def test_streaming_resampler_keeps_duration() -> None:
    r = Resampler(22050, 48000)
    chunks = [r.process(np.zeros(441, dtype=np.float32)) for _ in range(50)]  # 1 s in 20 ms
    total = sum(c.size for c in chunks) + r.flush().size
    assert abs(total - 48000) <= 48
    same = Resampler(16000, 16000)
    x = np.ones(10, dtype=np.float32)
    assert same.process(x) is not None and same.process(x).size == 10


def test_wav_writer_and_meter(tmp_path: Path) -> None:
    w = WavWriter(tmp_path / "o.wav")
    w.write(float_to_pcm16(np.zeros(2205, dtype=np.float32)), 22050)
    w.close()
    with wave.open(str(tmp_path / "o.wav")) as r:
        assert r.getframerate() == 22050 and r.getnframes() == 2205
    assert w.duration_s == pytest.approx(0.1)
    empty = WavWriter(tmp_path / "e.wav")
    empty.close()
    assert (tmp_path / "e.wav").stat().st_size > 0
    assert meter(0.0, 10) == "█" * 10 and meter(-100.0, 10) == "·" * 10
    assert level_dbfs(np.zeros(10, dtype=np.float32)) == -100.0


# ---------------------------------------------------------------- jitter buffer


def test_playback_buffer_prebuffers_counts_and_flushes() -> None:
    buf = PlaybackBuffer(rate=1000, prebuffer_ms=100)
    buf.push("r1", np.ones(50, dtype=np.float32))
    assert not buf.pull(10).any()  # below the prebuffer: silence
    buf.push("r1", np.ones(100, dtype=np.float32))
    assert buf.pull(100).all()
    assert buf.played_ms("r1") == 100
    out = buf.pull(100)  # 50 left, then an underrun: zeros, not a crash
    assert out[:50].all() and not out[50:].any()
    buf.push("r1", np.ones(20, dtype=np.float32))
    assert not buf.pull(10).any()  # re-buffers after an underrun
    buf.mark_complete("r1")
    assert buf.pull(10).all()  # ... unless the response is complete
    buf.push("r2", np.ones(500, dtype=np.float32))
    assert buf.has_audio("r2")
    buf.flush()
    assert not buf.has_audio() and buf.played_ms("r1") == 160


# ---------------------------------------------------------------- devices


DEVICES = [
    DeviceInfo(0, "HDA Intel PCH: ALC257 Analog (hw:0,0)", "ALSA", 2, 2, 48000.0),
    DeviceInfo(1, "USB Headset Mic", "ALSA", 1, 0, 44100.0),
    DeviceInfo(2, "USB Headset Speakers", "ALSA", 0, 2, 44100.0),
    DeviceInfo(3, "default", "ALSA", 32, 32, 44100.0),
]


def test_resolve_device_by_index_name_and_default() -> None:
    assert resolve_device(None, "input", DEVICES, 3).index == 3
    assert resolve_device("1", "input", DEVICES, 3).name == "USB Headset Mic"
    assert resolve_device("headset", "output", DEVICES, 3).index == 2
    assert resolve_device("DEFAULT", "output", DEVICES, 3).index == 3
    assert resolve_device(None, "output", DEVICES, -1).index == 0  # no default: first usable


@pytest.mark.parametrize(
    ("spec", "kind", "message"),
    [
        ("9", "input", "no audio device with index 9"),
        ("2", "input", "has no input channels"),
        ("bluetooth", "input", "no input device matches 'bluetooth'"),
        ("a", "input", "matches several input devices"),
    ],
)
def test_resolve_device_errors_are_one_line(spec: str, kind: str, message: str) -> None:
    with pytest.raises(AudioDeviceError, match=message) as info:
        resolve_device(spec, kind, DEVICES, 3)  # type: ignore[arg-type]
    assert "\n" not in str(info.value)


def test_format_devices_lists_both_kinds() -> None:
    text = format_devices(DEVICES, 1, 2)
    assert "input devices:" in text and "output devices:" in text
    assert "*  1  USB Headset Mic" in text and "*  2  USB Headset Speakers" in text
    assert "44100 Hz" in text


def test_missing_portaudio_gives_install_hint() -> None:
    code = (
        "import ctypes.util, sys\n"
        "ctypes.util.find_library = lambda name: None\n"
        "sys.modules.pop('sounddevice', None)\n"
        "from voice_chat.client.devices import load_sounddevice, AudioDeviceError\n"
        "try:\n    load_sounddevice()\nexcept AudioDeviceError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert "apt-get install libportaudio2" in out.stdout


# ---------------------------------------------------------------- connection


def test_build_url_variants() -> None:
    url = build_url("ws://127.0.0.1:8000", "nova", "ann", "manual")
    assert url == "ws://127.0.0.1:8000/v1/realtime?character=nova&user=ann&turn_detection=manual"
    assert build_url("localhost:9000").startswith("ws://localhost:9000/v1/realtime")
    assert build_url("https://h.example/vc/").startswith("wss://h.example/vc/v1/realtime")
    assert build_url("ws://h:1/v1/realtime?character=x") == "ws://h:1/v1/realtime?character=x"
    assert build_url("ws://h:1", user="", input_sample_rate=8000, dialect=None) == (
        "ws://h:1/v1/realtime?input_sample_rate=8000"
    )
    with pytest.raises(ConnectError, match="invalid server URL"):
        build_url("ftp://h")


def test_event_builders_follow_the_protocol() -> None:
    assert ev.session_update(turn_detection="manual", input_rate=16000, user="u") == {
        "type": "session.update",
        "session": {
            "turn_detection": {"type": "manual"},
            "input_audio_format": {"sample_rate": 16000},
            "user": {"id": "u"},
        },
    }
    assert ev.truncate("r1", 1234.7) == {
        "type": "conversation.item.truncate",
        "response_id": "r1",
        "audio_end_ms": 1234,
    }
    assert ev.text_message("hi")["item"] == {"type": "message", "role": "user", "text": "hi"}
    assert ev.cancel(None) == {"type": "response.cancel"}
    line = ev.describe_error(
        {"type": "error", "error": {"code": "nothing_to_commit", "message": "x"}}
    )
    assert line == "server error [nothing_to_commit]: x"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_connection_refused_is_a_readable_error() -> None:
    with pytest.raises(ConnectError, match="connection refused") as info:
        await Connection.open(f"ws://127.0.0.1:{_free_port()}/v1/realtime", open_timeout=3)
    assert info.value.retryable


def test_cli_connection_refused_exits_2_fast(tmp_path: Path) -> None:
    wav = tmp_path / "in.wav"
    _write_wav(wav, b"\0\0" * 1600, 16000, 1, 2)
    start = time.monotonic()
    out = subprocess.run(
        [*TALK, "--server", f"ws://127.0.0.1:{_free_port()}", "--input-file", str(wav), "--text"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=30,
    )
    assert out.returncode == 2
    assert "connection refused" in out.stderr and "voice-chat serve" in out.stderr
    assert "Traceback" not in out.stderr
    assert time.monotonic() - start < 8


def test_cli_bad_input_file_is_a_clear_error(tmp_path: Path) -> None:
    out = subprocess.run(
        [*TALK, "--input-file", str(tmp_path / "nope.wav")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=30,
    )
    assert out.returncode == 2 and "no such file" in out.stderr and "Traceback" not in out.stderr


# ---------------------------------------------------------------- controller (no network)


class FakeOutput:
    def __init__(self) -> None:
        self.fed: dict[str, int] = {}
        self.playing: set[str] = set()
        self.heard = 0

    def start_response(self, response_id: str, sample_rate: int) -> None:
        self.fed[response_id] = 0

    def feed(self, response_id: str, pcm16: bytes) -> None:
        self.fed[response_id] = self.fed.get(response_id, 0) + len(pcm16)
        self.playing.add(response_id)

    def finish_response(self, response_id: str) -> None:
        pass

    def interrupt(self, response_id: str | None) -> int:
        self.playing.clear()
        return self.heard

    def is_playing(self, response_id: str | None = None) -> bool:
        return bool(self.playing) if response_id is None else response_id in self.playing


def _controller() -> tuple[Controller, FakeOutput, list[str]]:
    lines: list[str] = []
    out = FakeOutput()
    c = Controller("ws://x/v1/realtime", out, lines.append)
    c.handle_event({"type": "session.created", "session": {"character_name": "Nova"}})
    return c, out, lines


def _sent(c: Controller) -> list[object]:
    items: list[object] = []
    while not c._outbox.empty():
        items.append(c._outbox.get_nowait())
    return items


async def test_controller_turn_flow_and_states() -> None:
    c, out, lines = _controller()
    assert c.phase is Phase.READY
    assert _sent(c)[0] == ev.session_update(turn_detection="manual", input_rate=16000)
    c.on_mic(np.zeros(320, dtype=np.float32))  # pre-roll, not sent yet
    assert _sent(c) == []
    c.start_recording()
    assert c.phase is Phase.RECORDING
    c.on_mic(np.full(320, 0.1, dtype=np.float32))
    c.stop_recording()
    sent = _sent(c)
    assert [type(m) for m in sent] == [bytes, bytes, dict]
    assert sent[-1] == ev.commit()
    assert c.phase is Phase.THINKING
    c.handle_event(
        {"type": "conversation.item.input_audio_transcription.completed", "transcript": "hi"}
    )
    c.handle_event({"type": "response.created", "response": {"id": "r1"}})
    c.handle_event({"type": "response.text.delta", "response_id": "r1", "delta": "Hello"})
    assert c.live_reply == "Hello" and c.phase is Phase.THINKING
    c.handle_event({"type": "response.audio.started", "response_id": "r1", "sample_rate": 22050})
    c.handle_audio(b"\0\0" * 100)
    assert c.phase is Phase.SPEAKING and out.fed["r1"] == 200
    c.handle_event({"type": "response.audio.done", "response_id": "r1"})
    c.handle_event(
        {"type": "response.done", "response": {"id": "r1", "status": "completed", "text": "Hello!"}}
    )
    c.tick()
    assert lines == ["you: hi"]  # still playing: the reply line waits for the end of playback
    out.playing.clear()
    c.tick()
    assert lines == ["you: hi", "Nova: Hello!"] and c.phase is Phase.READY


async def test_controller_barge_in_cancels_and_truncates_what_was_heard() -> None:
    c, out, lines = _controller()
    _sent(c)
    c.handle_event({"type": "response.created", "response": {"id": "r1"}})
    c.handle_event({"type": "response.audio.started", "response_id": "r1", "sample_rate": 22050})
    c.handle_audio(b"\0\0" * 2205)
    out.heard = 640
    c.start_recording()  # the talk key, pressed while the character speaks
    assert _sent(c) == [ev.cancel("r1"), ev.truncate("r1", 640)]
    assert not c.interrupt() and _sent(c) == []  # a second Esc sends nothing more
    assert not out.playing and c.phase is Phase.RECORDING
    c.handle_audio(b"\0\0" * 100)  # late frames of the cancelled reply are dropped
    assert "r1" not in out.playing
    c.handle_event(
        {"type": "response.done", "response": {"id": "r1", "status": "cancelled", "text": "A B"}}
    )
    c.handle_event({"type": "conversation.item.truncated", "response_id": "r1", "text": "A"})
    assert lines == ["Nova: A [interrupted]"]


async def test_controller_truncates_a_finished_reply_still_playing() -> None:
    c, out, _ = _controller()
    _sent(c)
    c.handle_event({"type": "response.created", "response": {"id": "r1"}})
    c.handle_event({"type": "response.audio.started", "response_id": "r1", "sample_rate": 22050})
    c.handle_audio(b"\0\0" * 2205)
    c.handle_event(
        {"type": "response.done", "response": {"id": "r1", "status": "completed", "text": "x"}}
    )
    out.heard = 300
    assert c.interrupt()
    assert _sent(c) == [ev.truncate("r1", 300)]  # nothing to cancel on the server


async def test_controller_text_and_errors() -> None:
    c, _, lines = _controller()
    _sent(c)
    c.send_text("  hello there ")
    assert _sent(c) == [ev.text_message("hello there")] and c.phase is Phase.THINKING
    c.handle_event({"type": "error", "error": {"code": "response_failed", "message": "boom"}})
    assert c.phase is Phase.READY
    assert lines == ["you: hello there", "error: server error [response_failed]: boom"]


async def test_controller_shows_a_resumed_conversation_and_partials() -> None:
    lines: list[str] = []
    c = Controller("ws://x/v1/realtime", FakeOutput(), lines.append)
    turns = [{"role": "user", "text": "hi"}, {"role": "assistant", "text": "Hello again."}]
    c.handle_event(
        {
            "type": "session.created",
            "session": {
                "character_name": "Nova",
                "conversation": {"resumed": True, "turns": turns},
            },
        }
    )
    assert lines == ["(conversation resumed)", "you: hi", "Nova: Hello again."]
    c.start_recording()
    delta = "conversation.item.input_audio_transcription.delta"
    c.handle_event({"type": delta, "delta": "what", "text": "what"})
    c.handle_event({"type": delta, "delta": " time", "text": "what's the time"})
    assert c.partial_transcript == "what's the time"  # ``text`` revises earlier words


def test_talk_without_the_client_extra_says_how_to_install_it(tmp_path: Path) -> None:
    # sitecustomize runs before the CLI: None in sys.modules makes the import fail
    (tmp_path / "sitecustomize.py").write_text(
        "import sys\nsys.modules['sounddevice'] = None\nsys.modules['prompt_toolkit'] = None\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    r = subprocess.run(
        [*TALK, "--server", "ws://127.0.0.1:9"], capture_output=True, text=True, env=env, timeout=60
    )
    assert r.returncode == 2
    assert "sounddevice and prompt_toolkit not installed" in r.stderr
    assert "voice-chat[client]" in r.stderr and "Traceback" not in r.stderr
    devices = subprocess.run(
        [sys.executable, "-m", "voice_chat", "devices"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert devices.returncode == 2 and "'client' extra" in devices.stderr
