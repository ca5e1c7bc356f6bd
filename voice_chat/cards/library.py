"""User card storage on disk: one directory per card, every write atomic.

Layout of ``<root>/<id>/``::

    meta.json             the commit point, replaced atomically (temp file + ``os.replace``)
    card-<rev>.json       the card as stored: V2 or V3 JSON (edits such as the voice land here)
    source-<rev>.<ext>    the uploaded bytes (JSON, PNG or CHARX): picture and embedded files
    avatar-<rev>.<ext>    the avatar, extracted at import (a plain image)
    voice-<rev>.<ext>     the voice sample, extracted at import (when the card has one)

``meta.json`` names the current files, so a reader sees either the old card or the new one,
never a mix. A new card is written into ``<root>/.staging/`` and renamed into place: a rename
onto an existing (non-empty) directory fails, which makes concurrent imports of the same name
take different ids. Deleting renames the directory away first, then removes it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import time
import unicodedata
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .io import export_card, load_card
from .model import Card

CARD_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
MEDIA_EXTS = {
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/gif": "gif",
    "image/webp": "webp",
    "image/avif": "avif",
    "audio/wav": "wav",
    "audio/mpeg": "mp3",
    "audio/ogg": "ogg",
    "audio/flac": "flac",
}
MAX_SUFFIX = 1000


def slugify(name: str) -> str:
    """A card id from a name: ASCII, lower case, ``-`` between words, at most 48 chars."""
    text = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    slug = re.sub(r"[^a-z0-9]+", "-", text).strip("-")[:48].strip("-")
    return slug or "character"


def stored_json(card: Card) -> bytes:
    """The card as stored: V3 JSON for a V3 card, V2 JSON for V1/V2."""
    return export_card(card, "v3" if card.spec == "v3" else "v2")


def _write(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _source_ext(data: bytes) -> str:
    if data.startswith(b"\x89PNG"):
        return "png"
    return "charx" if data.startswith(b"PK\x03\x04") else "json"


class CardLibrary:
    """Cards in ``root``. Not locked: callers serialise writers to one card (the registry)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.staging = root / ".staging"

    def ids(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(
            p.name
            for p in self.root.iterdir()
            if CARD_ID.match(p.name) and (p / "meta.json").is_file()
        )

    def meta(self, card_id: str) -> dict[str, Any] | None:
        """The card's ``meta.json``, or None when there is no such card."""
        if not CARD_ID.match(card_id):
            return None
        try:
            meta = json.loads((self.root / card_id / "meta.json").read_bytes())
        except (OSError, ValueError):  # missing, or damaged by hand: not a card
            return None
        return meta if isinstance(meta, dict) else None

    def path(self, card_id: str, name: str) -> Path:
        return self.root / card_id / Path(name).name  # a bare file name, never a path

    def load(self, card_id: str) -> tuple[dict[str, Any], Card] | None:
        """``(meta, card)`` without the source's picture and files; None when missing."""
        for _ in range(3):  # a concurrent replace may remove the files we were about to read
            meta = self.meta(card_id)
            if meta is None:
                return None
            try:
                return meta, load_card(self.path(card_id, meta["card"]).read_bytes())
            except FileNotFoundError:
                time.sleep(0.01)
        return None

    def full_card(self, card_id: str) -> Card | None:
        """The card with the picture and embedded files of its source (for export)."""
        loaded = self.load(card_id)
        if loaded is None:
            return None
        meta, card = loaded
        if meta.get("source"):
            source = load_card(self.path(card_id, meta["source"]).read_bytes())
            card.image, card.files = source.image, source.files
        return card

    # ------------------------------------------------------------------ writes
    def _files(self, folder: Path, card: Card, source: bytes | None) -> dict[str, Any]:
        """Write a revision's files into ``folder``; return the meta entries naming them."""
        rev = uuid.uuid4().hex[:10]
        entries: dict[str, Any] = {"card": f"card-{rev}.json", "source": None}
        _write(folder / entries["card"], stored_json(card))
        if source is not None:
            entries["source"] = f"source-{rev}.{_source_ext(source)}"
            _write(folder / entries["source"], source)
        entries["avatar"] = entries["voice_sample"] = None
        avatar = card.avatar()
        if avatar is not None and avatar[1] in MEDIA_EXTS:
            name = f"avatar-{rev}.{MEDIA_EXTS[avatar[1]]}"
            _write(folder / name, avatar[0])
            entries["avatar"] = {"file": name, "media_type": avatar[1]}
        sample = card.voice_sample()
        if sample is not None:
            name = f"voice-{rev}.{MEDIA_EXTS.get(sample.media_type, 'bin')}"
            _write(folder / name, sample.data)
            entries["voice_sample"] = {
                "file": name,
                "name": sample.name,
                "media_type": sample.media_type,
            }
        return entries

    def _commit(self, folder: Path, meta: dict[str, Any]) -> None:
        tmp = folder / f".meta-{uuid.uuid4().hex[:8]}.tmp"
        _write(tmp, json.dumps(meta, ensure_ascii=False, indent=1).encode())
        os.replace(tmp, folder / "meta.json")

    def add(
        self,
        card: Card,
        source: bytes | None,
        *,
        reserved: Callable[[str], bool],
        card_id: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> str:
        """Store a new card; return its id (``card_id`` exactly, else a unique name slug).

        ``extra`` entries go into ``meta.json`` (e.g. ``own_avatar``).
        """
        self.staging.mkdir(parents=True, exist_ok=True)
        stage = self.staging / f"{os.getpid()}-{uuid.uuid4().hex}"
        stage.mkdir()
        try:
            now = time.time()
            meta = {**(extra or {}), **self._files(stage, card, source)}
            meta.update(created_at=now, updated_at=now)
            self._commit(stage, meta)
            base = card_id or slugify(card.name)
            candidates = (
                [base] if card_id else [base, *(f"{base}-{n}" for n in range(2, MAX_SUFFIX))]
            )
            for candidate in candidates:
                if not card_id and reserved(candidate):
                    continue
                try:
                    os.rename(stage, self.root / candidate)
                except OSError:  # taken (a non-empty directory or a file)
                    continue
                return candidate
            raise FileExistsError(f"no free id for {base!r}")
        finally:
            if stage.exists():
                shutil.rmtree(stage, ignore_errors=True)

    def replace(
        self,
        card_id: str,
        card: Card,
        source: bytes | None,
        *,
        keep_files: bool,
        extra: dict[str, Any] | None = None,
    ) -> None:
        """Write a new revision of an existing card. ``keep_files``: only the card JSON changes.

        The new ``meta.json`` replaces the old one in one rename: the last write wins whole.
        """
        old = self.meta(card_id)
        if old is None:
            raise FileNotFoundError(card_id)
        folder = self.root / card_id
        if keep_files:
            rev = uuid.uuid4().hex[:10]
            entries = {"card": f"card-{rev}.json"}
            _write(folder / entries["card"], stored_json(card))
        else:
            entries = self._files(folder, card, source)
        self._commit(folder, {**old, **(extra or {}), **entries, "updated_at": time.time()})
        self._prune(card_id)

    def _prune(self, card_id: str) -> None:
        """Remove files that ``meta.json`` no longer names (old revisions, crash leftovers)."""
        meta = self.meta(card_id) or {}
        keep = {"meta.json", meta.get("card"), meta.get("source")}
        keep |= {(meta.get(k) or {}).get("file") for k in ("avatar", "voice_sample")}
        for path in (self.root / card_id).iterdir():
            if path.name not in keep and not path.name.startswith(".meta-"):
                with contextlib.suppress(OSError):
                    path.unlink()

    def delete(self, card_id: str) -> bool:
        """Remove a card; False when there was none."""
        if self.meta(card_id) is None:
            return False
        self.staging.mkdir(parents=True, exist_ok=True)
        trash = self.staging / f"{os.getpid()}-{uuid.uuid4().hex}-deleted"
        try:
            os.rename(self.root / card_id, trash)
        except FileNotFoundError:
            return False
        shutil.rmtree(trash, ignore_errors=True)
        return True

    def clean_staging(self, older_than_s: float = 3600.0) -> int:
        """Remove staging leftovers of interrupted writes: those of a process that is gone
        (``<pid>-<hex>``; e.g. killed mid-import) and any older than ``older_than_s``.
        Returns how many were removed."""
        if not self.staging.is_dir():
            return 0
        removed = 0
        for path in self.staging.iterdir():
            pid = path.name.split("-", 1)[0]
            with contextlib.suppress(OSError):
                dead = not (pid.isdigit() and _pid_alive(int(pid)))
                if dead or time.time() - path.stat().st_mtime > older_than_s:
                    if path.is_dir():
                        shutil.rmtree(path, ignore_errors=True)
                    else:
                        path.unlink()
                    removed += 1
        return removed


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
