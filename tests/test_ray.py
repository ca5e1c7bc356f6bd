"""The server on Ray Serve: a local Ray cluster on loopback, real models, PostgreSQL memory.

The CI runs these in their own stage (`make test-ray`: installs the `ray` extra, then
``pytest -m ray``). Without Ray installed they are skipped, unless VOICE_CHAT_TEST_RAY=required
(the CI stage), where a missing Ray is a failure.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from speech import espeak

from voice_chat.client.launcher import LiveServer, free_port, start_server
from voice_chat.client.rtclient import RealtimeClient
from voice_chat.engines.base import GenerationOptions

ROOT = Path(__file__).resolve().parent.parent
if os.environ.get("VOICE_CHAT_TEST_RAY") == "required":
    import ray  # noqa: F401 - the CI's Ray stage: a missing Ray must fail, not skip
else:
    pytest.importorskip("ray.serve", reason="the ray extra is not installed")

pytestmark = [pytest.mark.ray]
APP = "voice_chat"


# --------------------------------------------------------------- the shipped configuration
def _serve_schema() -> Any:
    from ray.serve.schema import ServeDeploySchema

    return ServeDeploySchema


def _yaml(text: str) -> Any:
    import yaml

    return yaml.safe_load(text)


def test_shipped_serve_config_is_valid() -> None:
    from voice_chat.runtime.ray import app
    from voice_chat.server import ray_app

    config = _serve_schema().model_validate(_yaml((ROOT / "deploy/serve.yaml").read_text()))
    (application,) = config.applications
    assert application.name == APP and application.route_prefix == "/"
    module, _, attr = application.import_path.partition(":")
    assert module == ray_app.__name__ and callable(getattr(ray_app, attr))
    names = {d.name for d in application.deployments}
    assert names == {"Ingress", "STT", "LLM", "TTS"}
    built = {d.name for d in [app.Ingress, app.STT, app.LLM, app.TTS]}
    assert names == built  # every configured deployment exists in the app graph
    from voice_chat.settings import Settings

    Settings(**application.args)  # the args are settings


def rayservice_examples() -> list[dict[str, Any]]:
    text = (ROOT / "docs/scaling.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", text, re.S)
    return [doc for b in blocks if (doc := _yaml(b)) and doc.get("kind") == "RayService"]


def test_rayservice_example_is_valid() -> None:
    (service,) = rayservice_examples()
    assert service["apiVersion"] == "ray.io/v1"
    spec = service["spec"]
    serve_config = _serve_schema().model_validate(_yaml(spec["serveConfigV2"]))
    apps = {a.name: a for a in serve_config.applications}
    assert set(apps) == {"llm", APP}
    assert apps["llm"].import_path == "ray.serve.llm:build_openai_app"  # vLLM on the GPUs
    ours = apps[APP]
    assert ours.import_path == "voice_chat.server.ray_app:build_app"
    from voice_chat.settings import Settings

    settings = Settings(**ours.args)
    assert settings.llm_engine == "openai" and settings.llm_base_url.endswith("/llm/v1")
    deployments = {d.name: d for d in ours.deployments}
    assert set(deployments) == {"Ingress", "STT", "TTS"}  # no embedded LLM with vLLM
    cluster = spec["rayClusterConfig"]
    assert cluster["rayVersion"].startswith("2.60")
    head = cluster["headGroupSpec"]["template"]["spec"]["containers"][0]
    assert head["image"] and cluster["headGroupSpec"]["rayStartParams"] is not None
    gpus_per_node = []
    for group in cluster["workerGroupSpecs"]:
        container = group["template"]["spec"]["containers"][0]
        gpus = int(container["resources"]["limits"].get("nvidia.com/gpu", 0))
        assert group["minReplicas"] <= group["replicas"] <= group["maxReplicas"]
        if gpus:
            gpus_per_node.append(gpus)
            assert str(gpus) == str(group["rayStartParams"]["num-gpus"])
    assert gpus_per_node, "the example places engines on GPU workers"
    stt_gpus = deployments["STT"].ray_actor_options.num_gpus
    assert 0 < stt_gpus <= max(gpus_per_node) and settings.stt_device == "cuda"
    assert not deployments["TTS"].ray_actor_options.num_gpus  # Piper stays on CPU
    assert not deployments["Ingress"].ray_actor_options.num_gpus


# --------------------------------------------------------------- a live Ray deployment
@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[Any]:
    from raycluster import RayCluster

    cluster = RayCluster().start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="module")
def ray_server(ray_cluster, postgres, tmp_path_factory) -> Iterator[LiveServer]:
    """`voice-chat serve --backend ray` onto the cluster, conversations in PostgreSQL."""
    env = {
        "VOICE_CHAT_BACKEND": "ray",
        "VOICE_CHAT_RAY_ADDRESS": ray_cluster.address,
        "VOICE_CHAT_DATABASE_URL": postgres.create_database(),
        "VOICE_CHAT_SHARED_DIR": str(tmp_path_factory.mktemp("shared")),
        "VOICE_CHAT_MAX_REPLY_SENTENCES": "2",
    }
    server = start_server(tmp_path_factory.mktemp("ray-data"), env=env, timeout=600)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def driver(ray_cluster, ray_server) -> Iterator[Any]:
    """This test process as a second Ray driver: handles and replica actors."""
    import ray

    ray.init(address=ray_cluster.address, log_to_driver=False)
    yield ray
    ray.shutdown()


def replicas(ray: Any, deployment: str) -> list[Any]:
    names = ray.util.list_named_actors(all_namespaces=True)
    wanted = f"#{deployment}#"
    return [
        ray.get_actor(a["name"], namespace=a["namespace"])
        for a in names
        if a["name"].startswith("SERVE_REPLICA") and wanted in a["name"]
    ]


def user() -> str:
    return "ray-" + uuid.uuid4().hex[:8]


async def typed(rt: RealtimeClient, text: str) -> None:
    item = {"type": "message", "role": "user", "text": text}
    await rt.send({"type": "conversation.item.create", "item": item})


async def test_health_reports_ray_and_postgres(ray_server: LiveServer) -> None:
    health = httpx.get(ray_server.url + "/healthz").json()
    assert health["status"] == "ok"
    assert health["memory"]["backend"] == "postgresql" and health["memory"]["status"] == "ok"


async def test_spoken_turn_and_barge_in_through_ray(ray_server: LiveServer) -> None:
    async with RealtimeClient.connect(ray_server.ws_url, user=user(), character="sage") as rt:
        started = await rt.wait_for("response.audio.started", timeout=120)
        greeting = started.event["response_id"]
        await asyncio.sleep(0.4)
        speech = asyncio.create_task(rt.send_speech(espeak("Wait, stop, tell me a joke.")))
        done = await rt.wait_for("response.done", timeout=30, response_id=greeting)
        assert done.event["response"]["status"] == "cancelled"
        await speech
        reply = (await rt.wait_for("response.done", timeout=120)).event["response"]
        assert reply["id"] != greeting and reply["status"] == "completed" and reply["text"]
        transcript = rt.events("conversation.item.input_audio_transcription.completed")[-1]
        assert "joke" in transcript["transcript"].lower()
        assert rt.audio_between(0)  # audio came back through the TTS deployment


async def test_barge_in_cancels_the_remote_generation(driver: Any) -> None:
    from ray import serve

    llm = serve.get_deployment_handle("LLM", app_name=APP)
    before = await llm.stats.remote()
    messages = [{"role": "user", "content": "Count from one to one hundred in words."}]
    stream = llm.options(stream=True).generate.remote(messages, GenerationOptions(max_tokens=400))
    got = []
    async for delta in stream:
        got.append(delta)
        if len(got) == 3:
            stream.cancel()  # what RayRuntime does when a reply is cancelled
            break
    for _ in range(50):
        after = await llm.stats.remote()
        if after["cancelled"] > before["cancelled"]:
            break
        await asyncio.sleep(0.1)
    assert after["cancelled"] == before["cancelled"] + 1
    assert after["finished"] == before["finished"]


async def test_memory_across_reconnect_and_a_killed_ingress(
    ray_server: LiveServer, driver: Any
) -> None:
    who = user()
    async with RealtimeClient.connect(ray_server.ws_url, user=who, character="pip") as rt:
        await rt.wait_for("response.done", timeout=120)
        await typed(rt, "My name is Robin and I keep bees.")
        reply = (await rt.wait_for("response.done", timeout=120)).event["response"]
        assert reply["status"] == "completed"
    async with RealtimeClient.connect(ray_server.ws_url, user=who, character="pip") as rt:
        conv = (await rt.wait_for("session.created", timeout=30)).event["session"]["conversation"]
        assert conv["resumed"] and len(conv["turns"]) == 3
        assert conv["turns"][1]["text"] == "My name is Robin and I keep bees."
        # The ingress replica holding this session dies: the client reconnects and resumes.
        (ingress,) = replicas(driver, "Ingress")
        driver.kill(ingress, no_restart=False)
        with pytest.raises(ConnectionError):
            await rt.wait_for("response.done", timeout=60)
    deadline = time.monotonic() + 180
    while True:
        try:
            async with RealtimeClient.connect(ray_server.ws_url, user=who, character="pip") as rt:
                event = (await rt.wait_for("session.created", timeout=30)).event
                break
        except (ConnectionError, OSError, TimeoutError) as exc:
            if time.monotonic() > deadline:
                raise AssertionError(f"no ingress came back: {exc}") from exc
            await asyncio.sleep(2)
    conv = event["session"]["conversation"]
    assert conv["resumed"] and [t["text"] for t in conv["turns"]][1] == (
        "My name is Robin and I keep bees."
    )


async def test_killed_engine_replica_fails_the_reply_then_recovers(
    ray_server: LiveServer, driver: Any
) -> None:
    async with RealtimeClient.connect(ray_server.ws_url, user=user(), character="nova") as rt:
        await rt.wait_for("response.done", timeout=120)
        outcomes = []
        for _ in range(3):  # a reply that finished before the kill landed proves nothing: again
            (llm,) = replicas(driver, "LLM")
            mark = rt.mark()
            await typed(rt, "Tell me a long story about the sea and the stars.")
            await rt.wait_for("response.created", timeout=30, since=mark)
            driver.kill(llm, no_restart=False)  # mid-reply
            done = (await rt.wait_for("response.done", timeout=120, since=mark)).event
            outcomes.append(done["response"]["status"])
            if outcomes[-1] == "failed":
                break
        assert outcomes[-1] == "failed", outcomes
        errors = [e["error"] for e in rt.events("error")]
        assert any(e["code"] == "response_failed" for e in errors), errors
        # The session goes on: the next turn goes to the replacement replica.
        mark = rt.mark()
        await typed(rt, "Say hello.")
        nxt = (await rt.wait_for("response.done", timeout=240, since=mark)).event["response"]
        assert nxt["status"] == "completed" and nxt["text"], nxt


# --------------------------------------------------------------- start-up failures
def _serve(env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "voice_chat",
            "serve",
            "--backend",
            "ray",
            "--port",
            str(free_port()),
        ],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


def test_unreachable_ray_address_is_refused_at_once(tmp_path: Path) -> None:
    start = time.monotonic()
    out = _serve(
        {"VOICE_CHAT_DATA": str(tmp_path), "VOICE_CHAT_RAY_ADDRESS": f"127.0.0.1:{free_port()}"}, 60
    )
    assert out.returncode == 2 and "cannot reach the Ray cluster" in out.stderr, out.stderr
    assert "ray start --head" in out.stderr and time.monotonic() - start < 30


def test_engine_deployment_that_fails_to_start_is_explained(tmp_path: Path) -> None:
    """On a local Ray that `voice-chat serve --backend ray` starts for itself."""
    env = {"VOICE_CHAT_DATA": str(tmp_path), "VOICE_CHAT_LLM_MODEL": str(tmp_path / "missing.gguf")}
    out = _serve(env, 600)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "failed to start" in out.stderr and "missing.gguf" in out.stderr, out.stderr
