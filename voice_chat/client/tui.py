"""The terminal UI of ``voice-chat talk`` (prompt_toolkit).

Finished lines (``you: ...``, ``<character>: ...``, errors) scroll above; the bottom of the
terminal holds the state, the mic level meter, the live transcript/reply and an input line.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Coroutine
from typing import Any

from prompt_toolkit.application import Application
from prompt_toolkit.buffer import Buffer
from prompt_toolkit.filters import Condition
from prompt_toolkit.formatted_text import StyleAndTextTuples
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent
from prompt_toolkit.layout import HSplit, Layout, Window
from prompt_toolkit.layout.controls import BufferControl, FormattedTextControl
from prompt_toolkit.layout.dimension import Dimension
from prompt_toolkit.patch_stdout import patch_stdout
from prompt_toolkit.styles import Style

from .controller import Controller, Phase
from .pcm import meter
from .ptt import KeyState, PushToTalk
from .textmode import wrap

STYLE = Style.from_dict(
    {
        "state.connecting": "bg:ansiyellow fg:ansiblack bold",
        "state.ready": "bg:ansigreen fg:ansiblack bold",
        "state.recording": "bg:ansired fg:ansiwhite bold",
        "state.thinking": "bg:ansiblue fg:ansiwhite bold",
        "state.speaking": "bg:ansimagenta fg:ansiwhite bold",
        "meter": "fg:ansigreen",
        "dim": "fg:ansibrightblack",
        "live": "italic",
        "prompt": "bold",
    }
)

KEY_ALIASES = {"space": " ", "spacebar": " ", "enter": "c-m", "esc": "escape"}


def key_label(key: str) -> str:
    return key.upper() if len(key) > 1 else repr(key)


def binding_key(key: str) -> str:
    """``--key`` value -> prompt_toolkit key name (``space`` -> ``" "``, ``f5``, ``c-t``, ``x``)."""
    return KEY_ALIASES.get(key.lower(), key.lower() if len(key) > 1 else key)


def validate_key(key: str) -> None:
    """Raise ValueError for a ``--key`` that prompt_toolkit cannot bind."""
    name = binding_key(key)
    if name in ("escape", "c-c", "c-d", "c-m"):
        raise ValueError(f"--key {key}: that key is reserved (Esc, Ctrl-C, Ctrl-D, Enter)")
    try:
        KeyBindings().add(name)(lambda _event: None)
    except ValueError:
        raise ValueError(
            f"--key {key}: unknown key (try space, f5, c-t, tab or a single character)"
        ) from None


class TalkUI:
    def __init__(
        self,
        controller: Controller,
        ptt: PushToTalk,
        key: str,
        server_label: str,
        *,
        text_only: bool = False,
    ) -> None:
        self.controller = controller
        self.text_only = text_only  # no microphone: typing is the only way to talk
        self.ptt = ptt
        self.key = key
        self.server_label = server_label
        self.buffer = Buffer(multiline=False)
        self.app: Application[int] = Application(
            layout=Layout(self._layout(), focused_element=None),
            key_bindings=self._bindings(),
            style=STYLE,
            full_screen=False,
            mouse_support=False,
        )
        self.app.layout.focus(self.buffer)

    # ------------------------------------------------------------------ layout

    def _layout(self) -> HSplit:
        return HSplit(
            [
                Window(FormattedTextControl(self._status), height=1),
                Window(
                    FormattedTextControl(self._live),
                    height=Dimension(min=1, max=3),
                    wrap_lines=True,
                    dont_extend_height=True,
                ),
                Window(
                    BufferControl(self.buffer),
                    height=1,
                    get_line_prefix=lambda _line, _wrap: [("class:prompt", "> ")],
                ),
                Window(FormattedTextControl(self._help), height=1),
            ]
        )

    def _status(self) -> StyleAndTextTuples:
        c = self.controller
        phase = c.phase
        label = phase.value.upper()
        if phase is Phase.RECORDING and self.ptt.state is KeyState.LATCHED:
            label += " (latched)"
        if self.text_only:
            return [
                (f"class:state.{phase.value}", f" {label} "),
                ("", f"  {c.character_name}  "),
                ("class:dim", f"text only  {self.server_label}"),
            ]
        return [
            (f"class:state.{phase.value}", f" {label} "),
            ("", f"  {c.character_name}  "),
            ("class:dim", "mic "),
            ("class:meter", meter(c.level_db, 16)),
            ("class:dim", f" {max(c.level_db, -99.0):4.0f} dB  {self.server_label}"),
        ]

    def _live(self) -> StyleAndTextTuples:
        c = self.controller
        phase = c.phase
        if phase is Phase.CONNECTING or (c.notice and phase is Phase.READY):
            return [("class:dim", c.notice or "connecting...")]
        if phase is Phase.RECORDING:
            return [("class:live", self._wrapped(f"you: {c.partial_transcript}..."))]
        if phase in (Phase.THINKING, Phase.SPEAKING):
            return [("class:live", self._wrapped(f"{c.character_name}: {c.live_reply}"))]
        return [("class:dim", "")]

    def _wrapped(self, text: str) -> str:
        """Broken between words (the window would break mid-word); the last 3 lines."""
        width = self.app.output.get_size().columns if self.app.is_running else 80
        return "\n".join(wrap(text, max(20, width - 1)).split("\n")[-3:])

    def _help(self) -> StyleAndTextTuples:
        key = key_label(self.key)
        if self.text_only:
            help_text = "text only: type + Enter to talk | Esc: stop reply | Ctrl-C: quit"
            return [("class:dim", help_text)]
        if self.controller.vad:
            talk = "hands-free: just talk (headphones!)"
        elif self.ptt.toggle_only:
            talk = f"tap {key} to talk, tap again to send"
        elif self.ptt.state is KeyState.LATCHED:
            talk = f"tap {key} to send, Esc to discard"
        else:
            talk = f"hold {key} to talk (or tap, then tap to send)"
        return [("class:dim", f"{talk} | type + Enter: text | Esc: stop reply | Ctrl-C: quit")]

    # ------------------------------------------------------------------ keys

    def _bindings(self) -> KeyBindings:
        kb = KeyBindings()
        talk_key = binding_key(self.key)
        # the talk key types normally once a text line has been started (space between words)
        talk_allowed = Condition(
            lambda: (
                not self.text_only
                and not self.controller.vad
                and (self.ptt.active or not self.buffer.text)
            )
        )

        @kb.add(talk_key, filter=talk_allowed)
        def _talk(_event: KeyPressEvent) -> None:
            self._on_action(self.ptt.press(time.monotonic()))

        @kb.add("enter", filter=Condition(lambda: bool(self.buffer.text.strip())))
        def _send_text(_event: KeyPressEvent) -> None:
            text = self.buffer.text
            self.buffer.reset()
            self.controller.send_text(text)

        @kb.add("escape")
        def _escape(_event: KeyPressEvent) -> None:
            if self.ptt.active:
                self.ptt.reset()
                self.controller.cancel_recording()
            else:
                self.controller.interrupt()

        @kb.add("c-c")
        @kb.add("c-d", filter=Condition(lambda: not self.buffer.text))
        def _quit(event: KeyPressEvent) -> None:
            event.app.exit(result=0)

        return kb

    def _on_action(self, action: str | None) -> None:
        if action == "start":
            self.controller.start_recording()
            if not self.controller.recording:  # not connected or VAD mode
                self.ptt.reset()
        elif action == "stop":
            self.controller.stop_recording()

    # ------------------------------------------------------------------ run

    def _snapshot(self) -> tuple[object, ...]:
        c = self.controller
        return (c.phase, self.ptt.state, c.notice, c.partial_transcript, c.live_reply, c.connected)

    async def tick_loop(self, interval: float = 0.04, meter_interval: float = 0.1) -> None:
        """Key release detection and redraws: at once on a change, else ~10 Hz for the meter."""
        last: tuple[object, ...] = ()
        last_draw = 0.0
        while True:
            await asyncio.sleep(interval)
            now = time.monotonic()
            self._on_action(self.ptt.tick(now))
            if self.ptt.active and not self.controller.recording:
                self.ptt.reset()  # the connection dropped while the key was down
            self.controller.tick()
            snap = self._snapshot()
            if snap != last or now - last_draw >= meter_interval:
                last, last_draw = snap, now
                self.app.invalidate()

    def _exit_on_signals(self) -> None:
        """SIGTERM/SIGHUP leave like Ctrl-C does, so the terminal is restored."""
        loop = asyncio.get_running_loop()

        def leave() -> None:
            if self.app.is_running and not self.app.is_done:
                self.app.exit(result=0)

        for sig in (signal.SIGTERM, signal.SIGHUP):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, leave)

    async def run(self, background: list[Coroutine[Any, Any, None]]) -> int:
        """Run the UI (and ``background`` jobs) until Ctrl-C or the controller gives up."""
        with patch_stdout(raw=True):
            tasks: list[asyncio.Task[Any]] = [asyncio.ensure_future(job) for job in background]
            ticker = asyncio.ensure_future(self.tick_loop())
            runner = asyncio.ensure_future(self.controller.run())
            ui = asyncio.ensure_future(self.app.run_async())
            self._exit_on_signals()
            waiting: set[asyncio.Task[Any]] = {runner, ui, *tasks}
            done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            self.controller.stop()
            if ui not in done:
                self.app.exit(result=0)
            for task in (ticker, *tasks):
                task.cancel()
            with contextlib.suppress(Exception):
                await ui
            await asyncio.gather(runner, ticker, *tasks, return_exceptions=True)
            for task in tasks:
                error = None if task.cancelled() else task.exception()
                if task in done and error is not None:
                    raise error
        return self.controller.exit_code
