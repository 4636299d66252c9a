"""A batch killed halfway: its job row stays `running` until the next run finds the runner gone,
takes the job over and computes only what the killed run had not finished."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from analytics import batch
from analytics.models import (
    BatchJob,
    BatchJobChunk,
    MarketRiskScenario,
    PortfolioFactorExposure,
    PortfolioSnapshot,
    PositionFactorExposure,
    PositionGreeks,
    RiskMetricSnapshot,
)
from marketdata.models import DailyPrice
from portfolios.models import Position
from portfolios.tests.factories import PortfolioFactory, stock
from sigmasight.exceptions import ConflictError
from sigmasight.servers import ROOT
from stress.models import StressTestResult

pytestmark = pytest.mark.django_db

# Runs the daily batch and hangs for good right after the first chunk of one job is recorded:
# the test kills it there, so the kill always lands between two chunks of that job.
DRIVER = """
import os, sys, time
from datetime import date
import django
django.setup()
from analytics import batch
record = batch.chunk_record
def record_then_hang(job_id, chunk, result):
    record(job_id, chunk, result)
    if batch.BatchJob.objects.get(pk=job_id).name == os.environ["HANG_IN_JOB"]:
        time.sleep(600)
batch.chunk_record = record_then_hang
batch.run_daily_batch(date.fromisoformat(sys.argv[1]))
"""


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def running(name: str, session, **fields) -> BatchJob:
    now = timezone.now()
    return BatchJob.objects.create(
        name=name, run_date=session, status="running", started_at=now, heartbeat_at=now, **fields
    )


def test_a_live_runner_is_not_taken_over(books, batch_session):
    here = running("greeks", batch_session, owner=batch.this_runner())
    with pytest.raises(ConflictError) as raised:
        batch.job_run("greeks", batch_session)
    assert raised.value.code == "batch_running"
    here.status = "failed"
    here.save()
    running("greeks", batch_session, owner="another-host:4242")  # fresh heartbeat
    with pytest.raises(ConflictError):
        batch.job_run("greeks", batch_session)
    assert BatchJob.objects.filter(status="running").count() == 1


def test_a_runner_whose_pid_is_dead_is_taken_over_at_once(books, batch_session):
    owner = f"{socket.gethostname()}:{dead_pid()}"
    killed = running("greeks", batch_session, owner=owner)
    job = batch.job_run("greeks", batch_session)
    killed.refresh_from_db()
    assert killed.status == "failed" and killed.finished_at is not None
    assert killed.error == f"abandoned: runner {owner} is gone (pid not alive)"
    assert job.status == "succeeded" and job.counts["resumed_from"] == killed.pk
    assert job.counts["portfolios_already_done"] == 0 and job.counts["portfolios_ok"] == 2


def test_a_pid_reused_by_a_younger_process_is_taken_over(books, batch_session):
    """The row names this very process, but the job started before this process did: the pid
    was reused, the runner is gone."""
    killed = running("greeks", batch_session, owner=batch.this_runner())
    BatchJob.objects.filter(pk=killed.pk).update(started_at=timezone.now() - timedelta(days=30))
    assert batch.job_run("greeks", batch_session).status == "succeeded"
    killed.refresh_from_db()
    assert killed.status == "failed" and "pid not alive" in killed.error


def test_a_runner_without_a_heartbeat_is_taken_over(books, batch_session):
    limit = batch.heartbeat_limit("greeks")
    quiet = running("greeks", batch_session, owner="another-host:4242")
    BatchJob.objects.filter(pk=quiet.pk).update(
        heartbeat_at=timezone.now() - timedelta(seconds=limit + 5)
    )
    job = batch.job_run("greeks", batch_session)
    quiet.refresh_from_db()
    assert quiet.status == "failed" and job.status == "succeeded"
    assert quiet.error.startswith("abandoned: runner another-host:4242 is gone (no heartbeat since")


def test_a_live_local_runner_is_taken_over_only_when_hung_past_the_stale_hours(
    books, batch_session, settings
):
    hung = running("greeks", batch_session, owner=batch.this_runner())
    BatchJob.objects.filter(pk=hung.pk).update(
        heartbeat_at=timezone.now() - timedelta(seconds=batch.heartbeat_limit("greeks") + 5)
    )
    with pytest.raises(ConflictError):  # a long chunk in this process, not a dead one
        batch.job_run("greeks", batch_session)
    BatchJob.objects.filter(pk=hung.pk).update(
        heartbeat_at=timezone.now()
        - timedelta(hours=settings.SIGMASIGHT_BATCH_STALE_HOURS, minutes=1)
    )
    assert batch.job_run("greeks", batch_session).status == "succeeded"


def test_a_resumed_job_computes_only_what_the_killed_run_did_not_finish(
    books, batch_session, monkeypatch, settings
):
    settings.SIGMASIGHT_BATCH_CHUNK_POSITIONS = 2
    first, second = books
    killed = running("greeks", batch_session, owner=f"{socket.gethostname()}:{dead_pid()}")
    batch.chunk_run_with_retries("greeks", batch_session, [first.pk], job_id=killed.pk)
    computed = []
    real = batch.JOBS["greeks"]

    def greeks(as_of, portfolio_ids, reads):
        computed.append(list(portfolio_ids))
        return real.run(as_of, portfolio_ids, reads)

    monkeypatch.setitem(batch.JOBS, "greeks", replace(batch.JOBS["greeks"], run=greeks))
    progress: list[
        int
    ] = []  # run_batch's progress bar: the carried portfolio counts as done at once
    job = batch.job_run("greeks", batch_session, on_chunk=progress.append)
    assert computed == [[second.pk]]
    assert progress == [1, 1]
    assert job.status == "succeeded"
    assert job.counts == {
        "resumed_from": killed.pk,
        "portfolios_already_done": 1,
        "portfolios_ok": 2,
        "options": 1,
        "source_realized": 1,
        # The fixture stores prices, not yields: the option's underlying is priced with 0, said.
        "without_dividend_yield": 1,
        "portfolios_with_warnings": 1,
    }
    assert sorted(job.chunk_records.values_list("portfolio_ids", "carried")) == [
        ([first.pk], True),
        ([second.pk], False),
    ]
    own = [c.result for c in job.chunk_records.filter(carried=False)]
    assert batch.job_close(BatchJob.objects.get(pk=job.pk), own).counts == job.counts  # again


def test_a_redelivered_chunk_task_runs_its_chunk(books, batch_session):
    """A worker killed mid-chunk: the broker redelivers the same message (acks_late), whose task
    id holds the chunk's claim; the copy computes the chunk instead of skipping it."""
    from django.core.cache import cache

    from analytics.tasks import run_chunk

    first, _ = books
    row = batch.job_open("greeks", batch_session)
    cache.set(f"batch-chunk:{row.pk}:{first.pk}", "the-killed-delivery", 600)
    result = run_chunk.apply(
        args=(row.pk, "greeks", batch_session.isoformat(), [first.pk]),
        task_id="the-killed-delivery",
    ).get()
    assert "claimed_elsewhere" not in result and result["counts"]["portfolios_ok"] == 1
    assert PositionGreeks.objects.filter(date=batch_session).count() == 1
    assert row.chunk_records.get().portfolio_ids == [first.pk]


def test_the_chunks_of_a_job_taken_over_are_left_to_the_new_run(books, batch_session):
    """The old chord of a job whose workers looked gone: its late chunks and fold change nothing
    (the run that took over computes them)."""
    from analytics.tasks import finish_job, run_chunk

    first, _ = books
    old = batch.job_open("greeks", batch_session)
    BatchJob.objects.filter(pk=old.pk).update(
        heartbeat_at=timezone.now() - timedelta(seconds=batch.heartbeat_limit("greeks") + 5)
    )
    new = batch.job_open("greeks", batch_session)
    late = run_chunk.apply(args=(old.pk, "greeks", batch_session.isoformat(), [first.pk])).get()
    assert late["job_closed"] is True and not PositionGreeks.objects.exists()
    assert finish_job.apply(args=([late], old.pk)).get()["status"] == "failed"
    old.refresh_from_db()
    assert old.error.startswith("abandoned: runner workers is gone (no heartbeat since")
    assert new.counts == {"resumed_from": old.pk, "portfolios_already_done": 0}


def stored(session) -> dict[str, list[tuple]]:
    """Every result the batch stores for a session, keyed and ordered (timestamps left out)."""
    tables: dict[Any, tuple[str, ...]] = {
        DailyPrice: ("security__symbol", "close"),
        Position: ("id", "valued_as_of", "market_value", "exposure", "unrealized_pnl"),
        PositionGreeks: ("position_id", "delta", "gamma", "theta", "vega", "rho", "volatility"),
        PositionFactorExposure: ("position_id", "factor_id", "beta", "dollar_exposure"),
        PortfolioFactorExposure: ("portfolio_id", "factor_id", "beta", "dollar_exposure"),
        MarketRiskScenario: ("portfolio_id", "kind", "move", "predicted_pnl"),
        RiskMetricSnapshot: (
            "portfolio_id",
            "confidence",
            "horizon_days",
            "var_historical",
            "var_parametric",
            "var_monte_carlo",
            "expected_shortfall",
        ),
        PortfolioSnapshot: ("portfolio_id", "equity", "daily_pnl", "gross_exposure"),
        StressTestResult: ("portfolio_id", "scenario_id", "direct_pnl", "correlated_pnl"),
    }
    rows = {}
    for model, fields in tables.items():
        queryset = model.objects.all() if model is Position else model.objects.filter(date=session)
        rows[model.__name__] = sorted(queryset.values_list(*fields))
    return rows


@pytest.mark.slow
def test_a_batch_killed_halfway_resumes_with_nothing_duplicated_or_lost(
    books, batch_session, shared_database, settings, tmp_path
):
    """A real `run_daily_batch` in a subprocess is SIGKILLed after the first of three chunks of
    the factors job; the next run takes the job over, computes the two other chunks and ends
    with exactly the results of an uninterrupted run."""
    settings.SIGMASIGHT_BATCH_CHUNK_POSITIONS = 2
    first, second = books
    third = PortfolioFactory(owner=first.owner, cash=Decimal("25000"))
    stock(third, "KO", "100")
    stock(third, "AAPL", "-20")
    shared_database.export()
    runner = subprocess.Popen(
        [sys.executable, "-c", DRIVER, batch_session.isoformat()],
        cwd=ROOT,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "sigmasight.settings.test",
            "DATABASE_URL": shared_database.url,
            "SIGMASIGHT_BATCH_CHUNK_POSITIONS": "2",
            "SIGMASIGHT_MARKET_DATA_SOURCE": "synthetic",
            "HANG_IN_JOB": "factors",
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 180
        while not BatchJobChunk.objects.filter(job__name="factors").exists():
            if shared_database.sqlite:
                shared_database.absorb()
            assert runner.poll() is None, runner.communicate()[0]
            assert time.monotonic() < deadline, "the runner never finished a factors chunk"
            time.sleep(0.2)
    finally:
        runner.send_signal(signal.SIGKILL)
        runner.communicate()
    shared_database.absorb()

    killed = BatchJob.objects.get(name="factors")
    assert killed.status == "running" and killed.owner == f"{socket.gethostname()}:{runner.pid}"
    assert list(killed.chunk_records.values_list("portfolio_ids", flat=True)) == [[first.pk]]
    with_betas = set(
        PositionFactorExposure.objects.filter(date=batch_session).values_list(
            "position__portfolio_id", flat=True
        )
    )
    assert with_betas == {first.pk}  # some but not all
    assert not BatchJob.objects.filter(name__in=["market_risk", "snapshots", "stress"]).exists()

    runs = batch.run_daily_batch(batch_session)
    assert [(r.name, r.status) for r in runs] == [(n, "succeeded") for n in batch.daily()]
    resumed = runs[batch.daily().index("factors")]
    assert resumed.counts["resumed_from"] == killed.pk
    assert resumed.counts["portfolios_already_done"] == 1
    assert all(r.counts["portfolios_ok"] == 3 for r in runs)
    killed.refresh_from_db()
    assert killed.status == "failed"
    assert killed.error == f"abandoned: runner {killed.owner} is gone (pid not alive)"
    after_resume = stored(batch_session)
    assert all(after_resume.values()), {t: len(rows) for t, rows in after_resume.items()}
    assert {p for p, *_ in after_resume["PortfolioSnapshot"]} == {first.pk, second.pk, third.pk}

    again = batch.run_daily_batch(batch_session)  # uninterrupted, on the same data
    assert all("resumed_from" not in r.counts for r in again)
    uninterrupted = stored(batch_session)
    assert {t: len(rows) for t, rows in after_resume.items()} == {
        t: len(rows) for t, rows in uninterrupted.items()
    }
    for table, rows in uninterrupted.items():
        for resumed_row, row in zip(after_resume[table], rows, strict=True):
            assert [
                a == pytest.approx(b, rel=1e-12) if isinstance(b, float) else a == b
                for a, b in zip(resumed_row, row, strict=True)
            ] == [True] * len(row), table
