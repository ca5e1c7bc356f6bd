"""One settings object: environment variables ``VOICE_CHAT_*``, overridden by CLI flags."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from voice_chat.engines.presets import DEFAULT_PRESET, PRESETS, unknown_preset

REPO_ROOT = Path(__file__).resolve().parent.parent


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "voice-chat"


class Settings(BaseSettings):
    """Every knob of the server. Env: ``VOICE_CHAT_<NAME>``; CLI flags override."""

    model_config = SettingsConfigDict(env_prefix="VOICE_CHAT_", extra="ignore")

    # --- network
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["json", "console"] = "console"
    ssl_certfile: Path | None = Field(None, description="TLS certificate (PEM) for https/wss")
    ssl_keyfile: Path | None = Field(None, description="TLS private key (PEM)")

    # --- security (docs/security.md): who may connect, from which pages, with which key
    auth: Literal["off", "on"] = "off"
    allow_insecure_public: bool = Field(
        False, description="allow a non-loopback bind with auth off (anyone can use the server)"
    )
    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="extra Host names (name or name:port; * = any)"
    )
    allowed_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="extra page origins allowed (CORS is opened to them)"
    )
    auth_token_ttl_s: int = Field(300, ge=10, le=86400)
    max_auth_failures_per_min: int = Field(30, ge=1, le=100000)

    # --- where the engines run: "local" (this process) or "ray" (Ray Serve deployments)
    backend: Literal["local", "ray"] = "local"
    ray_address: str | None = Field(
        None, description="Ray cluster (host:port, ray://host:port, auto); default: a local Ray"
    )

    # --- where things live
    data: Path = Field(default_factory=_default_data_dir, description="user data directory")
    shared_dir: Path | None = Field(
        None,
        description="user voices and imported characters, shared by every server replica "
        "(a network folder with atomic rename); default: the data directory",
    )
    characters_dir: Path = REPO_ROOT / "characters"
    voices_dir: Path = REPO_ROOT / "voices"
    default_character: str = "nova"
    database_url: str | None = Field(
        None,
        description="conversation memory: sqlite:///path.db or postgresql://user:pw@host/db; "
        "default sqlite:///<data>/voice_chat.db",
    )

    # --- speech-to-text
    stt_engine: Literal["whisper"] = "whisper"
    stt_model: str = "embedded:tiny.en"
    stt_compute_type: str = "int8"
    stt_device: str = "cpu"
    stt_threads: int = Field(2, ge=1, le=64)
    stt_beam_size: int = Field(1, ge=1, le=10)
    stt_window_s: float = Field(10.0, ge=10.0, le=30.0)  # shorter windows make Whisper loop
    stt_language: str | None = "en"

    # --- language model
    llm_engine: Literal["llama", "openai"] = "llama"
    llm_preset: str = Field(
        DEFAULT_PRESET, description="fast | quality: sets llm_model and llm_threads unless given"
    )
    llm_model: str = PRESETS[DEFAULT_PRESET].model
    llm_threads: int = Field(PRESETS[DEFAULT_PRESET].threads, ge=1, le=64)
    llm_context: int = Field(2048, ge=256, le=131072)
    # RAM for the KV states of conversations the model left: each call's next turn then
    # evaluates only its new tokens. Too small for the sessions in use, and every turn of
    # every session re-reads its whole prompt (about 33 MB a state at 1,700 tokens).
    llm_cache_mb: int = Field(256, ge=0, le=1 << 20)
    llm_temperature: float = Field(0.3, ge=0.0, le=2.0)
    llm_repeat_penalty: float = Field(1.15, ge=1.0, le=2.0)
    llm_base_url: str = "http://127.0.0.1:8080/v1"
    llm_api_key: str | None = None
    llm_timeout_s: float = Field(60.0, gt=0)
    max_reply_tokens: int = Field(80, ge=8, le=4096)
    max_reply_sentences: int = Field(3, ge=1, le=50)

    # --- text-to-speech
    tts_threads: int = Field(1, ge=1, le=64)
    default_voice: str = "joe"
    voice_clone_model: str | None = Field(
        None, description="Coqui cloning model (name in the local Coqui cache, or a folder)"
    )

    # --- pipeline: "naive" (whole utterance, whole reply, whole TTS, no overlap) is the
    # benchmark baseline; "streaming" overlaps every stage.
    pipeline_mode: Literal["streaming", "naive"] = "streaming"

    # --- turn detection
    vad_threshold: float = Field(0.5, gt=0.0, lt=1.0)
    silence_duration_ms: int = Field(300, ge=100, le=5000)
    speculative_ms: int = Field(64, ge=0, le=5000)
    # semantic_vad: the pause's words and Smart Turn decide how much silence ends the turn
    turn_detection: Literal["server_vad", "semantic_vad"] = "semantic_vad"
    turn_eagerness: Literal["low", "medium", "high", "auto"] = "auto"
    turn_max_wait_ms: int | None = Field(None, ge=500, le=10000)
    min_speech_ms: int = Field(96, ge=0, le=2000)  # less voiced audio is no turn, no reply
    echo_guard: bool = True  # the reply's own voice coming back is no interruption
    # with echo_guard: WebRTC AEC3 (livekit) removes the reply's echo from the microphone
    echo_cancel: bool = True
    backchannel_ms: int = Field(800, ge=0, le=3000)  # shorter "mm-hmm" does not interrupt
    smart_turn: bool = True  # load Smart Turn v3.2 (pipecat-ai's packaged ONNX)
    # transcribe the utterance while it is spoken (when STT is idle) and pre-fill the LLM
    live_transcripts: bool = True

    # --- limits
    max_sessions: int = Field(16, ge=1, le=10000)
    max_frame_bytes: int = Field(65536, ge=320, le=16 * 1024 * 1024)
    max_text_bytes: int = Field(65536, ge=256, le=16 * 1024 * 1024)
    # one JSON event of the OpenAI Realtime dialect (its audio travels inside, as base64)
    max_event_bytes: int = Field(1 << 20, ge=4096, le=16 * 1024 * 1024)
    # an OpenAI Realtime client's instructions: added to the character's persona, or replacing it
    realtime_instructions: Literal["add", "replace"] = "add"
    max_text_chars: int = Field(2000, ge=1, le=100000)
    max_utterance_s: float = Field(30.0, ge=1.0, le=600.0)
    max_audio_speed: float = Field(3.0, ge=1.0, le=100.0)
    max_sessions_per_client: int = Field(8, ge=1, le=10000)
    max_events_per_s: float = Field(20.0, gt=0.0, le=100000.0)
    event_burst: int = Field(100, ge=1, le=1000000)
    idle_timeout_s: float = Field(300.0, ge=1.0, le=86400.0)
    # glibc malloc arenas for the server's threads (0: glibc's default); see runtime/allocator.py
    malloc_arenas: int = Field(2, ge=0, le=64)
    max_uploads_per_min: int = Field(60, ge=1, le=100000)
    max_connections: int = Field(512, ge=8, le=100000)
    max_connections_per_client: int = Field(64, ge=1, le=100000)
    header_timeout_s: float = Field(10.0, ge=0.5, le=600.0)

    # --- concurrency: worker threads per engine (models are shared by all sessions)
    stt_workers: int = Field(1, ge=1, le=16)
    tts_workers: int = Field(1, ge=1, le=16)

    @property
    def shared(self) -> Path:
        """Where user voices (``voices/``) and imported characters (``characters/``) live."""
        return self.shared_dir or self.data

    @property
    def database(self) -> str:
        """The conversation store's URL: ``database_url``, else SQLite in the data directory."""
        return self.database_url or f"sqlite:///{self.data / 'voice_chat.db'}"

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, v: str | None) -> str | None:
        if v:
            from voice_chat.memory.backend import scheme_of
            from voice_chat.memory.errors import MemoryStoreError

            try:
                scheme_of(v)
            except MemoryStoreError as exc:
                raise ValueError(exc.message) from None
        return v or None

    @field_validator("allowed_hosts", "allowed_origins", mode="before")
    @classmethod
    def _comma_list(cls, v: object) -> object:
        """``VOICE_CHAT_ALLOWED_ORIGINS=https://a.example,https://b.example`` (or a JSON list)."""
        if isinstance(v, str):
            text = v.strip()
            if text.startswith("["):
                import json

                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return v

    @field_validator("llm_preset")
    @classmethod
    def _known_preset(cls, v: str) -> str:
        if v not in PRESETS:
            raise ValueError(unknown_preset(v))
        return v

    @model_validator(mode="after")
    def _apply_preset(self) -> Settings:
        preset = PRESETS[self.llm_preset]
        if "llm_model" not in self.model_fields_set:
            self.llm_model = preset.model
        if "llm_threads" not in self.model_fields_set:
            self.llm_threads = preset.threads
        return self

    @field_validator("stt_language")
    @classmethod
    def _empty_language_is_auto(cls, v: str | None) -> str | None:
        return v or None


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment, with non-None ``overrides`` (e.g. CLI flags) on top."""
    clean = {k: v for k, v in overrides.items() if v is not None}
    return Settings(**clean)  # type: ignore[arg-type]
