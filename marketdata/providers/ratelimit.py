"""Client-side rate limiting and retry pacing for market-data sources.

Pure Python, no Django: the provider owns one TokenBucket per instance and asks `backoff_delay`
how long to wait before retrying a 429 or 5xx.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType


@dataclass(frozen=True)
class RateTier:
    requests_per_second: float
    burst: float


POLYGON_TIERS: Mapping[str, RateTier] = MappingProxyType(
    {
        # Polygon documents the free plan as 5 API calls per minute: one token every 12 s, and a
        # burst of 5 so a small batch starts at once. A strict sliding window at Polygon may
        # still answer the 6th call with 429; the provider's retry path absorbs that.
        "free": RateTier(requests_per_second=5 / 60, burst=5),
        # The paid plans are documented as unlimited. 100 req/s is a polite ceiling of ours, so
        # a runaway batch cannot flood the API; it is far above what one worker needs.
        "starter": RateTier(requests_per_second=100.0, burst=100),
        "developer": RateTier(requests_per_second=100.0, burst=100),
        "advanced": RateTier(requests_per_second=100.0, burst=100),
    }
)


class TokenBucket:
    """Thread-safe token bucket: `rate_per_second` tokens accrue up to `capacity`.

    The bucket starts full. `clock` and `sleep` are injectable so tests run on fake time.
    """

    def __init__(
        self,
        rate_per_second: float,
        capacity: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], object] = time.sleep,
    ) -> None:
        if rate_per_second <= 0:
            raise ValueError(f"rate_per_second must be positive, got {rate_per_second}")
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1 token, got {capacity}")
        self.rate_per_second = rate_per_second
        self.capacity = capacity
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._tokens = float(capacity)
        self._updated = clock()

    def acquire(self, tokens: float = 1) -> float:
        """Take `tokens`, blocking until they are available; returns the seconds waited."""
        if not 0 < tokens <= self.capacity:
            raise ValueError(f"can only take between 0 and {self.capacity} tokens, got {tokens}")
        with self._lock:
            now = self._clock()
            elapsed = max(0.0, now - self._updated)
            self._tokens = min(self.capacity, self._tokens + elapsed * self.rate_per_second)
            self._updated = now
            # Reserve by going into debt and sleep outside the lock: concurrent callers queue
            # in arrival order, each waiting for its own slot, and nobody sleeps holding the lock.
            self._tokens -= tokens
            wait = max(0.0, -self._tokens / self.rate_per_second)
        if wait > 0:
            self._sleep(wait)
        return wait


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a `Retry-After` header in its delta-seconds form, else None.

    The HTTP-date form is ignored: Polygon sends seconds, and a date would need a trusted wall
    clock to turn into a wait.
    """
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return seconds


def backoff_delay(
    attempt: int,
    *,
    base: float,
    cap: float,
    rng: random.Random,
    retry_after: float | None = None,
) -> float:
    """Seconds to wait before retry number `attempt` (0 for the first retry).

    Full jitter: uniform in [0, min(cap, base * 2**attempt)], so clients that failed together do
    not retry together. A server's `retry_after` (seconds) is a floor: we never come back sooner
    than asked.
    """
    if attempt < 0:
        raise ValueError(f"attempt must be >= 0, got {attempt}")
    # The exponent is clamped only so a huge attempt number cannot overflow a float; the cap
    # has long since taken over by then.
    ceiling = min(cap, base * 2.0 ** min(attempt, 64))
    delay = rng.uniform(0.0, ceiling)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return delay
