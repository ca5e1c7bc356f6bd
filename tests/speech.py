"""Test speech: see :mod:`voice_chat.synthspeech`."""

from voice_chat.synthspeech import espeak, trim

__all__ = ["espeak", "trim"]
