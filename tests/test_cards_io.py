"""Card import/export in every container, with round trips that keep unknown data."""

from __future__ import annotations

import base64
import io
import json
import struct
import wave
import zipfile
import zlib

import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from voice_chat.cards import (
    MEDIA_TYPES,
    Card,
    CardError,
    card_from_dict,
    export_card,
    load_card,
    load_card_file,
)
from voice_chat.cards.png import read_card_texts


def v2_card(**data: object) -> dict:
    base = {
        "name": "Nova",
        "description": "A friendly guide.",
        "personality": "warm",
        "scenario": "a café",
        "first_mes": "Hi {{user}}!",
        "mes_example": "",
        "creator_notes": "",
        "system_prompt": "",
        "post_history_instructions": "",
        "alternate_greetings": ["Hello there."],
        "tags": ["guide"],
        "creator": "me",
        "character_version": "1",
        "extensions": {"depth_prompt": {"depth": 4}, "voice_chat": {"voice": "amy"}},
        "x_unknown_data_field": {"keep": True},
    }
    base.update(data)
    return {"spec": "chara_card_v2", "spec_version": "2.0", "data": base, "fav": True}


def v3_card(**data: object) -> dict:
    card = v2_card(**data)
    card.update(spec="chara_card_v3", spec_version="3.0")
    card["data"].update(
        nickname="Novi",
        group_only_greetings=["Hi all."],
        creator_notes_multilingual={"en": "notes", "fr": "notes fr"},
        source=["https://example.invalid/nova"],
        creation_date=1700000000,
        modification_date=1700000001,
    )
    card["data"].update(data)
    return card


def png_image(size: tuple[int, int] = (8, 6), **texts: str) -> bytes:
    """A real PNG written by Pillow, with optional tEXt chunks."""
    info = PngInfo()
    for key, value in texts.items():
        info.add_text(key, value)
    out = io.BytesIO()
    Image.new("RGB", size, (200, 10, 10)).save(out, format="PNG", pnginfo=info)
    return out.getvalue()


def b64(obj: dict) -> str:
    return base64.b64encode(json.dumps(obj).encode()).decode()


def wav_bytes() -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(b"\0\0" * 160)
    return out.getvalue()


def charx(card: dict, files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("card.json", json.dumps(card))
        for name, data in files.items():
            z.writestr(name, data)
    return out.getvalue()


# --- JSON


def test_v1_flat_json() -> None:
    raw = {
        "name": "Old",
        "description": "d",
        "personality": "p",
        "scenario": "s",
        "first_mes": "hey",
        "mes_example": "<START>",
        "avatar": "none",
        "chat": "x",
    }
    card = load_card(json.dumps(raw).encode())
    assert card.spec == "v1"
    assert (card.name, card.first_mes, card.personality) == ("Old", "hey", "p")
    v2 = card.to_v2()
    assert v2["spec"] == "chara_card_v2" and v2["data"]["description"] == "d"
    assert v2["avatar"] == "none" and v2["chat"] == "x"  # unknown root fields kept
    assert v2["data"]["extensions"] == {} and v2["data"]["alternate_greetings"] == []


def test_v1_pygmalion_aliases() -> None:
    card = load_card(json.dumps({"char_name": "Pyg", "char_greeting": "yo"}).encode())
    assert (card.name, card.first_mes) == ("Pyg", "yo")


def test_v2_json_roundtrip_keeps_unknown_fields() -> None:
    raw = v2_card()
    card = load_card(json.dumps(raw).encode())
    assert card.spec == "v2" and card.voice == "amy"
    again = json.loads(export_card(card, "v2"))
    assert again == raw
    v3 = json.loads(export_card(card, "v3"))
    assert v3["spec"] == "chara_card_v3" and v3["spec_version"] == "3.0"
    assert v3["data"]["x_unknown_data_field"] == {"keep": True}
    assert v3["data"]["extensions"]["depth_prompt"] == {"depth": 4}
    assert v3["data"]["group_only_greetings"] == []
    assert v3["fav"] is True


def test_v3_json_fields() -> None:
    card = load_card(json.dumps(v3_card()).encode())
    assert card.spec == "v3"
    assert card.nickname == "Novi" and card.display_name == "Novi"
    assert card.group_only_greetings == ["Hi all."]
    assert json.loads(export_card(card, "v3")) == v3_card()


def test_v3_newer_spec_version_is_accepted() -> None:
    raw = v3_card()
    raw["spec_version"] = "3.1"
    assert load_card(json.dumps(raw).encode()).name == "Nova"


def test_utf8_bom_and_unicode() -> None:
    raw = v2_card(name="Ñoël 🌙")
    card = load_card(b"\xef\xbb\xbf" + json.dumps(raw, ensure_ascii=False).encode())
    assert card.name == "Ñoël 🌙"


# --- PNG


def test_png_chara_v2() -> None:
    card = load_card(png_image(chara=b64(v2_card())))
    assert card.spec == "v2" and card.name == "Nova"
    assert card.avatar() is not None and card.avatar()[1] == "image/png"


def test_png_prefers_ccv3() -> None:
    data = png_image(chara=b64(v2_card(name="V2name")), ccv3=b64(v3_card(name="V3name")))
    card = load_card(data)
    assert card.spec == "v3" and card.name == "V3name"


def test_png_ztxt_and_itxt_chunks() -> None:
    info = PngInfo()
    info.add_text("chara", b64(v2_card(name="Zed")), zip=True)  # iTXt, compressed
    out = io.BytesIO()
    Image.new("RGB", (4, 4)).save(out, format="PNG", pnginfo=info)
    assert load_card(out.getvalue()).name == "Zed"


def test_png_export_roundtrip_keeps_image_and_both_chunks() -> None:
    source = png_image((10, 7), chara=b64(v3_card()))
    card = load_card(source)
    out = export_card(card, "png")
    texts = read_card_texts(out)
    assert json.loads(texts["chara"])["spec"] == "chara_card_v2"
    assert json.loads(texts["ccv3"])["spec"] == "chara_card_v3"
    with Image.open(io.BytesIO(out)) as img:
        assert img.size == (10, 7)
        img.load()  # still a valid image
    again = load_card(out)
    assert again.to_v3() == card.to_v3()
    assert len(read_card_texts(export_card(again, "png"))) == 2  # old chunks replaced


def test_png_export_without_picture_generates_one() -> None:
    card = card_from_dict(v2_card())
    out = export_card(card, "png")
    with Image.open(io.BytesIO(out)) as img:
        img.load()
    assert load_card(out).to_v3() == card.to_v3()


# --- CHARX


def test_charx_with_assets() -> None:
    icon, voice = png_image((5, 5)), wav_bytes()
    raw = v3_card(
        assets=[
            {
                "type": "icon",
                "uri": "embeded://assets/icon/images/main.png",
                "name": "main",
                "ext": "png",
            },
            {
                "type": "voice",
                "uri": "embedded://assets/other/audio/sample.wav",
                "name": "sample",
                "ext": "wav",
            },
            {
                "type": "background",
                "uri": "https://example.invalid/bg.png",
                "name": "bg",
                "ext": "png",
            },
        ]
    )
    data = charx(
        raw,
        {
            "assets/icon/images/main.png": icon,
            "assets/other/audio/sample.wav": voice,
            "x_meta.json": b'{"app": 1}',
        },
    )
    card = load_card(data)
    assert card.avatar() == (icon, "image/png")
    sample = card.voice_sample()
    assert sample is not None
    assert (sample.name, sample.data, sample.media_type) == ("sample.wav", voice, "audio/wav")
    assert [a.data is not None for a in card.assets] == [True, True, False]
    again = load_card(export_card(card, "charx"))
    assert again.to_v3() == card.to_v3()
    assert again.files == card.files  # app-specific files kept
    assert again.voice_sample() == sample


def test_voice_sample_by_extension_only() -> None:
    raw = v3_card(
        assets=[{"type": "x_other", "uri": "embeded://a/b.mp3", "name": "hi", "ext": "mp3"}]
    )
    card = load_card(charx(raw, {"a/b.mp3": b"ID3\x03\x00" + b"\0" * 20}))
    sample = card.voice_sample()
    assert sample is not None and sample.name == "hi.mp3" and sample.media_type == "audio/mpeg"


def test_no_voice_sample_and_image_is_not_audio() -> None:
    raw = v3_card(assets=[{"type": "audio", "uri": "embeded://a.wav", "name": "x", "ext": "wav"}])
    card = load_card(charx(raw, {"a.wav": png_image()}))  # a PNG posing as audio
    assert card.voice_sample() is None
    assert card_from_dict(v2_card()).voice_sample() is None


def test_png_to_charx_to_png_keeps_avatar() -> None:
    picture = png_image((9, 9), chara=b64(v2_card()))
    card = load_card(picture)
    packed = load_card(export_card(card, "charx"))
    avatar = packed.avatar()
    assert avatar is not None and avatar[1] == "image/png"
    with Image.open(io.BytesIO(avatar[0])) as img:
        assert img.size == (9, 9)
    back = load_card(export_card(packed, "png"))
    assert back.to_v3()["data"]["assets"][0]["uri"] == "ccdefault:"
    with Image.open(io.BytesIO(back.avatar()[0])) as img:  # type: ignore[index]
        assert img.size == (9, 9)


def test_charx_jpeg_icon_converted_for_png_export() -> None:
    out = io.BytesIO()
    Image.new("RGB", (6, 3), (0, 0, 255)).save(out, format="JPEG")
    raw = v3_card(assets=[{"type": "icon", "uri": "embeded://i.jpg", "name": "main", "ext": "jpg"}])
    card = load_card(charx(raw, {"i.jpg": out.getvalue()}))
    assert card.avatar()[1] == "image/jpeg"  # type: ignore[index]
    with Image.open(io.BytesIO(export_card(card, "png"))) as img:
        assert img.format == "PNG" and img.size == (6, 3)


def test_data_uri_asset() -> None:
    icon = png_image((2, 2))
    uri = "data:image/png;base64," + base64.b64encode(icon).decode()
    card = card_from_dict(
        v3_card(assets=[{"type": "icon", "uri": uri, "name": "main", "ext": "png"}])
    )
    assert card.avatar() == (icon, "image/png")


# --- voice extension and misc


def test_voice_extension_accessors() -> None:
    card = card_from_dict(v2_card(extensions={"voice_chat": {"other": 1}, "ns/x": [1]}))
    assert card.voice is None
    card.set_voice("en_US-amy")
    assert card.voice == "en_US-amy"
    exported = json.loads(export_card(card, "v2"))["data"]["extensions"]
    assert exported == {"voice_chat": {"other": 1, "voice": "en_US-amy"}, "ns/x": [1]}
    card.set_voice(None)
    assert card.voice is None and card.extensions["voice_chat"] == {"other": 1}
    with pytest.raises(CardError):
        card.set_voice("")


def test_copy_is_independent() -> None:
    card = card_from_dict(v2_card())
    other = card.copy()
    other.set_voice("bob")
    assert card.voice == "amy" and other.voice == "bob"
    assert isinstance(other, Card)


def test_load_card_file_and_media_types(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "nova.png"
    path.write_bytes(export_card(card_from_dict(v2_card()), "png"))
    assert load_card_file(path).name == "Nova"
    assert MEDIA_TYPES["png"] == "image/png"


def test_export_unknown_format() -> None:
    with pytest.raises(CardError) as err:
        export_card(card_from_dict(v2_card()), "xml")  # type: ignore[arg-type]
    assert err.value.code == "unknown_format"


def test_png_writer_chunk_layout() -> None:
    out = export_card(card_from_dict(v2_card()), "png")
    pos, kinds = 8, []
    while pos < len(out):
        (length,) = struct.unpack(">I", out[pos : pos + 4])
        kind = out[pos + 4 : pos + 8]
        body = out[pos + 8 : pos + 8 + length]
        assert struct.unpack(">I", out[pos + 8 + length : pos + 12 + length])[0] == zlib.crc32(
            kind + body
        )
        kinds.append(kind)
        pos += 12 + length
    assert kinds[0] == b"IHDR" and kinds[-1] == b"IEND" and kinds.count(b"tEXt") == 2


def test_png_avatar_is_served_without_card_chunks() -> None:
    card = load_card(png_image((3, 3), chara=b64(v2_card())))
    avatar = card.avatar()
    assert avatar is not None and avatar[1] == "image/png"
    assert read_card_texts(avatar[0]) == {}
    with Image.open(io.BytesIO(avatar[0])) as img:
        assert img.size == (3, 3)
