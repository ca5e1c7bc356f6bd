"""Registering character voices: validation, analysis, similarity and storage.

Public API (for the HTTP API, CLI and page)::

    store = VoiceStore(settings.shared, settings.voices_dir)        # once per server
    spec = store.register(kind, name, files, params)              # -> VoiceSpec
    store.remove(voice_id, in_use_by=[...], force=False)
    wav = preview(spec, text, store.get)                          # -> WAV bytes
    HTTP_STATUS[error.code]                                       # VoiceError -> HTTP status

Kinds: ``piper`` (.onnx + .onnx.json), ``derived`` (base + WORLD parameters), ``blend`` /
``kokoro`` (Kokoro styles), ``clip`` (reference WAV: cloned with Coqui when a cloning model is
present, else approximated), ``coqui`` (checkpoint or cached model name).
"""

from voice_chat.voicelab.errors import HTTP_STATUS, VoiceError, status_for
from voice_chat.voicelab.kinds import ALLOWED, KINDS
from voice_chat.voicelab.store import VoiceStore, register_voice
from voice_chat.voicelab.synth_check import preview

__all__ = [
    "ALLOWED",
    "HTTP_STATUS",
    "KINDS",
    "VoiceError",
    "VoiceStore",
    "preview",
    "register_voice",
    "status_for",
]
