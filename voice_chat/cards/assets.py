"""V3 assets: resolving URIs to bytes, sniffing media types, avatar and voice sample lookup.

Supported URIs: ``embeded://path`` and ``embedded://path`` (a file inside the CHARX zip),
``ccdefault:`` (for an ``icon``: the PNG the card came in) and base64 ``data:`` URIs.
``http(s)://`` and anything else are kept but never fetched (``Asset.data`` is None).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

from .limits import MAX_DATA_URI_BYTES

EMBEDDED_PREFIXES = ("embeded://", "embedded://")
AUDIO_TYPES = ("voice", "audio")
AUDIO_EXTS = {
    "wav": "audio/wav",
    "mp3": "audio/mpeg",
    "ogg": "audio/ogg",
    "opus": "audio/ogg",
    "flac": "audio/flac",
}


@dataclass(frozen=True)
class Asset:
    """One entry of ``data.assets``; ``data`` is the resolved bytes or None."""

    type: str
    uri: str
    name: str
    ext: str
    data: bytes | None = None

    @property
    def media_type(self) -> str | None:
        return sniff_media_type(self.data) if self.data is not None else None


@dataclass(frozen=True)
class VoiceSample:
    """An audio asset offered for voice registration."""

    name: str  # file name, e.g. ``main.wav``
    data: bytes
    media_type: str


def embedded_path(uri: str) -> str | None:
    """The zip path of an ``embeded://`` / ``embedded://`` URI, else None."""
    for prefix in EMBEDDED_PREFIXES:
        if uri.startswith(prefix):
            return uri[len(prefix) :]
    return None


def sniff_media_type(data: bytes) -> str | None:
    """Media type from magic bytes (images and audio we care about), or None."""
    head = data[:16]
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "image/webp"
    if head.startswith(b"RIFF") and head[8:12] == b"WAVE":
        return "audio/wav"
    if head[4:12] in (b"ftypavif", b"ftypavis"):
        return "image/avif"
    if head.startswith(b"OggS"):
        return "audio/ogg"
    if head.startswith(b"fLaC"):
        return "audio/flac"
    if head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "audio/mpeg"
    return None


def _decode_data_uri(uri: str) -> bytes | None:
    header, sep, payload = uri.partition(",")
    if not sep or not header.endswith(";base64") or len(payload) > MAX_DATA_URI_BYTES * 4 // 3 + 4:
        return None
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        return None


def resolve_assets(raw: Any, files: dict[str, bytes], image: bytes | None) -> list[Asset]:
    """Turn ``data.assets`` into :class:`Asset` objects with their bytes where available.

    A missing ``assets`` means the V3 default: one ``icon`` named ``main`` at ``ccdefault:``.
    """
    if raw is None:
        raw = [{"type": "icon", "uri": "ccdefault:", "name": "main", "ext": "png"}]
    out: list[Asset] = []
    for item in raw if isinstance(raw, list) else []:
        if not isinstance(item, dict):
            continue
        kind, uri = str(item.get("type", "")), str(item.get("uri", ""))
        data: bytes | None = None
        path = embedded_path(uri)
        if path is not None:
            data = files.get(path)
        elif uri == "ccdefault:" and kind == "icon":
            data = image
        elif uri.startswith("data:"):
            data = _decode_data_uri(uri)
        out.append(Asset(kind, uri, str(item.get("name", "")), str(item.get("ext", "")), data))
    return out


def find_avatar(assets: list[Asset]) -> tuple[bytes, str] | None:
    """The main icon (``type: icon``, ``name: main`` first, then any icon) as image bytes."""
    icons = [a for a in assets if a.type == "icon" and a.data is not None]
    icons.sort(key=lambda a: a.name != "main")
    for icon in icons:
        media = icon.media_type
        if icon.data is not None and media is not None and media.startswith("image/"):
            return icon.data, media
    return None


def find_voice_sample(assets: list[Asset]) -> VoiceSample | None:
    """First audio asset: ``type`` voice, then audio, then any asset with an audio extension."""

    def rank(a: Asset) -> int:
        return AUDIO_TYPES.index(a.type) if a.type in AUDIO_TYPES else len(AUDIO_TYPES)

    candidates = [
        a
        for a in assets
        if a.data is not None and (a.type in AUDIO_TYPES or a.ext.lower() in AUDIO_EXTS)
    ]
    for asset in sorted(candidates, key=rank):
        assert asset.data is not None
        media = asset.media_type or AUDIO_EXTS.get(asset.ext.lower())
        if media is None or not media.startswith("audio/"):
            continue
        ext = asset.ext.lower() or media.split("/")[1]
        name = asset.name or "voice"
        return VoiceSample(name if name.endswith(f".{ext}") else f"{name}.{ext}", asset.data, media)
    return None
