"""Redis going away under the web: the API keeps serving (throttles count in a process-local
fallback, still limiting), requests stay fast (a circuit breaker stops each one paying a
connection attempt), and a request that queues work answers its normal 202 with the task kept in
the outbox, sent when Redis returns and then run by a worker.

Redis is the real server of this machine behind a `FaultProxy` (cut: refused and reset, as when
it stops), used as both the cache and the broker on either leg (`proxied_redis`).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date

import pytest
from django.test import override_settings

from analytics.models import BatchJob
from portfolios.tests.factories import PortfolioFactory
from sigmasight.accounts.tests.factories import DEFAULT_PASSWORD
from sigmasight.cachesafe import cache_available, cache_breaker
from sigmasight.outbox.models import OutboxTask
from sigmasight.outbox.services import broker_breaker, outbox_flush
from sigmasight.outbox.tests.redisproxy import proxied_redis, reset_breakers

pytestmark = pytest.mark.django_db

AS_OF = date(2026, 11, 20)
LIMIT_S = 3.0  # per request: far below the ~19 s a send took, or a timeout per cache call


@pytest.fixture
def redis_cut():
    with proxied_redis(cache=True) as proxied:
        proxied.proxy.cut()
        yield proxied


def timed(call, *args, **kwargs):
    started = time.monotonic()
    response = call(*args, **kwargs)
    took = time.monotonic() - started
    assert took < LIMIT_S, f"{args[0]} took {took:.2f} s with Redis down"
    assert response.status_code != 500, response.content
    return response


def _login(client, email: str, password: str = DEFAULT_PASSWORD):
    return timed(client.post, "/api/v1/auth/login/", {"email": email, "password": password})


def test_with_redis_down_login_and_reads_are_served(redis_cut, user, api_client, auth_client):
    PortfolioFactory(owner=user)
    response = _login(api_client, user.email)
    assert response.status_code == 200 and response.json()["access"]
    assert not cache_available()  # the first cache call failed and opened the breaker
    for _ in range(3):
        response = timed(auth_client.get, "/api/v1/portfolios/")
        assert response.status_code == 200 and response.json()["count"] == 1
    health = timed(api_client.get, "/api/v1/health/").json()
    assert (health["status"], health["cache"]) == ("degraded", "down")


@override_settings(SIGMASIGHT_THROTTLE_USER="3/min")
def test_with_redis_down_the_user_throttle_still_limits(redis_cut, auth_client, other_client):
    for _ in range(3):
        assert timed(auth_client.get, "/api/v1/auth/me/").status_code == 200
    assert timed(auth_client.get, "/api/v1/auth/me/").status_code == 429
    assert timed(other_client.get, "/api/v1/auth/me/").status_code == 200


@override_settings(SIGMASIGHT_THROTTLE_LOGIN_EMAIL="3/min")
def test_with_redis_down_login_guessing_is_still_throttled(redis_cut, user, api_client):
    """No failing open for password guessing: the local counts still refuse the fourth try."""
    for _ in range(3):
        assert _login(api_client, user.email, "wrong-password").status_code == 401
    response = _login(api_client, user.email, DEFAULT_PASSWORD)
    assert response.status_code == 429 and int(response["Retry-After"]) > 0


@override_settings(SIGMASIGHT_THROTTLE_USER="100/min")
def test_when_redis_returns_the_counts_are_shared_again(redis_cut, user, auth_client):
    assert timed(auth_client.get, "/api/v1/auth/me/").status_code == 200
    assert not redis_cut.direct.keys(f"{redis_cut.queue}:*")  # counted locally
    redis_cut.proxy.restore()
    cache_breaker.reset()  # what SIGMASIGHT_REDIS_RETRY_AFTER_S seconds do
    assert auth_client.get("/api/v1/auth/me/").status_code == 200
    assert redis_cut.direct.keys(f"{redis_cut.queue}:*throttle_user_{user.pk}")
    assert cache_available()


@contextmanager
def hung_redis() -> Iterator[str]:
    """A Redis that accepts connections and never answers (a partition, a frozen server)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    try:
        yield f"redis://127.0.0.1:{listener.getsockname()[1]}/13"
    finally:
        listener.close()


def test_a_hung_redis_costs_one_timeout_per_breaker_window_not_one_per_request(auth_client):
    reset_breakers()
    with hung_redis() as url:
        caches = {
            "default": {
                "BACKEND": "django.core.cache.backends.redis.RedisCache",
                "LOCATION": url,
                "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
            }
        }
        try:
            with override_settings(CACHES=caches):
                started = time.monotonic()
                for _ in range(10):
                    assert timed(auth_client.get, "/api/v1/auth/me/").status_code == 200
                took = time.monotonic() - started
        finally:
            reset_breakers()
    assert took < 3.0  # one 1 s timeout, then the breaker; without it 10 x (get + set) x 1 s


def test_with_the_broker_down_a_trigger_answers_202_and_is_sent_when_redis_returns(
    redis_cut, staff_client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = timed(
            staff_client.post, "/api/v1/admin/batch/snapshots/", {"date": AS_OF.isoformat()}
        )
    assert response.status_code == 202, response.content
    job = BatchJob.objects.get(pk=response.json()["job_id"])
    assert job.status == BatchJob.Status.QUEUED
    row = OutboxTask.objects.get()
    assert row.task == "analytics.run_trigger" and row.args == [job.pk, None]
    assert row.sent_at is None and row.attempts == 1

    redis_cut.proxy.restore()
    reset_breakers()
    assert outbox_flush().sent == 1
    [message] = redis_cut.messages()
    assert message["headers"]["task"] == "analytics.run_trigger"
    assert message["headers"]["id"] == row.task_id


def test_with_the_broker_down_a_price_refresh_keeps_the_job_id_it_answered(
    redis_cut, staff_client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = timed(
            staff_client.post,
            "/api/v1/market-data/refresh/",
            {"symbols": ["AAPL"], "start": "2026-11-02", "end": "2026-11-20"},
        )
    assert response.status_code == 202, response.content
    job_id = response.json()["job_id"]
    assert OutboxTask.objects.get().task_id == job_id
    redis_cut.proxy.restore()
    broker_breaker.reset()
    outbox_flush()
    assert redis_cut.task_ids() == [job_id]


@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_trigger_kept_while_redis_was_down_runs_on_a_worker_once_it_returns(staff_user):
    """End to end on committed data: the request commits its job and outbox row with the broker
    cut, the flush sends the task when Redis is back, and a real worker (in a thread) runs it."""
    from celery.contrib.testing.worker import start_worker
    from rest_framework.test import APIClient
    from rest_framework_simplejwt.tokens import RefreshToken

    from sigmasight.celery import app

    client = APIClient()
    client.credentials(
        HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(staff_user).access_token}"
    )
    with proxied_redis(cache=True) as redis_down:
        redis_down.proxy.cut()
        response = timed(client.post, "/api/v1/admin/batch/snapshots/", {"date": AS_OF.isoformat()})
        assert response.status_code == 202, response.content
        job_id = response.json()["job_id"]
        assert OutboxTask.objects.filter(sent_at__isnull=True).count() == 1  # committed

        redis_down.proxy.restore()
        reset_breakers()
        assert outbox_flush().sent == 1
        # Consumed too by this worker (and, harmlessly, by later ones: it is deleted at the end);
        # `queues=` would instead restrict every later worker of this process to it.
        # kombu takes a queue's name here; celery-types only lists Queue objects.
        app.amqp.queues.select_add(redis_down.queue)  # type: ignore[arg-type]
        with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=30):
            deadline = time.monotonic() + 60
            while BatchJob.objects.get(pk=job_id).status in {"queued", "running"}:
                assert time.monotonic() < deadline, "the trigger never ran"
                time.sleep(0.5)
    umbrella = BatchJob.objects.get(pk=job_id)
    assert umbrella.status == "succeeded", umbrella.error
    assert sorted(umbrella.counts["jobs"]) == ["retention", "snapshots"]


@override_settings(SIGMASIGHT_REDIS_RETRY_AFTER_S=0.3)
def test_the_breaker_tries_redis_again_after_its_interval(redis_cut, user, auth_client):
    assert timed(auth_client.get, "/api/v1/auth/me/").status_code == 200
    assert not cache_available()
    redis_cut.proxy.restore()
    time.sleep(0.4)
    assert cache_available()  # half-open: the next call tries Redis
    assert auth_client.get("/api/v1/auth/me/").status_code == 200
    assert cache_available() and redis_cut.direct.keys(
        f"{redis_cut.queue}:*throttle_user_{user.pk}"
    )
