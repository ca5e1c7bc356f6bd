"""Hostile and broken uploads: each raises one CardError with a clear code, nothing partial."""

from __future__ import annotations

import base64
import io
import json
import struct
import zipfile
import zlib

import pytest

from voice_chat.cards import CardError, card_from_dict, load_card
from voice_chat.cards import charx as charx_module
from voice_chat.cards import png as png_module
from voice_chat.cards.limits import MAX_JSON_BYTES, MAX_TEXT_FIELD_BYTES, MIB

SIG = b"\x89PNG\r\n\x1a\n"


def chunk(kind: bytes, body: bytes, crc: int | None = None) -> bytes:
    crc = zlib.crc32(kind + body) if crc is None else crc
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)


def ihdr(width: int = 4, height: int = 4) -> bytes:
    return chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))


def png(*chunks: bytes, width: int = 4, height: int = 4) -> bytes:
    idat = chunk(b"IDAT", zlib.compress((b"\0" + b"\0" * 3 * width) * height))
    return SIG + ihdr(width, height) + b"".join(chunks) + idat + chunk(b"IEND", b"")


def card_json(**data: object) -> dict:
    base: dict = {"name": "Nova", "description": "d", "first_mes": "hi"}
    base.update(data)
    return {"spec": "chara_card_v2", "spec_version": "2.0", "data": base}


def text_chunk(key: str, obj: object) -> bytes:
    return chunk(b"tEXt", key.encode() + b"\0" + base64.b64encode(json.dumps(obj).encode()))


def zip_bytes(files: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", method) as z:
        for name, data in files.items():
            z.writestr(zipfile.ZipInfo(name), data, compress_type=method)
    return out.getvalue()


def code_of(data: bytes) -> str:
    with pytest.raises(CardError) as err:
        load_card(data)
    assert err.value.message and str(err.value) == err.value.message
    assert 400 <= err.value.status < 500
    return err.value.code


# --- JSON


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"{not json", "invalid_json"),
        (b'{"name": NaN}', "invalid_json"),
        (b"{\xff\xfe}", "invalid_json"),
        (b"[1, 2]", "unknown_format"),
        (b"hello", "unknown_format"),
        (b"", "unknown_format"),
        (b'{"spec": "chara_card_v9", "data": {}}', "invalid_spec"),
        (b'{"spec": "chara_card_v2", "data": "x"}', "invalid_spec"),
        (b'{"description": "no name"}', "invalid_spec"),
        (b'{"spec": "chara_card_v2", "data": {"description": "x"}}', "missing_name"),
        (b'{"spec": "chara_card_v3", "data": {"name": "   "}}', "missing_name"),
        (b'{"spec": "chara_card_v2", "data": {"name": 5}}', "invalid_field"),
        (b'{"name": "a", "description": ["x"]}', "invalid_field"),
        (b'{"name": "a", "first_mes": {"x": 1}}', "invalid_field"),
    ],
)
def test_bad_json(raw: bytes, code: str) -> None:
    assert code_of(raw) == code


@pytest.mark.parametrize(
    ("data", "code"),
    [
        ({"description": "x" * (MAX_TEXT_FIELD_BYTES + 1)}, "field_too_long"),
        ({"description": "é" * (MAX_TEXT_FIELD_BYTES // 2 + 1)}, "field_too_long"),
        ({"name": "n" * 300}, "field_too_long"),
        ({"alternate_greetings": ["hi"] * 300}, "too_many_items"),
        ({"alternate_greetings": "hi"}, "invalid_field"),
        ({"tags": [1, 2]}, "invalid_field"),
        ({"extensions": []}, "invalid_field"),
        ({"assets": {"a": 1}}, "invalid_field"),
        ({"assets": [{"type": 1, "uri": "x", "name": "n", "ext": "png"}]}, "invalid_field"),
        ({"creation_date": "yesterday"}, "invalid_field"),
        ({"creator_notes_multilingual": {"en": 1}}, "invalid_field"),
        ({"character_book": []}, "invalid_field"),
        ({"character_book": {"entries": [{"keys": "a", "content": 5}]}}, "invalid_field"),
        ({"character_book": {"entries": [{"keys": [1], "content": "x"}]}}, "invalid_field"),
        ({"character_book": {"entries": [{"keys": ["a"], "enabled": "yes"}]}}, "invalid_field"),
        (
            {"character_book": {"entries": [{"keys": ["(unclosed"], "use_regex": True}]}},
            "invalid_regex",
        ),
        (
            {"character_book": {"entries": [{"keys": ["/" + "a" * 600 + "/"], "use_regex": True}]}},
            "invalid_regex",
        ),
        ({"character_book": {"entries": [{"keys": ["k"]}] * 1100}}, "too_many_items"),
    ],
)
def test_bad_fields(data: dict, code: str) -> None:
    assert code_of(json.dumps(card_json(**data)).encode()) == code


def test_oversized_json() -> None:
    raw = json.dumps(card_json(padding="x" * MAX_JSON_BYTES)).encode()
    assert code_of(raw) == "too_large"


def test_deep_nesting() -> None:
    assert code_of(b'{"name": "a", "x": ' + b"[" * 100 + b"]" * 100 + b"}") == "too_deep"
    assert code_of(b'{"name": "a", "x": ' + b"[" * 200_000 + b"]" * 200_000 + b"}") in (
        "invalid_json",
        "too_deep",
    )


def test_huge_integer() -> None:
    assert code_of(b'{"name": "a", "x": ' + b"9" * 5000 + b"}") == "invalid_json"


def test_error_is_all_or_nothing_and_typed() -> None:
    raw = card_json(
        character_book={
            "entries": [{"keys": ["ok"], "content": "fine"}, {"keys": ["(bad"], "use_regex": True}]
        }
    )
    with pytest.raises(CardError) as err:
        card_from_dict(raw)
    assert err.value.code == "invalid_regex" and "(bad" in err.value.message
    assert err.value.to_dict()["code"] == "invalid_regex"
    assert isinstance(err.value, ValueError)


# --- PNG


def test_png_without_card_chunk() -> None:
    assert code_of(png(chunk(b"tEXt", b"Comment\0hello"))) == "no_card_in_png"


def test_png_card_chunk_bad_base64_and_bad_json() -> None:
    assert code_of(png(chunk(b"tEXt", b"chara\0!!!not base64!!!"))) == "invalid_png"
    bad = base64.b64encode(b"{broken")
    assert code_of(png(chunk(b"tEXt", b"chara\0" + bad))) == "invalid_json"
    assert code_of(png(text_chunk("ccv3", {"spec": "chara_card_v3", "data": {}}))) == "missing_name"


def test_png_bad_crc_and_truncated() -> None:
    good = png(text_chunk("chara", card_json()))
    assert load_card(good).name == "Nova"
    assert code_of(png(chunk(b"tEXt", b"chara\0AAAA", crc=1))) == "invalid_png"
    assert code_of(good[: len(good) - 12]) == "invalid_png"  # no IEND
    assert code_of(good[:40]) == "invalid_png"
    assert code_of(SIG + chunk(b"IDAT", b"") + chunk(b"IEND", b"")) == "invalid_png"


def test_png_giant_dimensions_refused_from_header() -> None:
    # IHDR says 100000 x 100000: a decompression bomb; refused before any decoding.
    data = SIG + ihdr(100_000, 100_000) + text_chunk("chara", card_json()) + chunk(b"IEND", b"")
    assert code_of(data) == "image_too_large"
    data = SIG + ihdr(8000, 8000) + text_chunk("chara", card_json()) + chunk(b"IEND", b"")
    assert code_of(data) == "image_too_large"  # each side OK, too many pixels
    assert code_of(SIG + ihdr(0, 5) + chunk(b"IEND", b"")) == "image_too_large"


def test_png_file_too_large() -> None:
    data = png(text_chunk("chara", card_json())) + b"\0" * (20 * MIB)
    assert code_of(data) == "too_large"


def test_png_compressed_text_bomb() -> None:
    # 16 MiB of text compressed to ~16 KiB in a zTXt chunk: inflation stops at the 4 MiB cap.
    bomb = zlib.compress(b"A" * (16 * MIB), 1)
    assert code_of(png(chunk(b"zTXt", b"chara\0\0" + bomb))) == "too_large"
    assert code_of(png(chunk(b"zTXt", b"chara\0\0" + b"not zlib"))) == "invalid_png"


def test_png_too_many_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(png_module, "MAX_PNG_CHUNKS", 5)
    data = png(*[chunk(b"tEXt", b"Comment\0x")] * 10, text_chunk("chara", card_json()))
    assert code_of(data) == "invalid_png"


# --- CHARX


def test_charx_missing_card_json() -> None:
    assert code_of(zip_bytes({"other.json": b"{}"})) == "missing_card_json"


def test_charx_corrupt_zip() -> None:
    assert code_of(b"PK\x03\x04" + b"\0" * 100) == "invalid_zip"
    good = zip_bytes({"card.json": json.dumps(card_json()).encode()})
    broken = good.replace(b"Nova", b"Nove") if b"Nova" in good else good[:-30]
    assert code_of(broken) == "invalid_zip"


@pytest.mark.parametrize(
    "name", ["../evil.txt", "/etc/passwd", "C:/windows/x", "a\\..\\b", "ok/../../x", "a//b"]
)
def test_charx_unsafe_paths(name: str) -> None:
    data = zip_bytes({"card.json": json.dumps(card_json()).encode(), name: b"x"})
    assert code_of(data) == "unsafe_zip_path"


def test_charx_symlink_and_encrypted_and_duplicates() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("card.json", json.dumps(card_json()))
        link = zipfile.ZipInfo("link")
        link.external_attr = 0o120777 << 16
        z.writestr(link, "/etc/passwd")
    assert code_of(out.getvalue()) == "unsafe_zip_path"
    data = bytearray(zip_bytes({"card.json": json.dumps(card_json()).encode()}))
    data[6] |= 1  # local header: encrypted flag
    cd = data.rfind(b"PK\x01\x02")
    data[cd + 8] |= 1  # central directory: encrypted flag
    assert code_of(bytes(data)) == "invalid_zip"
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z, pytest.warns(UserWarning):
        z.writestr("card.json", json.dumps(card_json()))
        z.writestr("card.json", json.dumps(card_json()))
    assert code_of(out.getvalue()) == "invalid_zip"


def test_charx_too_many_files() -> None:
    files = {f"assets/f{i}.txt": b"x" for i in range(300)}
    files["card.json"] = json.dumps(card_json()).encode()
    assert code_of(zip_bytes(files)) == "zip_too_many_files"


def test_charx_zip_bombs(monkeypatch: pytest.MonkeyPatch) -> None:
    card = json.dumps(card_json()).encode()
    big = zip_bytes({"card.json": card, "bomb.bin": b"\0" * (17 * MIB)})
    assert code_of(big) == "zip_bomb"  # one member over MAX_ASSET_BYTES
    ratio = zip_bytes({"card.json": card, "r.bin": b"\0" * (2 * MIB)})
    assert code_of(ratio) == "zip_bomb"  # ~1000:1 compression
    monkeypatch.setattr(charx_module, "MAX_UNPACKED_BYTES", 1000)
    total = zip_bytes({"card.json": card, "a": b"x" * 600, "b": b"y" * 600}, zipfile.ZIP_STORED)
    assert code_of(total) == "zip_bomb"


def test_charx_member_lying_about_its_size() -> None:
    card = json.dumps(card_json()).encode()
    data = bytearray(zip_bytes({"card.json": card, "a.bin": b"z" * 5000}))
    for sig, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        pos = data.find(sig, data.find(b"a.bin") - 60 if sig == b"PK\x03\x04" else 0)
        pos = data.rfind(sig) if sig == b"PK\x01\x02" else pos
        data[pos + offset : pos + offset + 4] = struct.pack("<I", 10)
    assert code_of(bytes(data)) in ("invalid_zip", "zip_bomb")


def test_charx_file_too_large(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(charx_module, "MAX_CHARX_BYTES", 100)
    data = zip_bytes(
        {"card.json": json.dumps(card_json(description="x" * 500)).encode()}, zipfile.ZIP_STORED
    )
    assert code_of(data) == "too_large"


def test_charx_embedded_png_bomb_refused() -> None:
    icon = SIG + ihdr(100_000, 100_000) + chunk(b"IEND", b"")
    raw = card_json(
        assets=[{"type": "icon", "uri": "embeded://i.png", "name": "main", "ext": "png"}]
    )
    assert code_of(zip_bytes({"card.json": json.dumps(raw).encode(), "i.png": icon})) == (
        "image_too_large"
    )


def test_status_codes() -> None:
    assert CardError("too_large", "x").status == 413
    assert CardError("invalid_json", "x").status == 400
    assert CardError("unknown_format", "x").status == 415
    assert CardError("missing_name", "x").status == 422


def test_data_uri_png_bomb_refused() -> None:
    icon = SIG + ihdr(100_000, 100_000) + chunk(b"IEND", b"")
    uri = "data:image/png;base64," + base64.b64encode(icon).decode()
    raw = card_json(assets=[{"type": "icon", "uri": uri, "name": "main", "ext": "png"}])
    assert code_of(json.dumps(raw).encode()) == "image_too_large"


def test_charx_forged_directory_count_checked_before_parsing() -> None:
    data = bytearray(zip_bytes({"card.json": json.dumps(card_json()).encode()}))
    eocd = data.rfind(b"PK\x05\x06")
    data[eocd + 8 : eocd + 12] = struct.pack("<HH", 60_000, 60_000)
    assert code_of(bytes(data)) == "zip_too_many_files"
    assert code_of(bytes(data[:eocd])) == "invalid_zip"
