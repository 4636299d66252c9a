from __future__ import annotations

import os
import uuid

import pytest

from sigmasight.servers import celery_workers
from sigmasight.tasks import ping


def test_ping_runs_eagerly_without_redis(settings):
    if not settings.CELERY_TASK_ALWAYS_EAGER:
        pytest.skip("REDIS_URL is set: tasks go to a broker")
    result = ping.delay("hello")
    assert result.get(timeout=1)["reply"] == "pong"
    assert result.get(timeout=1)["payload"] == "hello"


@pytest.mark.redis
def test_worker_round_trip_through_redis(tmp_path):
    """Start a real worker process on a private queue and get a task's result back."""
    queue = f"test-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "sigmasight.settings.test"}
    with celery_workers(env, queue=queue, pool="solo", log=tmp_path / "worker.log"):
        reply = ping.apply_async(args=("round-trip",), queue=queue).get(timeout=60)
    assert reply["reply"] == "pong"
    assert reply["payload"] == "round-trip"
