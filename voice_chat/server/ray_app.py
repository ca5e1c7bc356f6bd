"""The server as a Ray Serve application: the FastAPI app in the ingress, engines as deployments.

``build_app`` is the application builder named in ``deploy/serve.yaml``::

    serve run deploy/serve.yaml            # or: serve deploy deploy/serve.yaml
    serve run voice_chat.server.ray_app:build_app llm_model=embedded:smollm2-135m

Its ``args`` are :class:`voice_chat.settings.Settings` fields (the ``VOICE_CHAT_*`` environment
of the process that builds the app fills in the rest). ``voice-chat serve --backend ray``
deploys the same graph (:func:`application`). The graph itself is
:mod:`voice_chat.runtime.ray.app`.
"""

from __future__ import annotations

from typing import Any

from ray.serve import Application

from voice_chat.runtime.ray.app import bind
from voice_chat.runtime.ray.engines import RayRuntime
from voice_chat.server.app import create_app
from voice_chat.settings import Settings, load_settings


def make_app(settings: Settings, runtime: RayRuntime) -> Any:
    """The ingress's app: the same FastAPI app as ``voice-chat serve``, on Ray's engines."""
    return create_app(settings, runtime=runtime)


def application(settings: Settings) -> Application:
    return bind(settings, make_app)


def build_app(args: dict[str, Any] | None = None) -> Application:
    """Application builder for ``serve run``/``serve deploy`` (``args``: Settings fields)."""
    return application(load_settings(**(args or {})))
