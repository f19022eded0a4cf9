"""Token buckets, one per client (an API key's name, or an address): a steady ``rate`` per
second with bursts up to ``burst``. Pure and thread-safe; the clock is injectable for tests."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

# Buckets kept at most; the least recently seen are forgotten (a full bucket again).
_MAX_BUCKETS = 10_000


class RateLimiter:
    """``take(client)`` spends one token: ``0.0`` when allowed, else the seconds to wait."""

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate = rate
        self.burst = float(burst)
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # tokens, at
        self._lock = threading.Lock()

    def take(self, client: str) -> float:
        now = self._clock()
        with self._lock:
            tokens, at = self._buckets.pop(client, (self.burst, now))
            tokens = min(self.burst, tokens + (now - at) * self.rate)
            wait = 0.0
            if tokens >= 1:
                tokens -= 1
            else:
                wait = (1 - tokens) / self.rate
            self._buckets[client] = (tokens, now)
            while len(self._buckets) > _MAX_BUCKETS:
                self._buckets.popitem(last=False)
            return wait
