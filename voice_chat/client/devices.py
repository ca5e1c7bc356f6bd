"""PortAudio devices: listing, ``--input-device``/``--output-device`` lookup, readable errors."""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Literal

Kind = Literal["input", "output"]

PORTAUDIO_MISSING = (
    "the PortAudio library is not installed: install it with `apt-get install libportaudio2` "
    "(Debian/Ubuntu) or `brew install portaudio` (macOS)"
)
CLIENT_PACKAGES = ("sounddevice", "prompt_toolkit")
CLIENT_EXTRA = (
    "the terminal client needs the 'client' extra: pip install 'voice-chat[client]' "
    "(in a checkout: .venv/bin/pip install -e '.[client]', or scripts/setup.sh)"
)


class AudioDeviceError(Exception):
    """An audio device problem; ``str()`` is a one-line message for the user."""


@dataclass(frozen=True)
class DeviceInfo:
    index: int
    name: str
    hostapi: str
    max_input_channels: int
    max_output_channels: int
    default_samplerate: float

    def channels(self, kind: Kind) -> int:
        return self.max_input_channels if kind == "input" else self.max_output_channels


@contextlib.contextmanager
def quiet_stderr_fd() -> Iterator[None]:
    """Silence C-level chatter on fd 2 (ALSA "underrun occurred", JACK probing).

    Python exceptions still surface: they propagate after fd 2 is restored.
    """
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def load_sounddevice() -> ModuleType:
    """Import sounddevice, turning a missing PortAudio library into an AudioDeviceError."""
    try:
        import sounddevice
    except OSError:
        raise AudioDeviceError(PORTAUDIO_MISSING) from None
    except ImportError:
        raise AudioDeviceError(f"sounddevice is not installed; {CLIENT_EXTRA}") from None
    module: ModuleType = sounddevice
    return module


def missing_client_packages() -> list[str]:
    """The packages of the ``client`` extra that cannot be imported here."""
    missing = []
    for name in CLIENT_PACKAGES:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
        except OSError:  # sounddevice without PortAudio: load_sounddevice says what to install
            pass
    return missing


def list_devices(sd: ModuleType) -> list[DeviceInfo]:
    try:
        raw: Any = sd.query_devices()
        apis = [api["name"] for api in sd.query_hostapis()]
    except sd.PortAudioError as exc:
        raise AudioDeviceError(f"cannot list audio devices: {portaudio_message(exc)}") from None
    return [
        DeviceInfo(
            index=int(dev["index"]),
            name=str(dev["name"]),
            hostapi=apis[dev["hostapi"]] if 0 <= dev["hostapi"] < len(apis) else "?",
            max_input_channels=int(dev["max_input_channels"]),
            max_output_channels=int(dev["max_output_channels"]),
            default_samplerate=float(dev["default_samplerate"]),
        )
        for dev in raw
    ]


def default_index(sd: ModuleType, kind: Kind) -> int:
    try:
        pair = sd.default.device
        value = pair[0] if kind == "input" else pair[1]
        return int(value) if value is not None else -1
    except (TypeError, ValueError, IndexError, sd.PortAudioError):
        return -1


def resolve_device(
    spec: str | None, kind: Kind, devices: list[DeviceInfo], default: int
) -> DeviceInfo:
    """Find a device by index or (case-insensitive) name substring; ``None`` means the default."""
    usable = [d for d in devices if d.channels(kind) > 0]
    if spec is None or spec.strip() == "":
        match = next((d for d in usable if d.index == default), None)
        if match is None:
            if not usable:
                raise AudioDeviceError(f"no audio {kind} device found (see `voice-chat devices`)")
            match = usable[0]
        return match
    spec = spec.strip()
    if spec.lstrip("-").isdigit():
        index = int(spec)
        match = next((d for d in devices if d.index == index), None)
        if match is None:
            raise AudioDeviceError(f"no audio device with index {index} (see `voice-chat devices`)")
        if match.channels(kind) == 0:
            raise AudioDeviceError(f"device {index} ({match.name}) has no {kind} channels")
        return match
    needle = spec.lower()
    exact = [d for d in usable if d.name.lower() == needle]
    if exact:
        return exact[0]
    found = [d for d in usable if needle in d.name.lower()]
    if not found:
        raise AudioDeviceError(f"no {kind} device matches {spec!r} (see `voice-chat devices`)")
    if len(found) > 1:
        names = ", ".join(f"{d.index}: {d.name}" for d in found[:6])
        raise AudioDeviceError(f"{spec!r} matches several {kind} devices ({names}); use the index")
    return found[0]


def format_devices(devices: list[DeviceInfo], default_in: int, default_out: int) -> str:
    """The table printed by ``voice-chat devices``."""
    if not devices:
        return "no audio devices found"
    lines: list[str] = []
    pairs: list[tuple[Kind, int]] = [("input", default_in), ("output", default_out)]
    for kind, default in pairs:
        lines.append(f"{kind} devices:")
        rows = [d for d in devices if d.channels(kind) > 0]
        if not rows:
            lines.append("  (none)")
        for d in rows:
            mark = "*" if d.index == default else " "
            chans = d.channels(kind)
            rate = f"{d.default_samplerate:g} Hz"
            lines.append(f" {mark}{d.index:>3}  {d.name}  [{d.hostapi}]  {chans} ch, {rate}")
    lines.append("(* = default; pass an index or part of a name to --input-device/--output-device)")
    return "\n".join(lines)


def portaudio_message(exc: BaseException) -> str:
    """PortAudio errors are tuples like ('Error opening InputStream: Device unavailable', -9985)."""
    args = getattr(exc, "args", ())
    text = str(args[0]) if args else str(exc)
    lowered = text.lower()
    if "unavailable" in lowered or "busy" in lowered:
        text += " (the device may be in use by another program)"
    elif "invalid sample rate" in lowered:
        text += " (the device does not support this rate)"
    return text
