"""Turn detection on real (espeak) speech through the real Silero VAD."""

from __future__ import annotations

import numpy as np
from speech import espeak, trim

from voice_chat.pipeline.ports import TurnConfig
from voice_chat.pipeline.turns import TurnDetector


def run(detector: TurnDetector, audio: np.ndarray) -> list[tuple[str, int]]:
    events = []
    for i in range(0, len(audio), 320):
        events += [(e.kind, e.at_ms) for e in detector.feed(audio[i : i + 320])]
    return events


def test_one_utterance_gives_started_paused_ended() -> None:
    speech = espeak("Hello there, how are you today?")
    audio = np.concatenate([np.zeros(8000, np.float32), speech, np.zeros(16000, np.float32)])
    events = run(TurnDetector(TurnConfig(silence_ms=300, speculative_ms=100)), audio)
    kinds = [k for k, _ in events]
    assert kinds[0] == "started" and kinds[-1] == "ended"
    assert kinds.count("ended") == 1
    start = dict(events)["started"]
    assert 300 <= start <= 800  # speech begins at 500 ms
    end = events[-1][1]
    speech_end_ms = 500 + len(speech) / 16
    assert speech_end_ms < end < speech_end_ms + 700


def test_silence_and_noise_do_not_start_a_turn() -> None:
    rng = np.random.default_rng(0)
    noise = (0.01 * rng.standard_normal(16000 * 3)).astype(np.float32)
    assert run(TurnDetector(TurnConfig(speculative_ms=120)), np.zeros(16000 * 2, np.float32)) == []
    assert run(TurnDetector(TurnConfig(speculative_ms=120)), noise) == []


def test_short_pause_resumes_instead_of_ending() -> None:
    a, b = trim(espeak("I was thinking")), trim(espeak("about going outside"))
    gap = np.zeros(int(16000 * 0.2), np.float32)
    audio = np.concatenate([a, gap, b, np.zeros(16000, np.float32)])
    kinds = [k for k, _ in run(TurnDetector(TurnConfig(silence_ms=400, speculative_ms=100)), audio)]
    assert kinds.count("ended") == 1


def test_stream_gaps_fill_only_a_stream_behind_the_clock(monkeypatch) -> None:
    from voice_chat.pipeline import gaps

    now = [100.0]
    monkeypatch.setattr(gaps.time, "monotonic", lambda: now[0])
    g = gaps.StreamGaps(grace_s=0.5)
    assert g.missing() == 0  # nothing received yet: nothing to fill
    for _ in range(10):  # 10 s of audio sent in one second: ahead of the clock
        g.received(16000)
        now[0] += 0.1
    now[0] += 5.0
    assert g.missing() == 0  # still ahead (the audio plays until t=110)
    now[0] = 110.4
    assert g.missing() == 0  # within the grace: a stream held up by the network
    now[0] = 111.0
    assert g.missing() == 16000  # a second behind: a second of silence
    assert g.missing() == 0  # and not twice
    g.received(320)  # the client is back: its audio follows the filled time
    now[0] = 111.3
    assert g.missing() == 0
