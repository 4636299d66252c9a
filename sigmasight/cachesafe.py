"""Calling Redis (the cache, the broker) so that its being down degrades a request, never fails it.

A `CircuitBreaker` is process-local: after an error it stays open for
`SIGMASIGHT_REDIS_RETRY_AFTER_S` seconds (default 5), during which callers go straight to their
fallback instead of each paying a connection attempt (up to `REDIS_TIMEOUT_SECONDS` when the
server hangs rather than refuses); the first call after that tries Redis again, and one success
closes it. `cache_breaker` guards the default cache; the task outbox has its own for the broker.

`safe_cache_call(fn, *args, default=..., fallback=..., **kwargs)` runs one cache call through
the breaker; `FallbackCache` is a cache-shaped object over it that keeps using a process-local
`LocMemCache` while Redis is away (the throttles count with it, so limits still apply, per
process). Warnings are logged at most once a minute per process and kind, not per request.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.locmem import LocMemCache

logger = logging.getLogger("sigmasight.api")

WARN_EVERY_S = 60.0

try:  # the errors a Redis client raises when the server is away or too slow
    from redis.exceptions import ConnectionError as _RedisConnectionError
    from redis.exceptions import TimeoutError as _RedisTimeoutError

    CACHE_ERRORS: tuple[type[BaseException], ...] = (
        _RedisConnectionError,
        _RedisTimeoutError,
        OSError,
    )
except ImportError:  # pragma: no cover - redis is a requirement; LocMem alone raises nothing
    CACHE_ERRORS = (OSError,)

_warned: dict[str, float] = {}
_warned_lock = threading.Lock()


def warn_limited(kind: str, message: str, *args: object, log: logging.Logger = logger) -> bool:
    """Log `message` as a warning unless `kind` was logged in the last minute (per process)."""
    now = time.monotonic()
    with _warned_lock:
        last = _warned.get(kind)
        if last is not None and now - last < WARN_EVERY_S:
            return False
        _warned[kind] = now
    log.warning(message, *args)
    return True


class CircuitBreaker:
    """Closed: calls go through. Open (for a while after an error): callers skip the call."""

    def __init__(self, name: str, *, log: logging.Logger = logger) -> None:
        self.name = name
        self.log = log
        self._open_until = 0.0
        self._lock = threading.Lock()

    def available(self) -> bool:
        return time.monotonic() >= self._open_until

    def failed(self, exc: BaseException) -> None:
        retry_after = float(getattr(settings, "SIGMASIGHT_REDIS_RETRY_AFTER_S", 5.0))
        with self._lock:
            self._open_until = time.monotonic() + retry_after
        warn_limited(
            f"breaker:{self.name}",
            "%s unavailable (%s: %s); falling back for %.0f s before trying again",
            self.name,
            type(exc).__name__,
            exc,
            retry_after,
            log=self.log,
        )

    def succeeded(self) -> None:
        if self._open_until:
            with self._lock:
                self._open_until = 0.0

    def reset(self) -> None:
        """Closed again at once (tests; an operator knowing Redis is back)."""
        self.succeeded()


cache_breaker = CircuitBreaker("cache")


def cache_available() -> bool:
    """False while the cache breaker is open (a recent cache error in this process)."""
    return cache_breaker.available()


def safe_cache_call(
    fn: Callable[..., Any],
    *args: Any,
    default: Any = None,
    fallback: Callable[[], Any] | None = None,
    breaker: CircuitBreaker = cache_breaker,
    **kwargs: Any,
) -> Any:
    """`fn(*args, **kwargs)`, or `fallback()` (else `default`) when the breaker is open or the
    call raises a connection error or timeout; any other error is a bug and propagates."""
    if breaker.available():
        try:
            result = fn(*args, **kwargs)
        except CACHE_ERRORS as exc:
            breaker.failed(exc)
        else:
            breaker.succeeded()
            return result
    return fallback() if fallback is not None else default


class FallbackCache:
    """The cache `alias`, or while it is unreachable a process-local LocMemCache.

    Only what callers here need (get, set, add, delete). Values written to the local cache stay
    local: when Redis returns, readers see Redis's values again (for throttles, the shared counts).
    """

    def __init__(self, alias: str = "default", *, max_entries: int = 10_000) -> None:
        self.alias = alias
        self.local = LocMemCache(
            f"sigmasight-fallback-{alias}", {"OPTIONS": {"MAX_ENTRIES": max_entries}}
        )

    @property
    def primary(self):
        return caches[self.alias]

    def get(self, key: str, default: Any = None) -> Any:
        return safe_cache_call(
            self.primary.get, key, default, fallback=lambda: self.local.get(key, default)
        )

    def set(self, key: str, value: Any, timeout: float | None = None) -> None:
        safe_cache_call(
            self.primary.set,
            key,
            value,
            timeout,
            fallback=lambda: self.local.set(key, value, timeout),
        )

    def add(self, key: str, value: Any, timeout: float | None = None) -> bool:
        return safe_cache_call(
            self.primary.add,
            key,
            value,
            timeout,
            fallback=lambda: self.local.add(key, value, timeout),
        )

    def delete(self, key: str) -> bool:
        return safe_cache_call(self.primary.delete, key, fallback=lambda: self.local.delete(key))
