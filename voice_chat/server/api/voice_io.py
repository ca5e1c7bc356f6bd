"""Reading voice requests and writing voice JSON, for the voices API and CLI.

* limits of uploads by file extension (``voicelab.limits``) and of the small JSON bodies;
* a streaming multipart reader: form fields in memory, file parts written to a folder as they
  arrive, a part over its limit (or a Content-Length over the whole cap) refused with 413 at
  once, an unsupported file type with 415 as soon as its headers are seen;
* ``voice_json``: a voice as the API lists it (file names instead of server paths, ``shipped``,
  ``sample_rate`` when known without loading a model, ``similarity`` of clip approximations).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any

from fastapi import Request
from python_multipart.multipart import MultipartParser, parse_options_header

from voice_chat.engines.base import EngineError
from voice_chat.engines.voices import PATH_FIELDS, VoiceError, VoiceSpec
from voice_chat.server.api.deps import ApiError, capped_stream, read_capped
from voice_chat.voicelab import limits

MAX_PREVIEW_TEXT = 500
MAX_JSON_BODY = 64 * 1024
MAX_FIELD_BYTES = 64 * 1024
MAX_FILES = 4
FORM_OVERHEAD = 256 * 1024
_CHECKPOINT = (".pth", ".pt", ".tar")
FILE_LIMITS: dict[str, int] = {
    ".onnx": limits.MAX_ONNX_BYTES,
    ".json": max(limits.MAX_PIPER_JSON_BYTES, limits.MAX_COQUI_CONFIG_BYTES),
    ".wav": limits.MAX_WAV_BYTES,
    **{ext: limits.MAX_COQUI_CHECKPOINT_BYTES for ext in _CHECKPOINT},
}
FORM_FIELDS = ("name", "kind", "params", "id")


def fail(code: str, message: str) -> ApiError:
    """A bad voice request; its status comes from voice_chat.errors.HTTP_STATUS (else 400)."""
    return ApiError(code, message)


# ------------------------------------------------------------------ voice JSON
def sample_rate(spec: VoiceSpec, resolve: Callable[[str], VoiceSpec]) -> int | None:
    """The output rate, when it is known without loading a model (Coqui: None)."""
    from voice_chat.engines.tts import flatten

    try:
        root = flatten(spec, resolve)[0]
        if root.engine == "kokoro":
            from voice_chat.engines.tts_kokoro import SAMPLE_RATE

            return SAMPLE_RATE
        if root.engine == "piper":
            from voice_chat.engines.tts_piper import resolve_piper

            config = (root.model_extra or {}).get("config")
            _, cfg = resolve_piper(root.model or "embedded:joe-medium", config)
            return int(json.loads(cfg.read_text(encoding="utf-8"))["audio"]["sample_rate"])
    except (EngineError, VoiceError, OSError, ValueError, KeyError, TypeError):
        return None
    return None


def voice_json(
    spec: VoiceSpec, shipped: bool, resolve: Callable[[str], VoiceSpec]
) -> dict[str, Any]:
    body = spec.model_dump()
    for name in PATH_FIELDS:  # file names only: no server paths in the API
        value = body.get(name)
        if isinstance(value, str) and Path(value).is_absolute():
            body[name] = Path(value).name
    body.pop("reference_wav", None)
    body["shipped"] = shipped
    body["sample_rate"] = sample_rate(spec, resolve)
    analysis = body.get("analysis")
    sim = analysis.get("similarity") if isinstance(analysis, dict) else None
    body["similarity"] = sim if isinstance(sim, dict) else None
    body.setdefault("message", None)
    return body


# ------------------------------------------------------------------ uploads
@dataclass
class Form:
    fields: dict[str, str] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)  # uploaded name -> file on disk


@dataclass
class _Part:
    name: str = ""
    filename: str | None = None
    data: bytearray = field(default_factory=bytearray)
    handle: IO[bytes] | None = None
    size: int = 0
    limit: int = MAX_FIELD_BYTES


class FormReader:
    """Streaming multipart parser: fields in memory, files to ``folder``, limits as it goes."""

    def __init__(self, folder: Path, coqui: bool) -> None:
        self.folder, self.coqui = folder, coqui
        self.form = Form()
        self.part = _Part()
        self._header = (bytearray(), bytearray())
        self._disposition = b""
        self._pending: list[tuple[IO[bytes], bytes]] = []
        self._handles: list[IO[bytes]] = []

    def callbacks(self) -> dict[str, Callable[..., None]]:
        return {
            "on_part_begin": self._begin,
            "on_part_data": self._data,
            "on_part_end": self._end,
            "on_header_field": lambda d, s, e: self._header[0].extend(d[s:e]),
            "on_header_value": lambda d, s, e: self._header[1].extend(d[s:e]),
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_done,
        }

    def _begin(self) -> None:
        self.part, self._disposition = _Part(), b""

    def _header_end(self) -> None:
        name, value = self._header
        if bytes(name).lower() == b"content-disposition":
            self._disposition = bytes(value)
        self._header = (bytearray(), bytearray())

    def _headers_done(self) -> None:
        _, opts = parse_options_header(self._disposition)
        self.part.name = opts.get(b"name", b"").decode("utf-8", "replace")
        if b"filename" not in opts:
            if self.part.name not in FORM_FIELDS:
                allowed = ", ".join(FORM_FIELDS)
                raise fail(
                    "invalid_upload", f"unexpected field {self.part.name!r}; use {allowed}, files"
                )
            return
        if self.part.name not in ("files", "file"):
            raise fail("invalid_upload", f"send files as 'files', not {self.part.name!r}")
        raw = opts[b"filename"].decode("utf-8", "replace").replace("\\", "/")
        filename = PurePosixPath(raw).name.strip()
        if not filename or "\x00" in filename or len(filename) > 200:
            raise fail("invalid_upload", "every file needs a plain file name")
        suffix = ".json" if filename.lower().endswith(".json") else PurePosixPath(filename).suffix
        limit = FILE_LIMITS.get(suffix.lower())
        if limit is None:
            raise fail(
                "unsupported_file",
                f"{filename}: unsupported file type; send .onnx + .onnx.json (piper), "
                ".wav (clip, coqui speaker) or a Coqui checkpoint (.pth + config.json)",
            )
        if suffix.lower() in _CHECKPOINT and not self.coqui:
            raise VoiceError(
                "engine_unavailable",
                "the Coqui engine is not installed here (scripts/install-coqui.sh)",
            )
        if filename in self.form.files or len(self.form.files) >= MAX_FILES:
            raise fail("invalid_upload", f"at most {MAX_FILES} files, each name once")
        path = self.folder / f"{len(self.form.files)}{suffix.lower()}"
        self.part.filename, self.part.limit = filename, limit
        self.part.handle = open(path, "wb")  # closed in close()
        self._handles.append(self.part.handle)
        self.form.files[filename] = path

    def _data(self, data: bytes, start: int, end: int) -> None:
        part = self.part
        part.size += end - start
        if part.size > part.limit:
            what = part.filename or f"field {part.name!r}"
            raise ApiError("too_large", f"{what} is over its limit of {part.limit} bytes")
        if part.handle is None:
            part.data.extend(data[start:end])
        else:
            self._pending.append((part.handle, data[start:end]))

    def _end(self) -> None:
        if self.part.handle is None:
            self.form.fields[self.part.name] = self.part.data.decode("utf-8", "replace")

    def flush(self) -> None:
        """Write what the last chunk held (called in a worker thread)."""
        pending, self._pending = self._pending, []
        for handle, data in pending:
            handle.write(data)

    def close(self) -> None:
        for handle in self._handles:
            handle.close()


def _body_cap(coqui: bool) -> int:
    files = FILE_LIMITS[".onnx"] + 2 * FILE_LIMITS[".json"] + FILE_LIMITS[".wav"]
    if coqui:
        files = max(
            files, limits.MAX_COQUI_CHECKPOINT_BYTES + FILE_LIMITS[".json"] + FILE_LIMITS[".wav"]
        )
    return files + FORM_OVERHEAD


async def read_form(request: Request, folder: Path) -> Form:
    from voice_chat.voicelab.kinds_clone import coqui_installed

    coqui = coqui_installed()
    cap = _body_cap(coqui)
    stream = capped_stream(request, cap, f"uploads are limited to {cap} bytes")
    _, opts = parse_options_header(request.headers.get("content-type", ""))
    if b"boundary" not in opts:
        raise fail("invalid_upload", "bad multipart/form-data: no boundary")
    await asyncio.to_thread(folder.mkdir, parents=True)
    reader = FormReader(folder, coqui)
    try:
        parser = MultipartParser(opts[b"boundary"], reader.callbacks())  # type: ignore[arg-type]
        async for chunk in stream:
            parser.write(chunk)
            await asyncio.to_thread(reader.flush)
        parser.finalize()
    except (ApiError, VoiceError):
        raise
    except Exception as exc:  # noqa: BLE001 - python-multipart's parse errors
        raise fail("invalid_upload", f"bad multipart body: {exc}") from None
    finally:
        reader.close()
    return reader.form


async def read_small(request: Request, limit: int = MAX_JSON_BODY) -> bytes:
    return await read_capped(request, limit, f"this body is limited to {limit} bytes")


async def read_json(request: Request) -> dict[str, Any]:
    body = await read_small(request)
    try:
        obj = json.loads(body or b"{}")
    except ValueError as exc:
        raise fail("invalid_upload", f"the body is not valid JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise fail("invalid_upload", "the body must be a JSON object")
    return obj


def parse_params(raw: Any) -> dict[str, Any]:
    """``params``: a JSON object, or a string holding one."""
    if raw is None or raw == "":
        return {}
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError as exc:
            raise VoiceError("invalid_params", f"params is not valid JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise VoiceError("invalid_params", "params must be a JSON object")
    return raw


def text_field(fields: dict[str, Any], key: str, required: bool = True) -> str | None:
    value = fields.get(key)
    if value is None or value == "":
        if required:
            raise fail("missing_field", f"'{key}' is required")
        return None
    if not isinstance(value, str):
        raise fail("invalid_field", f"'{key}' must be a string")
    return value
