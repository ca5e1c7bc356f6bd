"""Speech sets for benchmarks/turns.py: paused utterances, short answers, plain questions,
backchannels, in several synthetic voices (espeak-ng, flite, Piper Joe, Kokoro), plus WER."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from voice_chat.audio import synthspeech as ss

# (before the pause, after it): the pause falls mid-sentence
PAUSED = [
    ("I was thinking", "that we could go to the beach this weekend."),
    ("Can you tell me about", "the mountains where you grew up?"),
    ("Those days", "a chicken leg was a rare dish."),
    ("My favorite color is", "a deep shade of blue."),
    ("I went to the store and", "bought some apples for the pie."),
    ("So yesterday my brother", "called me from the airport."),
    ("What do you think about", "dogs that live in the city?"),
    ("I would like to", "learn how to play the piano."),
]
SHORT = ["Yes.", "Sure, why not?", "No thanks.", "Okay.", "Maybe later.", "I don't know."]
QUESTIONS = [
    "What is your favorite kind of music?",
    "How are you today?",
    "Tell me something about the ocean.",
    "Do you like dogs or cats better?",
    "What should I cook for dinner tonight?",
    "Why is the sky blue?",
    "Where would you go if you could travel anywhere?",
    "Can you recommend a good book?",
]
BACKCHANNELS = ["Mm-hmm.", "Yeah.", "Right.", "Okay.", "Uh-huh.", "Haha."]
WER_SENTENCES = [
    "I had a really long day at work today.",
    "Don't throw trash on the street.",
    "Those days a chicken leg was a rare dish.",
    "My sister is getting married next month.",
    "The train to the city leaves at half past seven.",
    "Please turn the music down a little.",
    "We found an old map in the attic last summer.",
    "Could you remind me to call my mother tomorrow?",
]


@dataclass(frozen=True)
class Voice:
    name: str
    speak: Callable[[str], np.ndarray]  # text -> 16 kHz float32


def voices(neural: bool = True) -> list[Voice]:
    out = [
        Voice("espeak-us", lambda t: ss.espeak(t, voice="en-us", wpm=155)),
        Voice("espeak-gb-slow-low", lambda t: ss.espeak(t, voice="en-gb", wpm=130, pitch=35)),
        Voice("flite-slt", lambda t: ss.flite(t, voice="slt")),
        Voice("flite-awb-slow", lambda t: ss.flite(t, voice="awb", stretch=1.15)),
    ]
    if neural:
        from voice_chat.engines.tts_kokoro import KokoroSynth
        from voice_chat.engines.tts_piper import PiperSynth

        joe = PiperSynth("embedded:joe-medium", speed=1.0, variation=0.8, threads=1)
        kokoro = KokoroSynth("jf_alpha", speed=1.0, language="en-us")
        out += [
            Voice("piper-joe", lambda t: ss.neural(joe, t)),
            Voice("kokoro-alpha", lambda t: ss.neural(kokoro, t)),
        ]
    return out


def paused(voice: Voice, pair: tuple[str, str], pause_s: float) -> np.ndarray:
    a, b = ss.trim(voice.speak(pair[0])), ss.trim(voice.speak(pair[1]))
    return ss.join([a, b], [pause_s])


def words(text: str) -> list[str]:
    return re.sub(r"[^a-z' ]", " ", text.lower().replace("-", " ")).split()


def wer(ref: str, hyp: str) -> float:
    r, h = words(ref), words(hyp)
    d = np.arange(len(h) + 1)
    for i in range(1, len(r) + 1):
        prev, d = d, d.copy()
        d[0] = i
        for j in range(1, len(h) + 1):
            d[j] = min(prev[j] + 1, d[j - 1] + 1, prev[j - 1] + (r[i - 1] != h[j - 1]))
    return float(d[len(h)]) / max(1, len(r))
