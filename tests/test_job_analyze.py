"""The jobs that fill a session's rows read by the later jobs analyze those tables on
PostgreSQL once their chunks are done (`Job.analyze`, `jobs.job_analyze`): the planner then
knows the session's rows instead of taking the new date for one beyond its statistics."""

from __future__ import annotations

from datetime import date

import pytest
from django.db import connection
from django.db.models import Model

from analytics import batch
from analytics.jobs import JOBS
from analytics.models import PositionFactorExposure, PositionGreeks, PositionInterestRateBeta
from marketdata.models import DailyPrice

pytestmark = pytest.mark.django_db

AS_OF = date(2026, 11, 20)
ANALYZED: dict[str, set[type[Model]]] = {
    "market_data": {DailyPrice},
    "greeks": {PositionGreeks},
    "factors": {PositionFactorExposure, PositionInterestRateBeta},
}


def estimated_rows(model: type[Model]) -> float:
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE relname = %s", [model._meta.db_table])
        return float(cursor.fetchone()[0])


def test_the_jobs_writing_the_sessions_inputs_declare_their_tables():
    for name, models in ANALYZED.items():
        assert set(JOBS[name].analyze) == models
    assert all(not JOBS[n].analyze for n in JOBS if n not in ANALYZED)


@pytest.mark.postgres
def test_after_each_job_postgresql_knows_the_rows_it_wrote(books):
    for name in ("market_data", "greeks", "factors"):
        assert batch.job_run(name, AS_OF).status == "succeeded"
        for model in ANALYZED[name]:
            rows = model._default_manager.count()
            assert rows > 0
            # A table this small is analyzed in full: the estimate is the count.
            assert estimated_rows(model) == rows, model.__name__


@pytest.mark.postgres
def test_a_failed_job_analyzes_nothing(books, monkeypatch):
    real = JOBS["greeks"]

    def broken(*args, **kwargs):
        raise RuntimeError("every chunk fails")

    monkeypatch.setitem(JOBS, "greeks", real.__class__(**{**real.__dict__, "run": broken}))
    batch.job_run("market_data", AS_OF)
    with connection.cursor() as cursor:  # a marker an ANALYZE of the empty table would reset
        cursor.execute(
            "UPDATE pg_class SET reltuples = 12345 WHERE relname = %s",
            [PositionGreeks._meta.db_table],
        )
    assert batch.job_run("greeks", AS_OF).status == "failed"
    assert estimated_rows(PositionGreeks) == 12345
    batch.job_analyze("greeks")  # what a job that succeeded does
    assert estimated_rows(PositionGreeks) == 0
