"""Property-based fuzzing of the realtime protocol against a real server (Hypothesis).

Over 10,000 generated hostile frames (malformed JSON, deep nesting, wrong types, unknown and
half-valid events, odd-length audio) go to one session, one at a time. Each must be answered
by an ``error`` event with a code and a message, the session must go on, and the server log
must hold no traceback. Meanwhile a bystander session on the same server speaks turn after
turn, and every one of its replies must complete.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from speech import espeak
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from voice_chat.audio.pcm import float_to_pcm16
from voice_chat.client.launcher import LiveServer, start_server
from voice_chat.client.rtclient import RealtimeClient
from voice_chat.server.protocol import EVENT_TYPES

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisWarning"),
]
SHIPPED = {"nova", "aria", "sage", "pip"}
CODES = {
    "invalid_json",
    "invalid_event",
    "unknown_event",
    "invalid_audio",
    "nothing_to_commit",
    "unknown_character",
    "invalid_character",
}
BATCH = 20  # frames per generated example: 3 x 170 x 20 = 10,200 frames
FUZZ_SETTINGS = settings(
    max_examples=170,
    deadline=None,
    database=None,
    phases=[Phase.generate],
    suppress_health_check=list(HealthCheck),
)

# ------------------------------------------------------------------ strategies
scalars = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12)
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
not_a_string = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.lists(scalars, max_size=3)
    | st.dictionaries(st.text(max_size=4), scalars, max_size=2)
)


def _unparseable(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return True
    return False


def _nested(depth: int, kind: str) -> str:
    """Deep nesting within the 64 KiB frame limit."""
    if kind == "object":
        return '{"a":' * (depth // 3)
    return {"list": "[" * depth, "closed": "[" * depth + "]" * depth}[kind]


broken_json = st.text(max_size=300).filter(_unparseable)
truncated_json = (
    json_values.map(json.dumps)
    .filter(lambda t: len(t) > 1)
    .map(lambda t: t[:-1])
    .filter(_unparseable)
)
deep_json = st.builds(
    _nested, st.integers(2000, 30000), st.sampled_from(["list", "object", "closed"])
)
non_objects = json_values.filter(lambda v: not isinstance(v, dict)).map(json.dumps)
no_type = st.dictionaries(
    st.text(max_size=8).filter(lambda k: k != "type"), json_values, max_size=4
).map(json.dumps)
typed_badly = st.builds(
    lambda t, extra: json.dumps({**extra, "type": t}),
    not_a_string,
    st.dictionaries(st.text(max_size=6), scalars, max_size=3),
)
unknown_type = st.builds(
    lambda t, extra: json.dumps({**extra, "type": t}),
    st.text(max_size=40).filter(lambda t: t not in EVENT_TYPES),
    st.dictionaries(st.text(max_size=6), json_values, max_size=3),
)


def _event(kind: str, /, **fields: Any) -> str:
    return json.dumps({"type": kind, **fields})


bad_session = st.one_of(
    not_a_string.filter(lambda v: not isinstance(v, dict)).map(lambda v: {"session": v}),
    st.builds(
        lambda c: {"session": {"character": c}}, not_a_string.filter(lambda v: v is not None)
    ),
    st.builds(
        lambda c: {"session": {"character": c}},
        st.text(min_size=1, max_size=64).filter(lambda c: c not in SHIPPED),
    ),
    st.builds(
        lambda r: {"session": {"input_audio_format": {"sample_rate": r}}},
        st.integers().filter(lambda r: not 8000 <= r <= 48000),
    ),
    st.builds(
        lambda t: {"session": {"turn_detection": {"type": t}}},
        st.text(max_size=20).filter(lambda t: t not in ("server_vad", "manual")),
    ),
    st.builds(
        lambda ms: {"session": {"turn_detection": {"silence_duration_ms": ms}}},
        st.integers().filter(lambda m: not 100 <= m <= 5000 and m != 0),
    ),
    st.builds(
        lambda u: {"session": {"user": {"id": u}}},
        st.text(alphabet=" !#$%^&*()/+=~`'\"", min_size=1, max_size=20),
    ),
    st.builds(
        lambda e: {"event_id": e, "session": {}}, not_a_string.filter(lambda v: v is not None)
    ),
).map(lambda f: _event("session.update", **f))
bad_item = st.one_of(
    not_a_string.filter(lambda v: not isinstance(v, dict)).map(lambda v: {"item": v}),
    st.sampled_from(["", " ", "\n\t", "x" * 2001]).map(lambda t: {"item": {"text": t}}),
    st.builds(
        lambda r: {"item": {"role": r, "text": "hi"}},
        st.text(max_size=10).filter(lambda r: r != "user"),
    ),
    st.builds(
        lambda c: {"item": {"content": c}},
        not_a_string.filter(lambda v: not isinstance(v, list) and v is not None),
    ),
    st.just({"item": {}}),
).map(lambda f: _event("conversation.item.create", **f))
bad_cancel = st.builds(
    lambda r: _event("response.cancel", response_id=r),
    not_a_string.filter(lambda v: v is not None and not isinstance(v, str)),
)
bad_truncate = st.one_of(
    st.builds(
        lambda r, ms: _event("conversation.item.truncate", response_id=r, audio_end_ms=ms),
        st.text(min_size=1, max_size=64),
        st.integers(0, 10**6),
    ),
    st.builds(
        lambda r, ms: _event("conversation.item.truncate", response_id=r, audio_end_ms=ms),
        json_values,
        not_a_string,
    ),
    st.just(_event("conversation.item.truncate")),
)
commit_empty = st.dictionaries(
    st.text(max_size=6).filter(lambda k: k not in ("type", "event_id")), scalars, max_size=3
).map(lambda extra: _event("input_audio_buffer.commit", **extra))
odd_audio = st.binary(min_size=1, max_size=4001).filter(lambda b: len(b) % 2 == 1)

text_frames = st.one_of(
    broken_json, truncated_json, deep_json, non_objects, no_type, typed_badly, unknown_type
)
event_frames = st.one_of(bad_session, bad_item, bad_cancel, bad_truncate, commit_empty)


# ------------------------------------------------------------------ the servers and sessions
@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    env = {"VOICE_CHAT_MAX_EVENTS_PER_S": "100000", "VOICE_CHAT_EVENT_BURST": "1000000"}
    srv = start_server(tmp_path_factory.mktemp("fuzz"), env=env)
    yield srv
    srv.stop()


class Target:
    """One fuzzed session; reconnects if the server closed it (cleanly) on a frame."""

    def __init__(self, server: LiveServer) -> None:
        self.server = server
        self.ws: ClientConnection | None = None
        self.frames = 0
        self.closes = 0
        self.close_reasons: list[str] = []
        self.codes: dict[str, int] = {}

    def open(self) -> ClientConnection:
        user = "fuzz-" + uuid.uuid4().hex[:8]
        ws = connect(f"{self.server.ws_url}/v1/realtime?character=nova&user={user}", max_size=None)
        while True:  # the greeting is spoken first: let it finish
            msg = ws.recv(timeout=60)
            if isinstance(msg, str) and json.loads(msg)["type"] == "response.done":
                return ws

    def hit(self, frame: str | bytes) -> None:
        if self.ws is None:
            self.ws = self.open()
        self.frames += 1
        try:
            self.ws.send(frame)
            deadline = time.monotonic() + 20
            while True:
                msg = self.ws.recv(timeout=max(0.1, deadline - time.monotonic()))
                if self._answered(frame, msg):
                    return
        except ConnectionClosed as exc:  # a clean close with a code is an answer too
            code = exc.rcvd.code if exc.rcvd else None
            assert code in (1000, 1008, 1009), (repr(frame)[:200], code)
            self.close_reasons.append(f"{code} {exc.rcvd.reason if exc.rcvd else ''} {len(frame)}")
            self.closes += 1
            self.ws = None

    def hit_all(self, frames: list[str | bytes]) -> None:
        """Send a batch, then expect one answer per frame, in order (the session handles its
        frames one at a time); on a close, the rest go one by one on a new session."""
        if self.ws is None:
            self.ws = self.open()
        answered = 0
        try:
            for frame in frames:
                self.ws.send(frame)
            deadline = time.monotonic() + 30
            while answered < len(frames):
                msg = self.ws.recv(timeout=max(0.1, deadline - time.monotonic()))
                if self._answered(frames[answered], msg):
                    answered += 1
            self.frames += len(frames)
        except ConnectionClosed:
            self.frames += answered
            self.ws = None
            for frame in frames[answered:]:
                self.hit(frame)

    def _answered(self, frame: str | bytes, msg: str | bytes) -> bool:
        if isinstance(msg, bytes):
            return False
        event = json.loads(msg)
        assert event["type"] == "error", (repr(frame)[:200], event)
        code, message = event["error"]["code"], event["error"]["message"]
        assert code in CODES and message, (repr(frame)[:200], event)
        self.codes[code] = self.codes.get(code, 0) + 1
        return True


class Bystander(threading.Thread):
    """Speaks turn after turn on its own session until told to stop."""

    def __init__(self, server: LiveServer) -> None:
        super().__init__(daemon=True)
        self.server, self.stop = server, threading.Event()
        self.completed = 0
        self.failures: list[str] = []

    def run(self) -> None:
        try:
            asyncio.run(self._talk())
        except Exception as exc:  # noqa: BLE001 - reported by the test
            self.failures.append(repr(exc))

    async def _talk(self) -> None:
        speech = espeak("What is your favourite colour?")
        user = "bystander-" + uuid.uuid4().hex[:6]
        async with RealtimeClient.connect(self.server.ws_url, character="sage", user=user) as rt:
            await rt.wait_for("response.done", timeout=120)  # the greeting
            while not self.stop.is_set() or self.completed == 0:
                status = await self._turn(rt, speech)
                if status == "completed":
                    self.completed += 1
                elif status != "cancelled":  # cancelled: our next turn cut the last reply
                    self.failures.append(status)

    async def _turn(self, rt: RealtimeClient, speech: np.ndarray) -> str:
        """Speak like a microphone does: the utterance, then silence until this turn's reply
        (the first response created after it) is done."""
        since = rt.mark()
        audio = np.concatenate([speech, np.zeros(60 * 16000, dtype=np.float32)])
        start = time.monotonic()
        for n, i in enumerate(range(0, len(audio), 320)):
            delay = start + i / 16000 - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            await rt.ws.send(float_to_pcm16(audio[i : i + 320]))
            if n % 25 == 0 and (status := _status_since(rt, since)) is not None:
                await asyncio.sleep(1.0)  # let the reply finish playing before the next turn
                return status
        return "no reply within 60 s of silence"


def _status_since(rt: RealtimeClient, since: int) -> str | None:
    """The status of the first response created after ``since``, once it is done."""
    created = None
    for r in rt.log[since:]:
        if r.event is None:
            continue
        if created is None and r.event["type"] == "response.created":
            created = r.event["response"]["id"]
        elif r.event["type"] == "response.done" and r.event["response"]["id"] == created:
            return str(r.event["response"]["status"])
    return None


@pytest.fixture(scope="module")
def target(server: LiveServer) -> Iterator[Target]:
    t = Target(server)
    yield t
    if t.ws is not None:
        t.ws.close()


@pytest.fixture(scope="module")
def bystander(server: LiveServer) -> Iterator[Bystander]:
    b = Bystander(server)
    b.start()
    yield b
    b.stop.set()
    b.join(180)


# ------------------------------------------------------------------ the properties
def batches(frames: st.SearchStrategy[Any]) -> st.SearchStrategy[list[Any]]:
    return st.lists(frames, min_size=BATCH, max_size=BATCH)


@FUZZ_SETTINGS
@given(frames=batches(text_frames))
def test_fuzz_text_frames(target: Target, bystander: Bystander, frames: list[str]) -> None:
    target.hit_all(frames)


@FUZZ_SETTINGS
@given(frames=batches(event_frames))
def test_fuzz_events(target: Target, bystander: Bystander, frames: list[str]) -> None:
    target.hit_all(frames)


@FUZZ_SETTINGS
@given(frames=batches(odd_audio | text_frames | event_frames))
def test_fuzz_mixed_frames(target: Target, bystander: Bystander, frames: list[Any]) -> None:
    target.hit_all(frames)


def test_fuzz_outcome(server: LiveServer, target: Target, bystander: Bystander) -> None:
    """After the properties: enough frames, the bystander talked, nothing crashed."""
    assert target.frames >= 10_000, target.frames
    bystander.stop.set()
    bystander.join(180)
    assert not bystander.is_alive()
    assert bystander.completed >= 1 and not bystander.failures, bystander.failures
    assert target.ws is not None
    target.hit("{")  # the fuzzed session is still there
    log = server.log()
    assert "Traceback" not in log and "Exception in ASGI" not in log, log[-3000:]
    assert len(target.codes) >= 5, target.codes
    print(
        f"fuzz: {target.frames} frames, errors by code {target.codes}, clean closes {target.closes}"
    )
