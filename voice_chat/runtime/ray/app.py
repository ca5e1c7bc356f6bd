"""The Ray Serve application graph: an ingress running an ASGI app, and the engine deployments.

The ingress runs whatever app ``make_app(settings, runtime)`` builds from the deployments'
:class:`~voice_chat.runtime.ray.engines.RayRuntime`: the server layer hands in its FastAPI
app (:mod:`voice_chat.server.ray_app`, also the ``import_path`` of ``deploy/serve.yaml``), so
this runtime never imports the server above it.

``bind`` takes :class:`voice_chat.settings.Settings`, passed to every replica. The defaults
below are for one small machine; the YAML (or a RayService) sets replicas, resources,
``max_ongoing_requests`` and autoscaling per deployment.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ray import serve
from ray.serve import Application

from voice_chat.runtime.ray import replicas
from voice_chat.settings import Settings

if TYPE_CHECKING:
    from voice_chat.runtime.ray.engines import RayRuntime

#: (settings, the deployments' runtime) -> the ASGI app the ingress serves
MakeApp = Callable[[Settings, "RayRuntime"], Any]

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

    def __init__(
        self,
        settings: dict[str, Any],
        stt: Any,
        llm: Any | None,
        tts: Any,
        make_app: MakeApp,
    ) -> None:
        from voice_chat.runtime.ray.engines import RayRuntime

        self.runtime = RayRuntime(Settings(**settings), stt, llm, tts)
        self._make_app = make_app

    def usage(self) -> dict[str, float]:
        return replicas.usage()

    def __serve_build_asgi_app__(self) -> Any:
        return self._make_app(self.runtime.settings, self.runtime)


def bind(settings: Settings, make_app: MakeApp) -> Application:
    """The application graph for these settings; ``make_app`` builds the ingress's app (a
    module-level function: Serve sends it to the replica by reference)."""
    conf = settings.model_dump(mode="json")
    llm = LLM.bind(conf) if settings.llm_engine == "llama" else None
    return Ingress.bind(conf, STT.bind(conf), llm, TTS.bind(conf), make_app)
