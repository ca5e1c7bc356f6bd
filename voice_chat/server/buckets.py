"""Token buckets: one (a session's event rate), or one per client, bounded in number."""

from __future__ import annotations

import time
from collections import OrderedDict

MAX_TRACKED_CLIENTS = 4096


class TokenBucket:
    """``rate`` tokens a second, holding at most ``burst``; :meth:`take` spends one."""

    def __init__(self, rate: float, burst: float, now: float | None = None) -> None:
        self.rate, self.burst = rate, burst
        self.tokens = burst
        self.stamp = time.monotonic() if now is None else now

    def _refill(self, now: float) -> None:
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now

    def take(self, now: float | None = None) -> bool:
        self._refill(time.monotonic() if now is None else now)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False

    def available(self, now: float | None = None) -> bool:
        """Whether :meth:`take` would succeed now (nothing is spent)."""
        self._refill(time.monotonic() if now is None else now)
        return self.tokens >= 1.0

    def wait_s(self) -> float:
        """Seconds until the next token."""
        return max(0.0, (1.0 - self.tokens) / self.rate)


class KeyedBuckets:
    """One :class:`TokenBucket` per client, the least recently used forgotten past a bound."""

    def __init__(self, rate: float, burst: float, size: int = MAX_TRACKED_CLIENTS) -> None:
        self.rate, self.burst, self.size = rate, burst, size
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def get(self, client: str) -> TokenBucket:
        bucket = self._buckets.get(client)
        if bucket is None:
            bucket = self._buckets[client] = TokenBucket(self.rate, self.burst)
            while len(self._buckets) > self.size:
                self._buckets.popitem(last=False)
        self._buckets.move_to_end(client)
        return bucket
