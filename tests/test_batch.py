from __future__ import annotations

import io
import itertools
import re
from dataclasses import replace
from datetime import date

import pytest
from django.core.management import CommandError, call_command

from analytics import batch
from analytics.models import BatchJob, PositionFactorExposure, PositionGreeks
from marketdata.providers.synthetic import SyntheticProvider
from sigmasight.tests.helpers import assert_envelope
from stress.models import StressTestResult

pytestmark = pytest.mark.django_db

AS_OF = date(2026, 11, 20)


def numbers() -> list:
    return sorted(
        StressTestResult.objects.values_list("portfolio_id", "scenario_id", "correlated_pnl")
    )


def test_daily_chain_runs_every_job_in_order(books):
    runs = batch.run_daily_batch(AS_OF)
    assert [r.name for r in runs] == batch.daily()
    assert all(r.status == "succeeded" for r in runs), [(r.name, r.error) for r in runs]
    assert {r.name: r for r in runs}["market_data"].counts["positions_valued"] == 4
    assert PositionGreeks.objects.filter(date=AS_OF).count() == 1
    assert PositionFactorExposure.objects.filter(date=AS_OF, factor__name="Market").count() == 4
    assert StressTestResult.objects.filter(date=AS_OF).count() > 0
    for run in runs:  # each chunk's record says how long it took: where a job's time went
        seconds = [c.result["seconds"] for c in run.chunk_records.all()]
        assert seconds and all(0 <= s <= run.duration_s for s in seconds), run.name


def test_rerunning_a_day_changes_nothing(books):
    batch.run_daily_batch(AS_OF)
    counts = (
        PositionGreeks.objects.count(),
        PositionFactorExposure.objects.count(),
        StressTestResult.objects.count(),
    )
    before = numbers()
    batch.run_daily_batch(AS_OF)
    assert (
        PositionGreeks.objects.count(),
        PositionFactorExposure.objects.count(),
        StressTestResult.objects.count(),
    ) == counts
    after = numbers()
    assert [row[:2] for row in after] == [row[:2] for row in before]
    assert [row[2] for row in after] == pytest.approx([row[2] for row in before], rel=1e-12)


def test_a_failing_portfolio_does_not_stop_the_others(books, monkeypatch):
    first, _ = books
    real = batch.JOBS["greeks"]

    def greeks_failing_for_first(as_of, portfolio_ids, reads):
        if first.pk in portfolio_ids:
            raise RuntimeError("pricing blew up")
        return real.run(as_of, portfolio_ids, reads)

    monkeypatch.setitem(
        batch.JOBS, "greeks", replace(batch.JOBS["greeks"], run=greeks_failing_for_first)
    )
    job = batch.job_run("greeks", AS_OF)
    assert job.status == "partial", job.failed_portfolios
    assert job.failed_portfolios == {str(first.pk): "RuntimeError: pricing blew up"}
    assert job.counts["portfolios_ok"] == 1


def test_non_session_is_skipped(books):
    job = batch.job_run("market_data", date(2026, 11, 26))  # Thanksgiving
    assert job.status == "succeeded" and job.counts == {"skipped_non_session": 1}


def test_a_running_job_cannot_be_started_twice(books):
    BatchJob.objects.create(name="greeks", run_date=AS_OF, status="running")
    from sigmasight.exceptions import ConflictError

    with pytest.raises(ConflictError):
        batch.job_run("greeks", AS_OF)


def test_run_batch_command(books):
    out = io.StringIO()
    call_command(
        "run_batch",
        "--date",
        AS_OF.isoformat(),
        "--job",
        "market_data",
        "--job",
        "greeks",
        stdout=out,
    )
    assert "market_data  succeeded" in out.getvalue() and "greeks       succeeded" in out.getvalue()
    with pytest.raises(CommandError):
        call_command("run_batch", "--job", "teleport", stdout=io.StringIO(), stderr=io.StringIO())


def test_trigger_and_job_views_are_staff_only(auth_client, api_client, books):
    assert_envelope(api_client.post("/api/v1/admin/batch/all/", {}), 401)
    assert_envelope(auth_client.post("/api/v1/admin/batch/all/", {}), 403)
    assert_envelope(auth_client.get("/api/v1/admin/batch/jobs/"), 403)


def test_trigger_runs_and_health_reports_the_last_batch(
    staff_client, api_client, books, eager_celery, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(
            "/api/v1/admin/batch/risk-metrics/", {"date": AS_OF.isoformat()}
        )
    assert response.status_code == 202, response.content
    job = staff_client.get(f"/api/v1/admin/batch/jobs/{response.json()['job_id']}/").json()
    assert job["name"] == "trigger:risk-metrics" and job["status"] == "succeeded"
    assert set(job["counts"]["jobs"]) == {"greeks", "factors", "attribution", "market_risk"}
    listed = staff_client.get("/api/v1/admin/batch/jobs/", {"name": "greeks"}).json()
    assert listed["count"] == 1
    # Who ran it (this process: eager) and its last heartbeat, for spotting a lost runner.
    [greeks] = listed["results"]
    assert greeks["owner"] == batch.this_runner()
    assert greeks["heartbeat_at"] >= greeks["started_at"]
    health = api_client.get("/api/v1/health/").json()
    assert health["last_batch"]["status"] == "succeeded"
    assert_envelope(staff_client.post("/api/v1/admin/batch/teleport/", {}), 404)
    assert_envelope(staff_client.post("/api/v1/admin/batch/all/", {"date": "soon"}), 400)


def test_batch_admin_lists_jobs(client, books):
    from sigmasight.accounts.tests.factories import UserFactory

    job = batch.job_run("greeks", AS_OF)
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    page = client.get("/admin/analytics/batchjob/")
    assert page.status_code == 200
    assert list(page.context["cl"].result_list) == [job]
    html = page.content.decode()
    assert "1 batch job" in html and "column-heartbeat_at" in html
    assert '<td class="field-name">greeks</td>' in html
    assert '<td class="field-status">Succeeded</td>' in html
    assert "Nov. 20, 2026" in html  # the run date
    # The job's page lists its chunks from their records: portfolios, worker, time, retries.
    detail = client.get(f"/admin/analytics/batchjob/{job.pk}/change/")
    assert detail.status_code == 200
    html = detail.content.decode()

    def cells(field: str) -> list[str]:
        return re.findall(rf'<td class="field-{field}">\s*<p>(.*?)</p>', html)

    (record,) = job.chunk_records.all()  # both books in one chunk
    assert cells("seconds") == [str(record.result["seconds"])]
    assert cells("portfolios") == ["2"] and cells("retries") == ["0"] == cells("failed")
    assert cells("worker") == ["in process (the job&#x27;s owner)"]  # run_batch: no worker
    assert 'name="chunk_records-0-first_portfolio_id"' not in html  # read-only, no inputs
    record.result.pop("seconds")  # a record written before chunks were timed
    record.save()
    html = client.get(f"/admin/analytics/batchjob/{job.pk}/change/").content.decode()
    assert cells("seconds") == ["-"]
    for url in ("/admin/analytics/batchjob/", f"/admin/analytics/batchjob/{job.pk}/change/"):
        client.force_login(books[0].owner)  # a user, not staff: sent to the admin login
        refused = client.get(url)
        assert refused.status_code == 302 and refused["Location"].startswith("/admin/login/")


@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_trigger_runs_on_a_real_celery_worker(books, shared_database, tmp_path):
    """A worker process on a private queue claims the queued job through Redis and runs the
    whole chain against the (committed) test database: every job a chord of chunks (one
    portfolio per chunk here), the jobs chained in order, the umbrella folded at the end."""
    import os
    import uuid

    from analytics.tasks import run_trigger
    from sigmasight.servers import celery_workers

    queue = f"batch-{uuid.uuid4().hex[:8]}"
    umbrella = BatchJob.objects.create(name="trigger:all", run_date=AS_OF)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "sigmasight.settings.test",
        "DATABASE_URL": shared_database.url,
        "CELERY_TASK_DEFAULT_QUEUE": queue,
        "SIGMASIGHT_BATCH_CHUNK_POSITIONS": "2",
    }
    with celery_workers(env, queue=queue, concurrency=2, log=tmp_path / "worker.log"):
        reply = run_trigger.apply_async(args=(umbrella.pk, None), queue=queue).get(timeout=240)
    umbrella.refresh_from_db()
    assert reply == {"job_id": umbrella.pk, "status": "succeeded"}
    assert umbrella.status == "succeeded"
    assert set(umbrella.counts["jobs"]) == set(batch.daily())
    jobs = list(umbrella.children.order_by("id"))
    assert [j.name for j in jobs] == batch.daily()  # chained in the day's order
    assert all(
        a.finished_at is not None and b.started_at is not None and a.finished_at <= b.started_at
        for a, b in itertools.pairwise(jobs)
    )
    assert all(j.counts["portfolios_ok"] == 2 and j.status == "succeeded" for j in jobs)
    assert StressTestResult.objects.filter(date=AS_OF).exists()


def test_a_provider_failure_for_one_symbol_leaves_the_job_partial(books, monkeypatch):
    """The real synthetic market with one symbol's feed down: the portfolio holding it is reported
    (and valued from the cache, stale); the other portfolio is computed as usual."""
    from marketdata.models import DailyPrice
    from marketdata.providers import registry
    from marketdata.providers.base import MalformedPayload
    from marketdata.providers.synthetic import SyntheticProvider
    from portfolios.models import Position

    class KoFeedDown(SyntheticProvider):
        def daily_bars(self, symbols, start, end):
            if "KO" in symbols:
                raise MalformedPayload(self.name, "KO: results missing 'c'")
            return super().daily_bars(symbols, start, end)

    _, second = books
    DailyPrice.objects.filter(security__symbol__in=["KO", "AAPL"], date=AS_OF).delete()
    monkeypatch.setattr(registry, "chain", lambda: [KoFeedDown()])
    job = batch.job_run("market_data", AS_OF)
    assert job.status == "partial", job.failed_portfolios
    assert list(job.failed_portfolios) == [str(second.pk)]
    assert "no price for KO" in job.failed_portfolios[str(second.pk)]
    assert job.counts["portfolios_ok"] == 1
    assert DailyPrice.objects.filter(security__symbol="AAPL", date=AS_OF).exists()  # refetched
    assert Position.objects.get(portfolio=second, symbol="KO").valued_as_of == AS_OF


class FlakyFeed(SyntheticProvider):
    """The synthetic market whose KO feed times out for the first `failures` calls."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures
        self.calls = 0

    def daily_bars(self, symbols, start, end):
        if "KO" in symbols:
            self.calls += 1
            if self.calls <= self.failures:
                from marketdata.providers.base import ProviderTimeout

                raise ProviderTimeout(self.name, "read timed out after 10 s")
        return super().daily_bars(symbols, start, end)


def _drop_last_close(symbols):
    from marketdata.models import DailyPrice

    DailyPrice.objects.filter(security__symbol__in=symbols, date=AS_OF).delete()


def test_a_provider_timeout_is_retried_and_the_job_succeeds(books, monkeypatch):
    from marketdata.models import DailyPrice
    from marketdata.providers import registry

    feed = FlakyFeed(failures=1)
    _drop_last_close(["KO"])
    monkeypatch.setattr(registry, "chain", lambda: [feed])
    job = batch.job_run("market_data", AS_OF)
    assert job.status == "succeeded", job.failed_portfolios
    assert job.counts["retries"] == 1 and feed.calls == 2
    assert DailyPrice.objects.filter(security__symbol="KO", date=AS_OF).exists()


def test_a_provider_that_stays_down_leaves_the_job_partial_after_the_retries(
    books, monkeypatch, settings
):
    from marketdata.providers import registry

    settings.SIGMASIGHT_BATCH_RETRIES = 2
    feed = FlakyFeed(failures=10**6)
    _drop_last_close(["KO"])
    monkeypatch.setattr(registry, "chain", lambda: [feed])
    slept: list[float] = []
    monkeypatch.setattr(batch.time, "sleep", slept.append)
    job = batch.job_run("market_data", AS_OF)
    _, second = books
    assert job.status == "partial" and job.counts["retries"] == 2
    assert len(slept) == 2 and feed.calls == 3
    assert "no price for KO" in job.failed_portfolios[str(second.pk)]


def test_errors_other_than_provider_errors_are_not_retried(books, monkeypatch):
    calls = []

    def always_broken(as_of, portfolio_ids, reads):
        calls.append(list(portfolio_ids))
        raise ZeroDivisionError("bad model")

    monkeypatch.setitem(batch.JOBS, "greeks", replace(batch.JOBS["greeks"], run=always_broken))
    job = batch.job_run("greeks", AS_OF)
    assert job.status == "failed" and "retries" not in job.counts
    first, second = books
    assert calls == [[first.pk, second.pk], [first.pk], [second.pk]]  # chunk, then one by one


def test_a_chunk_over_its_soft_time_limit_fails_whole_without_splitting(books, monkeypatch):
    from celery.exceptions import SoftTimeLimitExceeded

    calls = []

    def slow(as_of, portfolio_ids, reads):
        calls.append(list(portfolio_ids))
        raise SoftTimeLimitExceeded()

    monkeypatch.setitem(batch.JOBS, "stress", replace(batch.JOBS["stress"], run=slow))
    job = batch.job_run("stress", AS_OF)
    assert job.status == "failed" and len(calls) == 1
    soft, _ = batch.time_limits("stress")
    assert set(job.failed_portfolios.values()) == {
        f"time limit: the chunk did not finish within {soft} s"
    }


def test_each_job_fans_out_as_a_chord_of_chunks_with_its_time_limits(books, settings):
    from analytics.tasks import job_canvas

    settings.SIGMASIGHT_BATCH_CHUNK_POSITIONS = 2
    first, second = books
    row = batch.job_open("factors", AS_OF)
    chunks = batch.job_chunks("factors", AS_OF, None)
    assert chunks == [[first.pk], [second.pk]]
    canvas = job_canvas(row, chunks)
    assert [t.task for t in canvas.tasks] == ["analytics.run_chunk"] * 2
    assert [t.args[3] for t in canvas.tasks] == chunks
    assert {(t.options["soft_time_limit"], t.options["time_limit"]) for t in canvas.tasks} == {
        (15 * 60, 15 * 60 + settings.SIGMASIGHT_BATCH_HARD_GRACE_S)
    }
    assert canvas.body.task == "analytics.finish_job" and canvas.body.args == (row.pk,)
    assert [e.task for e in canvas.body.options["link_error"]] == ["analytics.abandon_job"]


def test_backoff_is_exponential_with_full_jitter_and_a_cap(settings):
    import random

    settings.SIGMASIGHT_BATCH_RETRY_BACKOFF_S = 30.0
    settings.SIGMASIGHT_BATCH_RETRY_BACKOFF_MAX_S = 600.0
    rng = random.Random(7)
    for attempt, cap in [(0, 30), (1, 60), (2, 120), (3, 240), (4, 480), (5, 600), (9, 600)]:
        draws = [batch.backoff(attempt, rng=rng) for _ in range(400)]
        assert min(draws) >= 0 and max(draws) <= cap
        assert max(draws) > 0.9 * cap  # the whole range is used, up to the cap


def test_a_job_left_running_by_a_dead_worker_is_failed_when_it_runs_again(books):
    from datetime import timedelta

    from django.utils import timezone

    dead = BatchJob.objects.create(
        name="greeks",
        run_date=AS_OF,
        status="running",
        started_at=timezone.now() - timedelta(hours=7),
    )
    job = batch.job_run("greeks", AS_OF)
    dead.refresh_from_db()
    assert dead.status == "failed" and dead.error.startswith("abandoned")
    assert job.status == "succeeded"


def test_a_chunk_claimed_by_another_worker_is_not_computed_twice(books):
    from django.core.cache import cache

    from analytics.tasks import run_chunk

    first, _ = books
    row = batch.job_open("greeks", AS_OF)
    cache.set(f"batch-chunk:{row.pk}:{first.pk}", "another-worker-task-id", 60)
    result = run_chunk.apply(args=(row.pk, "greeks", AS_OF.isoformat(), [first.pk])).get()
    assert result["claimed_elsewhere"] is True and result["counts"] == {}
    assert not PositionGreeks.objects.filter(date=AS_OF).exists()
    closed = batch.job_close(row, [result])
    assert closed.counts == {"chunks_claimed_elsewhere": 1}


def test_the_day_task_runs_every_job_in_order(books, eager_celery):
    from analytics.tasks import run_day

    replies = run_day.apply(args=(AS_OF.isoformat(),)).get()
    assert [r["job"] for r in replies] == batch.daily()
    assert {r["status"] for r in replies} == {"succeeded"}


def test_admin_rerun_queues_the_job_itself(
    client, books, eager_celery, django_capture_on_commit_callbacks
):
    from sigmasight.accounts.tests.factories import UserFactory

    done = batch.job_run("greeks", AS_OF)
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/admin/analytics/batchjob/",
            {"action": "rerun", "_selected_action": [done.pk]},
            follow=True,
        )
    assert b"Queued 1 job(s)." in response.content
    again = BatchJob.objects.exclude(pk=done.pk).get()
    assert (again.name, again.run_date, again.status) == ("greeks", AS_OF, "succeeded")


def test_every_trigger_of_api_md_is_served(
    staff_client, books, eager_celery, django_capture_on_commit_callbacks
):
    for trigger, jobs in [
        ("market-data", ["corporate_actions", "market_data"]),  # sorted
        ("snapshots", ["retention", "snapshots"]),  # the position results pruned after
        ("stress", ["stress"]),
    ]:
        with django_capture_on_commit_callbacks(execute=True):
            response = staff_client.post(
                f"/api/v1/admin/batch/{trigger}/", {"date": AS_OF.isoformat()}
            )
        assert response.status_code == 202, response.content
        job = staff_client.get(f"/api/v1/admin/batch/jobs/{response.json()['job_id']}/").json()
        # PostgreSQL's jsonb keeps object keys in its own order: which jobs ran, not their order
        # (test_trigger_runs_on_a_real_celery_worker checks the chain's order).
        assert job["name"] == f"trigger:{trigger}" and sorted(job["counts"]["jobs"]) == jobs


@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_worker_retries_a_provider_error_with_backoff(books, monkeypatch):
    """A real worker (in a thread of this process, so the flaky feed can be put in its path)
    consumes the job's chord from Redis: the chunk meets a provider timeout, is retried through
    the broker (self.retry with its backoff countdown), and the job ends succeeded."""
    from celery.contrib.testing.worker import start_worker

    from analytics.tasks import run_job
    from marketdata.providers import registry
    from sigmasight.celery import app

    feed = FlakyFeed(failures=1)
    _drop_last_close(["KO"])
    monkeypatch.setattr(registry, "chain", lambda: [feed])
    previous = app.conf.task_always_eager
    app.conf.task_always_eager = False
    app.control.purge()  # the test broker's default queue: nothing stale for this worker
    try:
        with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=30):
            reply = run_job.delay("market_data", AS_OF.isoformat()).get(timeout=120)
    finally:
        app.conf.task_always_eager = previous
    job = BatchJob.objects.get(pk=reply["job_id"])
    assert job.status == "succeeded", job.failed_portfolios
    assert job.counts["retries"] == 1 and feed.calls == 2


@pytest.mark.slow
@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_workers_on_two_hosts_share_an_evening_without_computing_a_chunk_twice(
    books, shared_database
):
    """Two worker processes with different host names (two machines, as Celery tells them
    apart) on one queue and one database: every job's chunks are split between them, each chunk
    computed and recorded once."""
    import os
    import uuid

    from analytics.models import BatchJobChunk
    from analytics.tasks import run_trigger
    from portfolios.tests.factories import PortfolioFactory, stock
    from sigmasight.servers import celery_workers

    first, _ = books
    for symbol in ("KO", "JPM", "AAPL", "KO"):  # more books: more chunks to share
        stock(PortfolioFactory(owner=first.owner), symbol, "10")
    queue = f"batch-{uuid.uuid4().hex[:8]}"
    hosts = ("worker-a@host-a", "worker-b@host-b")
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "sigmasight.settings.test",
        "DATABASE_URL": shared_database.url,
        "CELERY_TASK_DEFAULT_QUEUE": queue,
        "SIGMASIGHT_BATCH_CHUNK_POSITIONS": "1",
    }
    umbrella = BatchJob.objects.create(name="trigger:all", run_date=AS_OF)
    with celery_workers(env, queue=queue, hosts=hosts):
        reply = run_trigger.apply_async(args=(umbrella.pk, None), queue=queue).get(timeout=300)
    assert reply == {"job_id": umbrella.pk, "status": "succeeded"}
    books_count = 6
    seen = set()
    for job in umbrella.children.all():
        records = list(BatchJobChunk.objects.filter(job=job))
        portfolios = [pk for r in records for pk in r.portfolio_ids]
        assert len(portfolios) == len(set(portfolios)) == books_count, job.name  # once each
        seen |= {r.result["worker"] for r in records}
        assert all(0 <= r.result["seconds"] <= job.duration_s for r in records), job.name
    assert seen == set(hosts)  # both machines took part
