"""Test speech: see :mod:`voice_chat.audio.synthspeech`."""

from voice_chat.audio.synthspeech import espeak, trim

__all__ = ["espeak", "trim"]
