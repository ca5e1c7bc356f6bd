"""Prometheus metrics, served at ``/metrics``. Per-turn timings also go out in ``response.done``."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

REGISTRY = CollectorRegistry()
_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 1.0, 1.25, 1.5, 2.0, 3.0, 5.0, 10.0)

SESSIONS = Gauge("voice_chat_sessions", "Open realtime sessions", registry=REGISTRY)
RESPONSES = Counter(
    "voice_chat_responses_total", "Character replies by final status", ["status"], registry=REGISTRY
)
STAGE = Histogram(
    "voice_chat_turn_seconds",
    "Time from the end of the user's speech to each stage of the reply",
    ["stage"],
    buckets=_BUCKETS,
    registry=REGISTRY,
)
COST = Histogram(
    "voice_chat_engine_seconds",
    "Time spent in each engine per reply",
    ["engine"],
    buckets=_BUCKETS,
    registry=REGISTRY,
)

_STAGES = ("speech_stopped_ms", "transcript_ms", "first_text_ms", "first_audio_ms", "total_ms")
_COSTS = {
    "stt_ms": "stt",
    "llm_first_token_ms": "llm_first_token",
    "tts_first_chunk_ms": "tts_first_chunk",
}


def observe_reply(status: str, metrics: dict[str, float], spoken_turn: bool) -> None:
    RESPONSES.labels(status).inc()
    if status != "completed" or not spoken_turn:
        return
    for key in _STAGES:
        if key in metrics:
            STAGE.labels(key.removesuffix("_ms")).observe(metrics[key] / 1000)
    for key, engine in _COSTS.items():
        if key in metrics:
            COST.labels(engine).observe(metrics[key] / 1000)


def render() -> bytes:
    return generate_latest(REGISTRY)
