"""Push-to-talk key logic.

Terminals report key presses, never releases. Holding a key makes the terminal auto-repeat it:
the first press, then (after the OS repeat delay, 250-660 ms by default) a press every ~30 ms.
So:

* a press starts recording (state ``pending``);
* a second press within ``hold_window`` is auto-repeat: the key is being held (``held``); the
  key counts as released when repeats stop for ``release_timeout`` -> send;
* no repeat within ``hold_window``: it was a tap -> recording stays on (``latched``) until the
  key is tapped again -> send (the toggle fallback; it also works where auto-repeat is off or
  keys arrive one at a time, e.g. tmux ``send-keys``).

``toggle_only`` skips hold detection: tap to start, tap to send (repeats are ignored).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

Action = Literal["start", "stop"] | None


class KeyState(StrEnum):
    IDLE = "idle"
    PENDING = "pending"
    HELD = "held"
    LATCHED = "latched"


class PushToTalk:
    def __init__(
        self, hold_window: float = 0.75, release_timeout: float = 0.25, toggle_only: bool = False
    ) -> None:
        self.hold_window = hold_window
        self.release_timeout = release_timeout
        self.toggle_only = toggle_only
        self.state = KeyState.IDLE
        self._first = 0.0
        self._last = 0.0

    @property
    def active(self) -> bool:
        return self.state is not KeyState.IDLE

    def press(self, now: float) -> Action:
        """The key was pressed (or auto-repeated) at time ``now`` (seconds, monotonic)."""
        previous, self._last = self._last, now
        if self.state is KeyState.IDLE:
            self._first = now
            self.state = KeyState.LATCHED if self.toggle_only else KeyState.PENDING
            return "start"
        if self.state is KeyState.PENDING:
            if now - self._first <= self.hold_window:
                self.state = KeyState.HELD
                return None
            self.state = KeyState.IDLE  # tick() was late: treat as the second tap
            return "stop"
        if self.state is KeyState.HELD:
            return None
        # LATCHED: a new tap sends; repeats of a key still held down are ignored
        if now - previous <= self.release_timeout or now - self._first <= self.hold_window:
            return None
        self.state = KeyState.IDLE
        return "stop"

    def tick(self, now: float) -> Action:
        """Call often (every ~20-50 ms): detects the release of a held key."""
        if self.state is KeyState.PENDING and now - self._first > self.hold_window:
            self.state = KeyState.LATCHED
        elif self.state is KeyState.HELD and now - self._last > self.release_timeout:
            self.state = KeyState.IDLE
            return "stop"
        return None

    def reset(self) -> None:
        self.state = KeyState.IDLE
