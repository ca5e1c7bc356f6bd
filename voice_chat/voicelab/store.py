"""User voices on disk: ``<data>/voices/<id>/voice.json`` plus the voice's files.

A registration is staged in ``<data>/voices/.staging/<pid>@<host>@<random>/``, validated, test
synthesised and only then renamed into place with one ``os.rename`` (atomic on one file
system): a crash at any point leaves no half voice, and stale staging folders (of a dead
process on this host, or older than ``limits.STALE_STAGING_S``) are removed when a store is
opened. The host in the name keeps servers that share the folder (``VOICE_CHAT_SHARED_DIR``)
from removing each other's registrations in progress.
An in-process lock plus an ``flock`` on ``<data>/voices/.lock`` make concurrent registrations
safe; an id being registered or already present gives ``voice_exists``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from voice_chat.engines.voices import VoiceError, VoiceRegistry, VoiceSpec, load_voice_file
from voice_chat.voicelab import kinds, kinds_clone, limits
from voice_chat.voicelab.names import check_id, clean_name, slugify

STAGERS: dict[str, kinds.Stager] = {**kinds.STAGERS, **kinds_clone.STAGERS}
SHIPPED_DIR = Path(__file__).resolve().parents[2] / "voices"


def _hide(message: str, stage: Path) -> str:
    """Error messages name the uploaded files, never the server's staging paths."""
    return message.replace(str(stage) + os.sep, "").replace(str(stage), "upload")


HOST = socket.gethostname().replace("@", "_")


def _stage_name(suffix: str = "") -> str:
    return f"{os.getpid()}@{HOST}@{uuid.uuid4().hex}{suffix}"


def _owner_gone(name: str) -> bool:
    """True when the staging entry's process is known dead (it ran on this host)."""
    pid_text, _, rest = name.partition("@")
    host = rest.partition("@")[0] if rest else HOST  # old names: <pid>-<random>
    if not rest:
        pid_text = name.split("-", 1)[0]
    if host != HOST:
        return False  # another server's: only its age can tell
    return not (pid_text.isdigit() and _pid_alive(int(pid_text)))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class VoiceStore:
    def __init__(
        self,
        data_dir: Path | str,
        shipped_dir: Path | str = SHIPPED_DIR,
        *,
        clone_model: str | None = None,
    ) -> None:
        self.root = Path(data_dir) / "voices"
        self.staging = self.root / ".staging"
        self.staging.mkdir(parents=True, exist_ok=True)
        self.registry = VoiceRegistry(Path(shipped_dir), self.root)
        self.clone_model = clone_model
        self._lock = threading.Lock()
        self._pending: set[str] = set()
        self.cleanup_stale()

    # ------------------------------------------------------------------ reading
    def list(self) -> list[VoiceSpec]:
        return self.registry.list()

    def get(self, voice_id: str) -> VoiceSpec:
        return self.registry.get(voice_id)

    def is_shipped(self, voice_id: str) -> bool:
        return (self.registry.shipped_dir / f"{voice_id}.json").is_file()

    def dependents(self, voice_id: str) -> list[str]:
        """User or shipped voices derived from ``voice_id``."""
        return sorted(
            v.id for v in self.registry.list() if v.engine == "derived" and v.base == voice_id
        )

    # ------------------------------------------------------------------ housekeeping
    def cleanup_stale(self) -> int:
        removed = 0
        now = time.time()
        for entry in self.staging.iterdir():
            dead = _owner_gone(entry.name)
            try:
                old = now - entry.stat().st_mtime > limits.STALE_STAGING_S
            except FileNotFoundError:
                continue
            if dead or old:
                shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() else entry.unlink(
                    missing_ok=True
                )
                removed += 1
        return removed

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with self._lock, open(self.root / ".lock", "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _taken(self, voice_id: str) -> bool:
        return (
            self.is_shipped(voice_id)
            or (self.root / voice_id).exists()
            or voice_id in self._pending
        )

    # ------------------------------------------------------------------ writing
    def register(
        self,
        kind: str,
        name: str,
        files: dict[str, bytes] | None = None,
        params: dict[str, Any] | None = None,
        *,
        voice_id: str | None = None,
    ) -> VoiceSpec:
        """Validate, test and store a new voice; returns its definition (paths resolved)."""
        files, params = dict(files or {}), dict(params or {})
        kinds.check_params(kind, params)
        display = clean_name(name)
        voice_id = check_id(voice_id) if voice_id else slugify(display)
        total = sum(len(v) for v in files.values())
        if (
            total
            > limits.MAX_COQUI_CHECKPOINT_BYTES
            + limits.MAX_COQUI_CONFIG_BYTES
            + limits.MAX_WAV_BYTES
        ):
            raise VoiceError("too_large", "the upload is too large")
        with self._lock:
            if self._taken(voice_id):
                raise VoiceError(
                    "voice_exists", f"a voice {voice_id!r} already exists; choose another name"
                )
            self._pending.add(voice_id)
        stage = self.staging / _stage_name()
        try:
            stage.mkdir()
            head = {"id": voice_id, "name": display, "description": params.pop("description", "")}
            job = kinds.Staging(stage, head, files, params, self.get, self.clone_model)
            fields = STAGERS[kind](job)
            fields = {k: v for k, v in fields.items() if v is not None}
            kinds.make_spec(fields)
            (stage / "voice.json").write_text(
                json.dumps(fields, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
            )
            self._commit(stage, voice_id)
        except VoiceError as exc:
            raise VoiceError(exc.code, _hide(str(exc), stage)) from exc.__cause__
        except Exception as exc:
            message = _hide(f"registration failed: {type(exc).__name__}: {exc}", stage)
            raise VoiceError("internal_error", message) from exc
        finally:
            shutil.rmtree(stage, ignore_errors=True)  # gone after a rename; cleaned after a failure
            with self._lock:
                self._pending.discard(voice_id)
        return load_voice_file(self.root / voice_id / "voice.json", self.root / voice_id)

    def _commit(self, stage: Path, voice_id: str) -> None:
        with self._locked():
            final = self.root / voice_id
            if self.is_shipped(voice_id) or final.exists():
                raise VoiceError("voice_exists", f"a voice {voice_id!r} already exists")
            os.rename(stage, final)

    def remove(
        self, voice_id: str, in_use_by: list[str] | None = None, force: bool = False
    ) -> None:
        """Delete a user voice. ``in_use_by``: the characters using it (from the caller); voices
        derived from it count too. Refused with ``voice_in_use`` unless ``force``."""
        check_id(voice_id)
        if self.is_shipped(voice_id):
            raise VoiceError(
                "voice_shipped", f"{voice_id!r} is a shipped voice and cannot be deleted"
            )
        final = self.root / voice_id
        if not (final / "voice.json").is_file():
            raise VoiceError("unknown_voice", f"no user voice {voice_id!r}")
        users = list(in_use_by or []) + [f"voice:{d}" for d in self.dependents(voice_id)]
        if users and not force:
            raise VoiceError(
                "voice_in_use",
                f"{voice_id!r} is used by {', '.join(users)}; delete with force to proceed",
            )
        trash = self.staging / _stage_name("-deleted")
        with self._locked():
            os.rename(final, trash)
        shutil.rmtree(trash, ignore_errors=True)


def register_voice(
    store: VoiceStore | Path | str,
    kind: str,
    name: str,
    files: dict[str, bytes] | None = None,
    params: dict[str, Any] | None = None,
) -> VoiceSpec:
    """Convenience: ``store`` is a VoiceStore or the data directory (``Settings.data``)."""
    vs = store if isinstance(store, VoiceStore) else VoiceStore(Path(store))
    return vs.register(kind, name, files, params)
