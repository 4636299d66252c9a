"""An evening in one process (`run_daily_batch`): the read-only jobs after the Greeks share one
read cache, so each chunk's valued book is read once for all of them, and every number is the
one each job computes reading for itself."""

from __future__ import annotations

from datetime import date

import pytest

from analytics import batch, selectors
from analytics.models import (
    PortfolioAttribution,
    PortfolioSnapshot,
    PositionFactorExposure,
    RiskMetricSnapshot,
)
from stress.models import StressTestResult

pytestmark = pytest.mark.django_db

AS_OF = date(2026, 11, 20)


def stored() -> dict[str, list]:
    """What the read-only jobs wrote, in a stable order."""
    return {
        "exposures": sorted(
            PositionFactorExposure.objects.filter(date=AS_OF).values_list(
                "position_id", "factor__name", "beta", "dollar_exposure"
            )
        ),
        "metrics": sorted(
            RiskMetricSnapshot.objects.filter(date=AS_OF).values_list(
                "portfolio_id", "confidence", "var_historical", "var_parametric", "var_monte_carlo"
            )
        ),
        "attribution": sorted(
            PortfolioAttribution.objects.filter(date=AS_OF).values_list(
                "portfolio_id", "total_pnl", "factor_pnl", "specific_pnl"
            )
        ),
        "snapshots": sorted(
            PortfolioSnapshot.objects.filter(date=AS_OF).values_list(
                "portfolio_id", "equity", "gross_exposure", "daily_pnl"
            )
        ),
        "stress": sorted(
            StressTestResult.objects.filter(date=AS_OF).values_list(
                "portfolio_id", "scenario_id", "direct_pnl", "correlated_pnl"
            )
        ),
    }


def counted_reads(monkeypatch, name: str) -> list[tuple[tuple[int, ...], date]]:
    """Every call of the selectors' reader `name(ids, as_of)` from now on, as (sorted ids,
    session), the reads still done."""
    calls: list[tuple[tuple[int, ...], date]] = []
    real = getattr(selectors, name)

    def counted(ids, as_of):
        calls.append((tuple(sorted(ids)), as_of))
        return real(ids, as_of)

    monkeypatch.setattr(selectors, name, counted)
    return calls


def test_the_evening_reads_each_book_once_and_computes_what_each_job_does_alone(books, monkeypatch):
    reads = counted_reads(monkeypatch, "_book_frame")
    runs = batch.run_daily_batch(AS_OF)
    assert all(r.status == "succeeded" for r in runs), [(r.name, r.error) for r in runs]
    together = stored()
    assert all(together.values()), {k: len(v) for k, v in together.items()}
    shared = [r for r in reads if r[1] == AS_OF]
    # Each chunk's book of the session read at most twice: by the Greeks job (which writes what
    # it reads) and once for every job after it.
    chunks = {r[0] for r in shared}
    assert len(shared) <= 2 * len(chunks)

    # Each job again on its own, reading for itself: the same numbers.
    reads.clear()
    for name in batch.daily():
        assert batch.job_run(name, AS_OF).status == "succeeded", name
    assert len([r for r in reads if r[1] == AS_OF]) > len(shared)
    alone = stored()
    for key, rows in together.items():
        assert [r[:2] for r in alone[key]] == [r[:2] for r in rows], key
        flat = [v for r in rows for v in r[2:] if v is not None]
        assert [v for r in alone[key] for v in r[2:] if v is not None] == pytest.approx(
            flat, rel=1e-12, abs=1e-9
        ), key


def test_jobs_that_write_their_inputs_never_share_a_read_cache():
    names = batch.daily()
    caches = batch.evening_reads(names)
    for name, cache in zip(names, caches, strict=True):
        assert (cache is None) == batch.JOBS[name].writes_inputs, name
    after_greeks = [
        c for n, c in zip(names, caches, strict=True) if names.index(n) > names.index("greeks")
    ]
    assert len({id(c) for c in after_greeks}) == 1  # one cache for all of them
    # A job that writes inputs between two read-only ones starts a new cache after it.
    mixed = batch.evening_reads(["factors", "greeks", "snapshots"])
    assert mixed[0] is not None and mixed[1] is None and mixed[2] is not None
    assert mixed[0] is not mixed[2]


def test_the_sessions_factor_exposures_are_read_once_per_chunk(books, monkeypatch):
    """Market risk, its scenarios and stress read a chunk's stored factor exposures of the
    session from the shared cache: one read per chunk (the evening's numbers are checked
    against each job alone above)."""
    calls = counted_reads(monkeypatch, "session_factor_rows")
    runs = batch.run_daily_batch(AS_OF)
    assert all(r.status == "succeeded" for r in runs), [(r.name, r.error) for r in runs]
    session = [c for c in calls if c[1] == AS_OF]
    assert session and len(session) == len(set(session))


def test_the_factor_job_makes_the_cache_forget_the_exposures_it_read(books):
    """Rows read before the factor job wrote the session's are not served after it."""
    from analytics.risk_services import factors_compute
    from portfolios.models import Position

    batch.run_daily_batch(AS_OF, jobs=[n for n in batch.daily() if n in ("market_data", "greeks")])
    reads = selectors.ReadCache()
    ids = list(Position.objects.filter(closed_at__isnull=True).values_list("id", flat=True))
    assert reads.factor_rows(ids, AS_OF).empty  # nothing computed for the session yet
    portfolio_ids = [p.pk for p in books]
    assert factors_compute(as_of=AS_OF, portfolio_ids=portfolio_ids, reads=reads).written
    fresh = reads.factor_rows(ids, AS_OF)
    assert len(fresh) == PositionFactorExposure.objects.filter(date=AS_OF).count() > 0
