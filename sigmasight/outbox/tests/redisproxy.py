"""The real Redis of this machine behind a `FaultProxy`, as the broker (and, if asked, the cache)
of the code under test, whatever REDIS_URL the suite runs with: these fault tests run on both
legs. They use Redis database 13 and delete only the keys they create there."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
import redis
from django.test import override_settings

from sigmasight import cachesafe
from sigmasight.api.throttling import throttle_cache
from sigmasight.celery import app
from sigmasight.outbox.services import broker_breaker
from sigmasight.tests.faultproxy import FaultProxy

REDIS_HOST, REDIS_PORT, REDIS_DB = "127.0.0.1", 6379, 13


@dataclass
class ProxiedRedis:
    proxy: FaultProxy
    url: str
    direct: redis.Redis  # straight to Redis, never through the proxy: what is really there
    queue: str

    def messages(self, queue: str | None = None) -> list[dict]:
        """The queue's messages in the order a worker takes them (kombu pushes left, pops right)."""
        raw = self.direct.lrange(queue or self.queue, 0, -1)
        return [json.loads(message) for message in reversed(raw)]

    def task_ids(self, queue: str | None = None) -> list[str]:
        return [message["headers"]["id"] for message in self.messages(queue)]


def redis_or_skip(db: int = REDIS_DB) -> redis.Redis:
    """A direct client to this machine's Redis (database `db`), or the test is skipped."""
    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=db, socket_timeout=2)
    try:
        client.ping()
    except redis.exceptions.ConnectionError:
        pytest.skip(f"needs a Redis server at {REDIS_HOST}:{REDIS_PORT} (fault tests)")
    return client


def reset_breakers() -> None:
    cachesafe.cache_breaker.reset()
    broker_breaker.reset()
    throttle_cache.local.clear()


def _drop_producer_pool() -> None:
    """Celery builds its producer pool once, from the broker URL of the moment: forgotten (not
    closed: kombu's registry may hand the same pool out again), the next send (a worker's too)
    connects to the URL set now, not to a proxy gone with its test."""
    # Private attributes (celery-types does not declare them), reset on purpose.
    app._pool = None  # type: ignore[attr-defined]
    app.amqp._producer_pool = None  # type: ignore[attr-defined]


@contextmanager
def proxied_redis(*, cache: bool = False) -> Iterator[ProxiedRedis]:
    """Celery publishes (not eagerly) to Redis through the proxy, on a default queue of its own
    (the router reads the setting per send), so another run of these tests at the same time,
    or its worker, never sees this one's messages; with `cache`, the default cache is Redis
    through the proxy too."""
    direct = redis_or_skip()
    proxy = FaultProxy(REDIS_HOST, REDIS_PORT).start()
    url = f"redis://{proxy.url_netloc()}/{REDIS_DB}"
    queue = f"outbox-test-{uuid.uuid4().hex[:12]}"
    saved = {
        key: app.conf[key] for key in ("broker_url", "task_always_eager", "task_default_queue")
    }
    caches = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": url,
            "KEY_PREFIX": queue,
            "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
        }
    }
    reset_breakers()
    # Celery builds its queue table once, and a worker started without -Q consumes the default
    # queue it was built with: build it now, from the real default, not from this test's queue.
    assert app.amqp.queues.consume_from
    app.conf.update(broker_url=url, task_always_eager=False, task_default_queue=queue)
    _drop_producer_pool()
    try:
        with override_settings(**({"CACHES": caches} if cache else {})):
            yield ProxiedRedis(proxy=proxy, url=url, direct=direct, queue=queue)
    finally:
        proxy.cut()
        app.conf.update(saved)
        _drop_producer_pool()
        reset_breakers()
        for key in [queue, *direct.scan_iter(f"{queue}:*"), *direct.scan_iter(f"*.{queue}")]:
            direct.delete(key)
