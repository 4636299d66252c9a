from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from sigmasight.tasks import ping

ROOT = Path(__file__).resolve().parents[2]


def test_ping_runs_eagerly_without_redis(settings):
    if not settings.CELERY_TASK_ALWAYS_EAGER:
        pytest.skip("REDIS_URL is set: tasks go to a broker")
    result = ping.delay("hello")
    assert result.get(timeout=1)["reply"] == "pong"
    assert result.get(timeout=1)["payload"] == "hello"


@pytest.mark.redis
def test_worker_round_trip_through_redis():
    """Start a real worker process on a private queue and get a task's result back."""
    queue = f"test-{uuid.uuid4().hex[:8]}"
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "sigmasight",
            "worker",
            "--pool=solo",
            "-Q",
            queue,
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--loglevel=WARNING",
        ],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "sigmasight.settings.test"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        reply = ping.apply_async(args=("round-trip",), queue=queue).get(timeout=60)
        assert reply["reply"] == "pong"
        assert reply["payload"] == "round-trip"
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
