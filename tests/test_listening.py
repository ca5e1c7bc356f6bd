"""Listening with the real models: Whisper's windows and non-speech, Smart Turn, and the real
server answering paused utterances once and silence never."""

from __future__ import annotations

import functools
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest
from speech import espeak, trim

from voice_chat.audio import synthspeech as ss
from voice_chat.audio.pcm import wav_bytes
from voice_chat.client.rtclient import RealtimeClient
from voice_chat.engines.stt_whisper import WhisperSTT, choose_window, collapse_repeats

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent


@functools.lru_cache(maxsize=1)
def stt() -> WhisperSTT:
    return WhisperSTT("embedded:tiny.en", cache_dir=Path("/nonexistent"), threads=2)


def padded(audio: np.ndarray, s: float = 0.3) -> np.ndarray:
    pad = np.zeros(int(16000 * s), np.float32)
    return np.concatenate([pad, audio, pad])


def test_windows_leave_whisper_room_to_end() -> None:
    assert choose_window(1.0) == 10.0
    assert choose_window(9.0) == 10.0
    assert choose_window(9.5) == 15.0
    assert choose_window(31.0) is None


def test_short_clips_that_looped_in_a_5_s_window_decode_once() -> None:
    # Both looped in the old 5 s window ("Sure, light out. Sure, light out. Sure, ...").
    for audio in (espeak("Sure, why not?", wpm=120), espeak("Yes.")):
        decoded = stt().decode(padded(audio))
        assert decoded.text and collapse_repeats(decoded.text) == decoded.text, decoded
        assert not decoded.looped and decoded.window_s == 10.0
    long = "I had a really long day at work today."
    text = stt().transcribe(ss.resample(ss.telephone(padded(espeak(long, wpm=120))), 8000, 16000))
    assert text.lower().count("long day") == 1, text


def test_silence_noise_and_breath_are_not_words_but_thank_you_is() -> None:
    s = stt()
    assert s.transcribe(np.zeros(48000, np.float32)) == ""  # Whisper says "you"
    for kind in ("white", "pink", "brown"):
        for level in (0.003, 0.03, 0.1):
            assert s.transcribe(ss.noise(48000, kind, 1) * level) == "", (kind, level)
    for seed in range(12):  # seed 9 made Whisper say "Aaaaaaa..." (a loop)
        breath = ss.sox(
            ss.noise(48000, "white", seed) * 0.05, 16000, "sinc", "200-2000", "tremolo", "0.5", "90"
        )
        assert s.transcribe(breath) == "", seed
    for voice in ("slt", "rms"):
        assert "thank" in s.transcribe(padded(ss.flite("Thank you.", voice=voice))).lower()
    assert "thank" in s.transcribe(padded(espeak("Thank you."))).lower()


def test_smart_turn_features_match_pipecat_reference() -> None:
    ref = pytest.importorskip("pipecat.audio.turn.smart_turn._whisper_features")
    from voice_chat.engines.turn_smart import SmartTurn, features

    audio = trim(espeak("I was thinking that we could go"))
    window = np.zeros(128000, np.float32)
    window[-len(audio) :] = audio
    expected = ref.compute_whisper_log_mel_features(window, do_normalize=True)
    assert np.abs(features(audio)[0] - expected).max() < 1e-4
    p = SmartTurn().probability(audio)
    assert 0.0 <= p <= 1.0


def _talk(server: object, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "voice_chat", "talk", "--server", server.ws_url]  # type: ignore[attr-defined]
    cmd += ["--user", f"listen-{uuid.uuid4().hex[:8]}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=150)


def test_a_silent_wav_gets_no_reply(live_server, tmp_path: Path) -> None:
    silent = tmp_path / "silence.wav"
    silent.write_bytes(wav_bytes(np.zeros(16000 * 3, np.float32), 16000))
    out = _talk(live_server, "--input-file", str(silent), "--text")
    assert "Nova:" not in out.stdout, out.stdout
    assert "no speech" in (out.stdout + out.stderr).lower(), (out.stdout, out.stderr)


async def test_paused_utterance_gets_one_reply_to_the_whole_sentence(live_server) -> None:
    first, second = (
        trim(espeak("I was thinking")),
        trim(espeak("that we could go to the beach this weekend.")),
    )
    speech = ss.join([first, second], [0.65])
    async with RealtimeClient.connect(
        live_server.ws_url, user=uuid.uuid4().hex, character="nova"
    ) as rt:
        created = await rt.wait_for("session.created", timeout=10)
        assert created.event["session"]["turn_detection"]["type"] == "semantic_vad"
        await rt.wait_for("response.done", timeout=120)  # the greeting
        start = rt.mark()
        await rt.send_speech(speech, tail_s=1.5)
        done = await rt.wait_for("response.done", timeout=120, since=start)
        assert done.event["response"]["status"] == "completed"
        created = [r for r in rt.log[start:] if r.event and r.event["type"] == "response.created"]
        assert len(created) == 1  # nothing was said after "I was thinking"
        transcript = rt.events("conversation.item.input_audio_transcription.completed")[-1][
            "transcript"
        ]
        assert "thinking" in transcript.lower() and "beach" in transcript.lower(), transcript


async def test_noise_gets_no_reply_but_a_question_does(live_server) -> None:
    async with RealtimeClient.connect(
        live_server.ws_url, user=uuid.uuid4().hex, character="nova"
    ) as rt:
        await rt.wait_for("response.done", timeout=120)
        start = rt.mark()
        await rt.send_speech(ss.noise(16000 * 2, "pink", 3) * 0.02, tail_s=1.0)
        await rt.send_speech(np.zeros(16000, np.float32), tail_s=0.5)
        assert not [r for r in rt.log[start:] if r.event and r.event["type"] == "response.created"]
