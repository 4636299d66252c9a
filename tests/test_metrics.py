"""/metrics: who may scrape it, and what a scrape says after real requests, batch jobs, provider
calls, an outbox row and cached reads (this process's registry; multiprocess mode is tested in
test_metrics_multiprocess.py)."""

from __future__ import annotations

import ipaddress
from datetime import date, datetime, timedelta

import pytest
from django.test import Client, override_settings
from django.utils import timezone

from analytics import batch
from analytics.models import BatchJob
from marketdata.providers.base import ProviderError
from marketdata.services import prices_fetch_and_cache
from marketdata.tests.helpers import END, MSFT_PATH, START, polygon, provider_for
from marketdata.tests.replay import ReplayServer, Reply
from portfolios.tests.factories import PortfolioFactory
from sigmasight import cachesafe
from sigmasight.api import caching
from sigmasight.outbox.models import OutboxTask
from sigmasight.tests.helpers import METRICS_TOKEN as TOKEN
from sigmasight.tests.helpers import Samples, manage, samples, scrape

pytestmark = pytest.mark.django_db

SESSION = date(2026, 11, 20)


def delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    key = (name, frozenset(labels.items()))
    assert key in after, f"{name}{labels} not scraped"
    return after[key] - before.get(key, 0.0)


def assert_refused(response, unknown) -> None:
    """Exactly what an unknown path answers: nothing says the endpoint exists."""
    assert response.status_code == 404
    assert response.json() == unknown.json()


@pytest.fixture
def unknown(client):
    return client.get("/no-such-path")


@pytest.mark.parametrize("method", ["get", "post", "delete"])
def test_metrics_never_served_when_neither_token_nor_addresses_are_set(client, unknown, method):
    with override_settings(SIGMASIGHT_METRICS_TOKEN=None, SIGMASIGHT_METRICS_ALLOWED_IPS=[]):
        assert_refused(getattr(client, method)("/metrics", REMOTE_ADDR="127.0.0.1"), unknown)
        assert_refused(getattr(client, method)("/metrics", HTTP_AUTHORIZATION="Bearer "), unknown)


@override_settings(SIGMASIGHT_METRICS_TOKEN=TOKEN, SIGMASIGHT_METRICS_ALLOWED_IPS=[])
def test_metrics_refuses_a_missing_or_wrong_token_and_serves_the_right_one(client, unknown):
    assert_refused(client.get("/metrics"), unknown)
    assert_refused(client.post("/metrics"), unknown)  # 404 before CSRF could answer 403
    for header in (f"Bearer {TOKEN[:-1]}", f"Bearer {TOKEN}x", f"Basic {TOKEN}", TOKEN):
        assert_refused(client.get("/metrics", HTTP_AUTHORIZATION=header), unknown)
    assert "sigmasight_http_requests_total" in scrape(client)
    assert client.post("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 405


@override_settings(
    SIGMASIGHT_METRICS_TOKEN=None,
    SIGMASIGHT_METRICS_ALLOWED_IPS=[
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("2001:db8::/32"),
    ],
)
def test_metrics_serves_allow_listed_addresses_only(client, unknown, settings):
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="2001:db8::7").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="::ffff:10.9.8.7").status_code == 200
    assert_refused(client.get("/metrics", REMOTE_ADDR="192.0.2.1"), unknown)
    # No trusted proxy: a client-written X-Forwarded-For changes nothing.
    forged = {"REMOTE_ADDR": "192.0.2.1", "HTTP_X_FORWARDED_FOR": "10.0.0.1"}
    assert_refused(client.get("/metrics", **forged), unknown)
    # One trusted proxy (as for the login throttle): the address it appended counts, not the
    # one the client wrote before it.
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    proxied = {"REMOTE_ADDR": "192.0.2.50", "HTTP_X_FORWARDED_FOR": "10.0.0.1, 203.0.113.9"}
    assert_refused(client.get("/metrics", **proxied), unknown)
    proxied["HTTP_X_FORWARDED_FOR"] = "203.0.113.9, 10.20.30.40"
    assert client.get("/metrics", **proxied).status_code == 200


@override_settings(SIGMASIGHT_METRICS_TOKEN=TOKEN, SECURE_SSL_REDIRECT=True)
def test_metrics_is_exempt_from_the_https_redirect_for_scrapers_inside_the_network():
    client = Client()  # SecurityMiddleware reads its settings when the client loads it
    assert client.get("/api/v1/auth/me/").status_code == 301
    scrape(client)


@pytest.mark.parametrize(
    ("env", "error"),
    [
        ({"SIGMASIGHT_METRICS_TOKEN": "short"}, "SIGMASIGHT_METRICS_TOKEN must be at least 32"),
        ({"SIGMASIGHT_METRICS_TOKEN": "x" * 20 + " " + "y" * 20}, "SIGMASIGHT_METRICS_TOKEN"),
        ({"SIGMASIGHT_METRICS_ALLOWED_IPS": "10.0.0.0/8,intranet"}, "'intranet'"),
        ({"SIGMASIGHT_METRICS_ALLOWED_IPS": "10.0.0.5/8"}, "'10.0.0.5/8'"),
        ({"PROMETHEUS_MULTIPROC_DIR": " "}, "PROMETHEUS_MULTIPROC_DIR is blank"),
        ({"SENTRY_DSN": "not-a-dsn"}, "SENTRY_DSN is not a Sentry DSN"),
    ],
)
def test_metrics_and_sentry_settings_refuse_junk(env, error):
    result = manage("check", env={"DEBUG": "true", **env})
    assert result.returncode != 0
    assert error in result.stderr


def test_metrics_settings_accept_addresses_networks_and_a_long_token():
    env = {
        "DEBUG": "true",
        "SIGMASIGHT_METRICS_TOKEN": TOKEN,
        "SIGMASIGHT_METRICS_ALLOWED_IPS": "10.0.0.0/8, 192.0.2.7, ::1",
    }
    result = manage("check", env=env)
    assert result.returncode == 0, result.stderr


@pytest.fixture
def polygon_server():
    with ReplayServer() as server:
        yield server


@override_settings(SIGMASIGHT_METRICS_TOKEN=TOKEN, SIGMASIGHT_API_CACHE_TTL_S=600)
def test_metrics_scrape_reports_requests_batch_providers_outbox_and_cache(
    client, auth_client, other_client, user, polygon_server
):
    cachesafe.cache_breaker.reset()
    caching._pending.clear()
    before = samples(scrape(client))

    # Requests: one route template whatever the id, the status apart, unknown paths unmatched.
    mine = PortfolioFactory(owner=user)
    assert auth_client.get(f"/api/v1/portfolios/{mine.pk}/").status_code == 200
    assert other_client.get(f"/api/v1/portfolios/{mine.pk}/").status_code == 404
    assert auth_client.get("/api/v1/portfolios/").status_code == 200
    assert client.get(f"/scanner/{mine.pk}/wp-login.php").status_code == 404

    # Cached reads: a miss, then a hit; with the cache unreachable (breaker open), a bypass.
    positions = f"/api/v1/positions/?portfolio={mine.pk}"
    assert auth_client.get(positions)["X-Cache"] == "miss"
    assert auth_client.get(positions)["X-Cache"] == "hit"
    cachesafe.cache_breaker.failed(ConnectionError("Redis went away"))
    assert auth_client.get(positions)["X-Cache"] == "bypass"
    cachesafe.cache_breaker.reset()

    # Batch: a job over no portfolio, one with a failed portfolio, a trigger with no job run.
    assert batch.job_run("greeks", SESSION, portfolio_ids=[]).status == "succeeded"
    job = batch.job_open("factors", SESSION)
    closed = batch.job_close(job, [{"failed": {"7": "boom"}, "counts": {"portfolios_ok": 2}}])
    assert closed.status == "partial"
    umbrella = BatchJob.objects.create(
        name="trigger:stress",
        run_date=SESSION,
        status=BatchJob.Status.RUNNING,
        started_at=timezone.now() - timedelta(seconds=3),
    )
    assert batch.trigger_close(umbrella.pk).status == "failed"

    # Providers: the real Polygon client against the replay server, one answer and one 502.
    polygon_server.route(MSFT_PATH, Reply(body=polygon("aggs_MSFT.json")))
    polygon_server.route("/v2/aggs/ticker/KO/*", Reply(502, b"bad gateway"))
    provider = provider_for(polygon_server, [], max_retries=0)
    now = datetime(2020, 1, 9, 18, tzinfo=timezone.get_current_timezone())
    for symbol in ("MSFT", "KO"):
        prices_fetch_and_cache(
            symbols=[symbol], start=START, end=END, providers=[provider], now=now
        )

    # The outbox: one task waiting a minute and a half, one already sent.
    OutboxTask.objects.create(
        task="sigmasight.noop", task_id="waiting", created_at=timezone.now() - timedelta(seconds=90)
    )
    OutboxTask.objects.create(task="sigmasight.noop", task_id="sent", sent_at=timezone.now())

    text = scrape(client)
    after = samples(text)

    requests = "sigmasight_http_requests_total"
    detail = "/api/v1/portfolios/<pk>/"
    assert delta(before, after, requests, method="GET", route=detail, status="200") == 1
    assert delta(before, after, requests, method="GET", route=detail, status="404") == 1
    assert delta(before, after, requests, method="GET", route="/api/v1/portfolios/", status="200")
    assert delta(before, after, requests, method="GET", route="unmatched", status="404") == 1
    assert delta(before, after, requests, method="GET", route="/metrics", status="200") == 1
    latency = "sigmasight_http_request_duration_seconds_count"
    assert delta(before, after, latency, method="GET", route=detail) == 2
    assert f"/portfolios/{mine.pk}/" not in text and "wp-login" not in text  # no raw path

    cache = "sigmasight_api_cache_requests_total"
    for outcome in ("miss", "hit", "bypass"):
        assert delta(before, after, cache, view="positions", outcome=outcome) == 1

    jobs = "sigmasight_batch_jobs_total"
    assert delta(before, after, jobs, job="greeks", status="succeeded") == 1
    assert delta(before, after, jobs, job="factors", status="partial") == 1
    assert delta(before, after, jobs, job="trigger:stress", status="failed") == 1
    failed = "sigmasight_batch_portfolios_failed_total"
    assert delta(before, after, failed, job="factors") == 1
    assert delta(before, after, failed, job="greeks") == 0
    durations = "sigmasight_batch_job_duration_seconds"
    assert delta(before, after, f"{durations}_count", job="trigger:stress") == 1
    assert delta(before, after, f"{durations}_sum", job="trigger:stress") >= 3

    calls = "sigmasight_provider_calls_total"
    assert delta(before, after, calls, provider="polygon", operation="prices", outcome="ok") == 1
    error = ProviderError.__name__
    assert delta(before, after, calls, provider="polygon", operation="prices", outcome=error) == 1
    provider_latency = "sigmasight_provider_call_duration_seconds_count"
    assert delta(before, after, provider_latency, provider="polygon", operation="prices") == 2

    assert after[("sigmasight_outbox_pending_tasks", frozenset())] == 1
    age = after[("sigmasight_outbox_oldest_pending_age_seconds", frozenset())]
    assert 90 <= age < 150


@override_settings(SIGMASIGHT_METRICS_TOKEN=TOKEN)
def test_metrics_outbox_age_is_zero_when_nothing_waits(client):
    after = samples(scrape(client))
    assert after[("sigmasight_outbox_pending_tasks", frozenset())] == 0
    assert after[("sigmasight_outbox_oldest_pending_age_seconds", frozenset())] == 0
