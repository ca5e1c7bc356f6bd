"""Import and export a card in any container: JSON, PNG, CHARX.

:func:`load_card` sniffs the container from the bytes (PNG signature, zip magic, JSON text),
so a wrong file extension does not matter. :func:`export_card` writes one of
``"v2"`` / ``"v3"`` (JSON), ``"png"`` (``chara`` V2 + ``ccv3`` V3 chunks) or ``"charx"``.
"""

from __future__ import annotations

import io
import json
import zlib
from pathlib import Path
from typing import Any, Literal

from .charx import is_zip, read_charx, write_charx
from .errors import CardError
from .limits import MAX_CHARX_BYTES, MAX_IMAGE_PIXELS
from .model import Card
from .normalize import card_from_dict, parse_json_bytes
from .png import card_json_from_png, embed_card_texts, is_png, plain_png

ExportFormat = Literal["v2", "v3", "png", "charx"]
MEDIA_TYPES: dict[str, str] = {
    "v2": "application/json",
    "v3": "application/json",
    "png": "image/png",
    "charx": "application/zip",
}
FILE_EXTENSIONS = {"v2": ".json", "v3": ".json", "png": ".png", "charx": ".charx"}
ICON_PATH = "assets/icon/images/main.png"


def load_card(data: bytes) -> Card:
    """Parse a card from file bytes in any supported container. Raises ``CardError``."""
    if is_png(data):
        card = card_from_dict(parse_json_bytes(card_json_from_png(data), what="PNG card"))
        card.image = data
        return card
    if is_zip(data):
        card_json, files = read_charx(data)
        return card_from_dict(parse_json_bytes(card_json, what="card.json"), files=files)
    head = data[:64].lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"{"):
        return card_from_dict(parse_json_bytes(data))
    raise CardError("unknown_format", "not a character card (expected JSON, PNG or CHARX)")


def load_card_file(path: str | Path) -> Card:
    """Read and parse a card file (size-capped before reading)."""
    path = Path(path)
    if path.stat().st_size > MAX_CHARX_BYTES:
        raise CardError("too_large", f"{path.name} is over {MAX_CHARX_BYTES} bytes")
    return load_card(path.read_bytes())


def _dumps(obj: dict[str, Any], *, indent: int | None = 2) -> bytes:
    return json.dumps(obj, ensure_ascii=False, indent=indent).encode("utf-8")


def _png_base(card: Card) -> bytes:
    """The picture to embed the card in: its PNG, its icon (converted if needed) or a plain one."""
    if card.image is not None:
        return card.image
    avatar = card.avatar()
    if avatar is not None:
        if avatar[1] == "image/png":
            return avatar[0]
        converted = _to_png(avatar[0])
        if converted is not None:
            return converted
    shade = zlib.crc32(card.name.encode())
    return plain_png(rgb=(64 + shade % 128, 64 + (shade >> 8) % 128, 64 + (shade >> 16) % 128))


def _to_png(image: bytes) -> bytes | None:
    """Convert JPEG/WebP/GIF to PNG with Pillow when it is installed, else None."""
    try:
        from PIL import Image
    except ImportError:
        return None
    try:
        with Image.open(io.BytesIO(image)) as img:
            if img.width * img.height > MAX_IMAGE_PIXELS:
                return None
            out = io.BytesIO()
            img.save(out, format="PNG")
            return out.getvalue()
    except (OSError, ValueError, Image.DecompressionBombError):
        return None


def _png_v3(card: Card) -> dict[str, Any]:
    """V3 object for a PNG: the PNG itself is the main icon (``ccdefault:``)."""
    v3 = card.to_v3()
    for asset in v3["data"].get("assets") or []:
        if isinstance(asset, dict) and asset.get("type") == "icon" and asset.get("name") == "main":
            asset["uri"] = "ccdefault:"
    return v3


def _charx_parts(card: Card) -> tuple[dict[str, Any], dict[str, bytes]]:
    """V3 object and files for a CHARX: a ``ccdefault:`` icon becomes an embedded file."""
    v3, files = card.to_v3(), dict(card.files)
    data = v3["data"]
    if card.image is not None:
        assets = data.get("assets")
        if assets is None:
            assets = data["assets"] = [{"type": "icon", "uri": "ccdefault:", "name": "main"}]
        for asset in assets:
            if isinstance(asset, dict) and (asset.get("type"), asset.get("uri")) == (
                "icon",
                "ccdefault:",
            ):
                asset.update(uri=f"embeded://{ICON_PATH}", ext="png")
                files[ICON_PATH] = card.image
    return v3, files


def export_card(card: Card, fmt: ExportFormat) -> bytes:
    """Serialize ``card``. Unknown fields and extensions are kept in every format."""
    if fmt == "v2":
        return _dumps(card.to_v2())
    if fmt == "v3":
        return _dumps(card.to_v3())
    if fmt == "png":
        texts = {
            "chara": _dumps(card.to_v2(), indent=None),
            "ccv3": _dumps(_png_v3(card), indent=None),
        }
        return embed_card_texts(_png_base(card), texts)
    if fmt == "charx":
        v3, files = _charx_parts(card)
        return write_charx(_dumps(v3), files)
    raise CardError("unknown_format", f"unknown export format {fmt!r}")
