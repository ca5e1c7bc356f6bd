"""What Serve says about the application, shortened for a log line or /healthz."""

from __future__ import annotations

APP_NAME = "voice_chat"
ENGINE_DEPLOYMENTS = ("STT", "LLM", "TTS")


def summary(message: str | None) -> str:
    """A Serve status message without its traceback: the summary and the exception line."""
    if not message:
        return ""
    head, _, trace = message.partition("Traceback (most recent call last):")
    lines = [line.strip() for line in trace.splitlines() if line.strip()]
    return " ".join(f"{head} {lines[-1] if lines else ''}".split())


def deployment_problem(app_name: str = APP_NAME) -> str | None:
    """Why an engine deployment is not running (None when every one is HEALTHY)."""
    from ray import serve

    app = serve.status().applications.get(app_name)
    if app is None:
        return f"the Serve application {app_name!r} is not deployed"
    waiting = []
    for name, dep in app.deployments.items():
        if name not in ENGINE_DEPLOYMENTS:
            continue
        status = str(getattr(dep.status, "value", dep.status))
        if status in ("DEPLOY_FAILED", "UNHEALTHY"):
            return f"engine deployment {name} failed to start: {summary(dep.message) or status}"
        if status != "HEALTHY":
            waiting.append(name)
    return f"waiting for {', '.join(waiting)}" if waiting else None
