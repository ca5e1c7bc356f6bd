"""A character's picture from an upload: checked, decoded safely, stored as a small PNG.

Anything that is not a PNG, JPEG, WebP or GIF image, is over :data:`MAX_PICTURE_BYTES`, or
claims more than :data:`MAX_PICTURE_PIXELS` (a decompression bomb: a small file that would
unpack into a huge bitmap) is refused before it is decoded. The result is at most
:data:`AVATAR_SIDE` pixels on each side, without metadata.
"""

from __future__ import annotations

import io
import warnings

from voice_chat.cards import sniff_media_type

from .errors import CharacterError

MAX_PICTURE_BYTES = 4 * 1024 * 1024
MAX_PICTURE_PIXELS = 6000 * 6000
AVATAR_SIDE = 512
ACCEPTED = ("image/png", "image/jpeg", "image/webp", "image/gif")


def picture_png(data: bytes) -> bytes:
    """The picture as a PNG of at most AVATAR_SIDE px a side. Raises ``CharacterError``."""
    from PIL import Image

    if len(data) > MAX_PICTURE_BYTES:
        raise CharacterError(
            "picture_too_large",
            f"The picture is {len(data) / 1048576:.1f} MB; the limit is "
            f"{MAX_PICTURE_BYTES // 1048576} MB.",
        )
    if sniff_media_type(data) not in ACCEPTED:
        raise CharacterError(
            "invalid_picture", "That file isn't a picture. Use a PNG, JPEG, WebP or GIF image."
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                width, height = img.size  # from the header: nothing is decoded yet
                if width * height > MAX_PICTURE_PIXELS or not width or not height:
                    raise CharacterError(
                        "picture_bomb",
                        f"The picture claims {width}x{height} pixels, far more than a picture "
                        "needs; it was refused. Use a smaller image.",
                    )
                img.seek(0)
                img.thumbnail((AVATAR_SIDE, AVATAR_SIDE))
                frame = img.convert("RGBA" if "A" in img.getbands() else "RGB")
    except CharacterError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise CharacterError(
            "picture_bomb",
            "Unpacked, the picture would be far larger than a picture needs, so it was refused. "
            "Use a smaller image.",
        ) from None
    except (OSError, ValueError, SyntaxError, Warning) as exc:
        raise CharacterError(
            "invalid_picture", f"The picture couldn't be read ({type(exc).__name__}): {exc}"
        ) from None
    out = io.BytesIO()
    frame.save(out, format="PNG", optimize=True)
    return out.getvalue()
