"""The Ray Serve application: an ingress running the FastAPI app, and the engine deployments.

``build_app`` is the application builder named in ``deploy/serve.yaml``::

    serve run deploy/serve.yaml            # or: serve deploy deploy/serve.yaml
    serve run voice_chat.runtime.ray.app:build_app llm_model=embedded:smollm2-135m

Its ``args`` are :class:`voice_chat.settings.Settings` fields (the ``VOICE_CHAT_*`` environment
of the process that builds the app fills in the rest), passed to every replica. The defaults
below are for one small machine; the YAML (or a RayService) sets replicas, resources,
``max_ongoing_requests`` and autoscaling per deployment.
"""

from __future__ import annotations

from typing import Any

from ray import serve
from ray.serve import Application

from voice_chat.runtime.ray import replicas
from voice_chat.settings import Settings, load_settings

# One websocket session is one ongoing request of the ingress for as long as the call lasts.
INGRESS_OPTIONS: dict[str, Any] = {
    "name": "Ingress",
    "num_replicas": 1,
    "max_ongoing_requests": 1000,
    "ray_actor_options": {"num_cpus": 0.25},
}
ENGINE_OPTIONS: dict[str, dict[str, Any]] = {
    "STT": {"num_replicas": 1, "max_ongoing_requests": 4, "ray_actor_options": {"num_cpus": 1}},
    "LLM": {"num_replicas": 1, "max_ongoing_requests": 8, "ray_actor_options": {"num_cpus": 0.5}},
    "TTS": {"num_replicas": 1, "max_ongoing_requests": 8, "ray_actor_options": {"num_cpus": 0.5}},
}

STT = serve.deployment(replicas.STT, name="STT", **ENGINE_OPTIONS["STT"])
LLM = serve.deployment(replicas.LLM, name="LLM", **ENGINE_OPTIONS["LLM"])
TTS = serve.deployment(replicas.TTS, name="TTS", **ENGINE_OPTIONS["TTS"])


@serve.deployment(**INGRESS_OPTIONS)
@serve.ingress()
class Ingress:
    """The page, the HTTP API and ``/v1/realtime``; sessions may land on any replica."""

    def __init__(self, settings: dict[str, Any], stt: Any, llm: Any | None, tts: Any) -> None:
        from voice_chat.runtime.ray.engines import RayRuntime

        self.runtime = RayRuntime(Settings(**settings), stt, llm, tts)

    def usage(self) -> dict[str, float]:
        return replicas.usage()

    def __serve_build_asgi_app__(self) -> Any:
        from voice_chat.server.app import create_app

        return create_app(self.runtime.settings, runtime=self.runtime)


def bind(settings: Settings) -> Application:
    """The application graph for these settings."""
    conf = settings.model_dump(mode="json")
    llm = LLM.bind(conf) if settings.llm_engine == "llama" else None
    return Ingress.bind(conf, STT.bind(conf), llm, TTS.bind(conf))


def build_app(args: dict[str, Any] | None = None) -> Application:
    """Application builder for ``serve run``/``serve deploy`` (``args``: Settings fields)."""
    return bind(load_settings(**(args or {})))
