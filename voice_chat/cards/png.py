"""PNG container: read and write the ``chara`` (V1/V2) and ``ccv3`` (V3) text chunks.

Parsing is done here with ``struct``/``zlib`` and never decodes the image data. Checks: file
size, chunk count, chunk lengths, CRCs, IHDR first with sane dimensions (a decompression bomb
is refused from its header), IEND present, and a cap on decoded card text (``zTXt``/``iTXt``
are decompressed with a length limit).
"""

from __future__ import annotations

import base64
import binascii
import struct
import zlib

from .errors import CardError
from .limits import (
    MAX_IMAGE_PIXELS,
    MAX_IMAGE_SIDE,
    MAX_PNG_BYTES,
    MAX_PNG_CHUNKS,
    MAX_PNG_TEXT_BYTES,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CARD_KEYWORDS = ("ccv3", "chara")  # in order of preference
TEXT_CHUNKS = (b"tEXt", b"zTXt", b"iTXt")

Chunk = tuple[bytes, bytes]  # (type, data)


def is_png(data: bytes) -> bool:
    return data.startswith(PNG_SIGNATURE)


def read_chunks(data: bytes) -> list[Chunk]:
    """All chunks up to IEND, validated. Raises ``CardError``."""
    if len(data) > MAX_PNG_BYTES:
        raise CardError("too_large", f"the PNG is over {MAX_PNG_BYTES} bytes")
    if not is_png(data):
        raise CardError("invalid_png", "not a PNG file")
    chunks: list[Chunk] = []
    pos = len(PNG_SIGNATURE)
    while True:
        if len(chunks) >= MAX_PNG_CHUNKS:
            raise CardError("invalid_png", f"the PNG has over {MAX_PNG_CHUNKS} chunks")
        if pos + 12 > len(data):
            raise CardError("invalid_png", "the PNG is truncated (no IEND chunk)")
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        end = pos + 8 + length
        if end + 4 > len(data):
            raise CardError("invalid_png", f"PNG chunk {kind!r} runs past the end of the file")
        body = data[pos + 8 : end]
        (crc,) = struct.unpack(">I", data[end : end + 4])
        if zlib.crc32(kind + body) != crc:
            raise CardError("invalid_png", f"PNG chunk {kind!r} has a bad CRC")
        if not chunks:
            _check_ihdr(kind, body)
        chunks.append((kind, body))
        pos = end + 4
        if kind == b"IEND":
            return chunks


def _check_ihdr(kind: bytes, body: bytes) -> None:
    if kind != b"IHDR" or len(body) != 13:
        raise CardError("invalid_png", "the PNG does not start with an IHDR chunk")
    width, height = struct.unpack(">II", body[:8])
    if not 0 < width <= MAX_IMAGE_SIDE or not 0 < height <= MAX_IMAGE_SIDE:
        raise CardError("image_too_large", f"image is {width}x{height}; max side {MAX_IMAGE_SIDE}")
    if width * height > MAX_IMAGE_PIXELS:
        raise CardError("image_too_large", f"image has over {MAX_IMAGE_PIXELS} pixels")


def image_size(data: bytes) -> tuple[int, int]:
    """Width and height of a valid PNG (validates the whole chunk structure)."""
    width, height = struct.unpack(">II", read_chunks(data)[0][1][:8])
    return width, height


def _inflate(data: bytes, budget: int) -> bytes:
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(data, budget + 1)
    except zlib.error as exc:
        raise CardError("invalid_png", f"a compressed PNG text chunk is corrupt: {exc}") from None
    if len(out) > budget or inflater.unconsumed_tail:
        raise CardError("too_large", f"PNG card text is over {MAX_PNG_TEXT_BYTES} bytes")
    return out


def _text_chunk(kind: bytes, body: bytes, budget: int) -> tuple[str, bytes] | None:
    """``(keyword, value bytes)`` of a text chunk, or None when malformed."""
    keyword, sep, rest = body.partition(b"\0")
    if not sep:
        return None
    name = keyword.decode("latin-1").lower()
    if name not in CARD_KEYWORDS:
        return name, b""  # not ours: not decoded
    if kind == b"tEXt":
        return name, rest
    if kind == b"zTXt":
        return name, _inflate(rest[1:], budget)
    if len(rest) < 2:
        return None
    compressed, rest = rest[0], rest[2:]
    _lang, _, rest = rest.partition(b"\0")
    _translated, _, text = rest.partition(b"\0")
    return name, _inflate(text, budget) if compressed else text


def read_card_texts(data: bytes) -> dict[str, bytes]:
    """Decoded JSON bytes of each card chunk found (``ccv3``, ``chara``): first one wins."""
    found: dict[str, bytes] = {}
    budget = MAX_PNG_TEXT_BYTES
    for kind, body in read_chunks(data):
        if kind not in TEXT_CHUNKS:
            continue
        parsed = _text_chunk(kind, body, budget)
        if parsed is None or parsed[0] not in CARD_KEYWORDS or parsed[0] in found:
            continue
        value = parsed[1].strip()
        budget -= len(value)
        if budget < 0:
            raise CardError("too_large", f"PNG card text is over {MAX_PNG_TEXT_BYTES} bytes")
        found[parsed[0]] = value if value.startswith(b"{") else _b64(parsed[0], value)
    return found


def _b64(name: str, value: bytes) -> bytes:
    try:
        return base64.b64decode(b"".join(value.split()), validate=True)
    except (binascii.Error, ValueError):
        raise CardError("invalid_png", f"the PNG '{name}' chunk is not base64") from None


def card_json_from_png(data: bytes) -> bytes:
    """The card JSON in a PNG (``ccv3`` preferred over ``chara``). Raises ``CardError``."""
    texts = read_card_texts(data)
    for keyword in CARD_KEYWORDS:
        if keyword in texts:
            return texts[keyword]
    raise CardError("no_card_in_png", "the PNG has no 'chara' or 'ccv3' character card chunk")


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def embed_card_texts(png: bytes, texts: dict[str, bytes]) -> bytes:
    """``png`` with its card chunks replaced by ``texts`` (keyword -> JSON bytes) as tEXt."""
    out = [PNG_SIGNATURE]
    for kind, body in read_chunks(png):
        if kind in TEXT_CHUNKS and body.partition(b"\0")[0].lower() in (
            b"chara",
            b"ccv3",
        ):
            continue
        if kind == b"IEND":
            out += [
                _chunk(b"tEXt", k.encode() + b"\0" + base64.b64encode(v)) for k, v in texts.items()
            ]
        out.append(_chunk(kind, body))
    return b"".join(out)


def strip_card_chunks(png: bytes) -> bytes:
    """``png`` without its ``chara``/``ccv3`` chunks (e.g. to serve it as a plain avatar)."""
    return embed_card_texts(png, {})


def plain_png(width: int = 64, height: int = 64, rgb: tuple[int, int, int] = (96, 96, 96)) -> bytes:
    """A solid-color RGB PNG (the picture of a card that has none)."""
    row = b"\x00" + bytes(rgb) * width
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"".join(
        [
            PNG_SIGNATURE,
            _chunk(b"IHDR", ihdr),
            _chunk(b"IDAT", zlib.compress(row * height)),
            _chunk(b"IEND", b""),
        ]
    )
