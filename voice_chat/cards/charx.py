"""CHARX container: a zip with ``card.json`` (V3) at its root plus embedded asset files.

Reading checks every member before unpacking anything: file size, member count, path safety
(no absolute paths, drive letters, backslashes, ``..`` or empty segments, no symlinks, no
duplicates), no encryption, declared sizes against the limits and the compression ratio; then
counts the bytes actually inflated so a member that lies about its size is caught too.
"""

from __future__ import annotations

import io
import stat
import struct
import zipfile

from .errors import CardError
from .limits import (
    MAX_ASSET_BYTES,
    MAX_CHARX_BYTES,
    MAX_COMPRESSION_RATIO,
    MAX_UNPACKED_BYTES,
    MAX_ZIP_ENTRIES,
    RATIO_FLOOR_BYTES,
)

CARD_JSON = "card.json"
ZIP_MAGIC = b"PK\x03\x04"
_READ_BLOCK = 64 * 1024


def is_zip(data: bytes) -> bool:
    return data.startswith(ZIP_MAGIC)


def check_member_path(name: str) -> str:
    """Return ``name`` if it is a safe relative zip path, else raise ``CardError``."""
    parts = name.split("/")
    if (
        not name
        or name.startswith("/")
        or "\\" in name
        or "\0" in name
        or (len(name) > 1 and name[1] == ":")
        or any(part in ("", ".", "..") for part in parts[:-1])
        or parts[-1] in (".", "..")
    ):
        raise CardError("unsafe_zip_path", f"unsafe path in the CHARX zip: {name!r}")
    return name


def _check_info(info: zipfile.ZipInfo) -> None:
    check_member_path(info.filename)
    if info.flag_bits & 0x1:
        raise CardError("invalid_zip", f"encrypted zip member {info.filename!r}")
    if stat.S_ISLNK(info.external_attr >> 16):
        raise CardError("unsafe_zip_path", f"symlink in the CHARX zip: {info.filename!r}")
    if info.file_size > MAX_ASSET_BYTES:
        raise CardError("zip_bomb", f"zip member {info.filename!r} is over {MAX_ASSET_BYTES}")
    if info.file_size > RATIO_FLOOR_BYTES and info.file_size > MAX_COMPRESSION_RATIO * max(
        info.compress_size, 1
    ):
        raise CardError("zip_bomb", f"zip member {info.filename!r} has a suspicious ratio")


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, budget: int) -> bytes:
    cap = min(info.file_size, budget)
    out = bytearray()
    with archive.open(info) as member:
        while chunk := member.read(_READ_BLOCK):
            out += chunk
            if len(out) > cap:
                raise CardError("zip_bomb", f"zip member {info.filename!r} inflates past limits")
    return bytes(out)


def _precheck_entry_count(data: bytes) -> None:
    """Read the entry count from the end-of-central-directory record before ``zipfile``
    builds one object per entry (a forged directory could hold hundreds of thousands)."""
    eocd = data.rfind(b"PK\x05\x06", max(0, len(data) - 65_557))
    if eocd < 0 or eocd + 22 > len(data):
        raise CardError("invalid_zip", "not a valid zip/CHARX file: no end of central directory")
    (entries,) = struct.unpack("<H", data[eocd + 10 : eocd + 12])
    if entries > MAX_ZIP_ENTRIES:  # 0xFFFF (ZIP64) included: never needed for a card
        raise CardError("zip_too_many_files", f"the CHARX has over {MAX_ZIP_ENTRIES} entries")


def read_charx(data: bytes) -> tuple[bytes, dict[str, bytes]]:
    """``(card.json bytes, {path: bytes} of the other files)``. Raises ``CardError``."""
    if len(data) > MAX_CHARX_BYTES:
        raise CardError("too_large", f"the CHARX file is over {MAX_CHARX_BYTES} bytes")
    _precheck_entry_count(data)
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError) as exc:
        raise CardError("invalid_zip", f"not a valid zip/CHARX file: {exc}") from None
    with archive:
        infos = [i for i in archive.infolist() if not i.is_dir()]
        if len(archive.infolist()) > MAX_ZIP_ENTRIES:
            raise CardError("zip_too_many_files", f"the CHARX has over {MAX_ZIP_ENTRIES} entries")
        seen: set[str] = set()
        for info in archive.infolist():
            _check_info(info)
            if info.filename in seen:
                raise CardError("invalid_zip", f"duplicate zip member {info.filename!r}")
            seen.add(info.filename)
        if sum(i.file_size for i in infos) > MAX_UNPACKED_BYTES:
            raise CardError("zip_bomb", f"the CHARX unpacks to over {MAX_UNPACKED_BYTES} bytes")
        if CARD_JSON not in seen:
            raise CardError("missing_card_json", "the CHARX has no card.json at its root")
        budget = MAX_UNPACKED_BYTES
        files: dict[str, bytes] = {}
        try:
            for info in infos:
                files[info.filename] = _read_member(archive, info, budget)
                budget -= len(files[info.filename])
        except (
            zipfile.BadZipFile,
            zipfile.LargeZipFile,
            NotImplementedError,
            OSError,
            EOFError,
            ValueError,
        ) as exc:
            raise CardError("invalid_zip", f"the CHARX zip is corrupt: {exc}") from None
    return files.pop(CARD_JSON), files


def write_charx(card_json: bytes, files: dict[str, bytes]) -> bytes:
    """A CHARX zip: ``card.json`` and the asset files, deflated."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(CARD_JSON, card_json, compress_type=zipfile.ZIP_DEFLATED)
        for path, content in sorted(files.items()):
            archive.writestr(check_member_path(path), content, compress_type=zipfile.ZIP_DEFLATED)
    return buffer.getvalue()
