"""What makes workers add speed: the stress correlation stored once per run before the chunks,
one BLAS thread per worker process, and each worker process's closes kept across chunks."""

from __future__ import annotations

from datetime import date

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from threadpoolctl import threadpool_info, threadpool_limits

from analytics import batch
from analytics.selectors import ReadCache, SessionCloses
from stress.models import FactorCorrelation, StressTestResult

pytestmark = pytest.mark.django_db

AS_OF = date(2026, 11, 20)


def _writes_to(table: str, queries: list[dict]) -> list[str]:
    return [
        q["sql"]
        for q in queries
        if table in q["sql"] and q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE"))
    ]


def test_the_stress_chunks_only_read_the_correlation_their_job_stored_before_them(books, settings):
    settings.SIGMASIGHT_BATCH_CHUNK_POSITIONS = 2  # the two books: two chunks
    batch.run_daily_batch(AS_OF, jobs=["market_data", "greeks", "factors"])
    assert len(batch.job_chunks("stress", AS_OF, None)) == 2
    table = FactorCorrelation._meta.db_table
    with CaptureQueriesContext(connection) as captured:
        job = batch.job_run("stress", AS_OF)
    assert job.status == "succeeded", job.error
    assert len(_writes_to(table, captured.captured_queries)) == 1  # the job's prepare, once
    assert FactorCorrelation.objects.filter(date=AS_OF).count() == 1
    assert StressTestResult.objects.filter(date=AS_OF).values("portfolio").distinct().count() == 2
    # A re-run stores it again once (prices may have changed) and the chunks still only read.
    with CaptureQueriesContext(connection) as captured:
        batch.job_run("stress", AS_OF)
    assert len(_writes_to(table, captured.captured_queries)) == 1


def test_a_stress_chunk_without_its_jobs_prepare_stores_the_missing_correlation(books):
    from stress.services import stress_prepare

    batch.run_daily_batch(AS_OF, jobs=["market_data", "greeks", "factors"])
    first, _ = books
    stress_prepare(as_of=AS_OF, portfolio_ids=[first.pk], store_correlation=False)
    assert FactorCorrelation.objects.filter(date=AS_OF).count() == 1


def test_a_worker_process_runs_numpy_with_one_blas_thread():
    from celery.signals import worker_process_init

    from sigmasight.celery import _worker_process_init

    pools = [p for p in threadpool_info() if p["user_api"] in {"blas", "openmp"}]
    assert pools, "numpy's BLAS is visible to threadpoolctl"
    before = {p["filepath"]: p["num_threads"] for p in pools}
    try:
        assert _worker_process_init in [r() for _, r in worker_process_init.receivers]
        worker_process_init.send(sender=None)  # what a prefork child does when it starts
        after = [p for p in threadpool_info() if p["user_api"] in {"blas", "openmp"}]
        assert {p["num_threads"] for p in after} == {1}
    finally:
        for path, threads in before.items():
            threadpool_limits(limits={path: threads})


def test_a_worker_reuses_the_closes_of_its_session_across_chunks(books, monkeypatch):
    from analytics import selectors

    reads: list[list[str]] = []
    real = selectors._read_closes

    def counted(symbols, as_of, sessions):
        reads.append(list(symbols))
        return real(symbols, as_of, sessions)

    monkeypatch.setattr(selectors, "_read_closes", counted)
    closes = SessionCloses(max_cells=1_000_000)
    symbols = ["AAPL", "KO", "SPY"]
    shared = closes.current(AS_OF, generation=7)
    assert shared is closes
    first = ReadCache(shared).closes(symbols, AS_OF, 200)
    assert len(reads) == 1
    again = ReadCache(closes.current(AS_OF, generation=7)).closes(symbols, AS_OF, 200)
    assert len(reads) == 1  # the next chunk reads nothing
    assert again.equals(first)
    # New closes anywhere (the generation moved), another session: read again.
    for session, generation in ((AS_OF, 8), (date(2026, 11, 19), 8)):
        before = len(reads)
        ReadCache(closes.current(session, generation)).closes(symbols, session, 200)
        assert len(reads) == before + 1
    # No generation to compare (the cache unreachable): nothing is kept.
    assert closes.current(AS_OF, None) is None and closes.panels == {}


def test_the_closes_a_worker_keeps_are_bounded():
    import pandas as pd

    closes = SessionCloses(max_cells=10)
    closes.current(AS_OF, generation=1)
    closes.panels[(AS_OF, 5)] = pd.DataFrame({"A": range(5), "B": range(5)})  # 10 cells: kept
    closes.bound()
    assert closes.cells() == 10
    closes.panels[(AS_OF, 6)] = pd.DataFrame({"A": range(6)})
    closes.bound()
    assert closes.panels == {}
    assert SessionCloses(max_cells=0).current(AS_OF, generation=1) is None  # turned off
