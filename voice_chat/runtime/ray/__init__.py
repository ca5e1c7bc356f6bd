"""The same server on Ray Serve: an ingress deployment and separate STT, LLM and TTS deployments.

* :mod:`.replicas`: the engine deployments (each loads one engine, with its own replicas,
  resources, ``max_ongoing_requests`` and autoscaling);
* :mod:`.engines`: :class:`RayRuntime`, the pipeline's ``Engines`` port over deployment handles
  (LLM tokens and TTS audio stream back; cancelling a reply cancels the remote calls);
* :mod:`.app`: the ingress deployment (the FastAPI app of :mod:`voice_chat.server.app`) and
  ``build_app``, the application builder for ``serve run`` / ``serve deploy``;
* :mod:`.launch`: ``voice-chat serve --backend ray``.

Install with ``pip install 'voice-chat[ray]'``; see docs/scaling.md. Nothing here is imported
by the single-process server.
"""
