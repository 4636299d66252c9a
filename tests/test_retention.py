"""Bounded storage: the evening's retention job keeps SIGMASIGHT_POSITION_RESULTS_RETENTION
sessions of position-level results and nothing else is touched."""

from __future__ import annotations

from datetime import date

import pytest

from analytics import batch
from analytics.models import PortfolioSnapshot, RiskMetricSnapshot
from analytics.retention import POSITION_RESULTS, of_portfolios, retention_cutoff
from marketdata import calendar

pytestmark = pytest.mark.django_db

AS_OF = date(2026, 11, 20)


def _history(sessions: list[date]) -> None:
    """The session's position-level rows copied to earlier sessions (as a year of evenings
    would have left them)."""
    for model in POSITION_RESULTS:
        rows = list(model._default_manager.filter(date=AS_OF))
        assert rows, model.__name__
        fields = [f.attname for f in model._meta.concrete_fields if not f.primary_key]
        copies = [
            model(**{**{name: getattr(row, name) for name in fields}, "date": session})
            for session in sessions
            for row in rows
        ]
        model._default_manager.bulk_create(copies)


def _dates(model) -> list[date]:
    return sorted(set(model._default_manager.values_list("date", flat=True)))


def test_the_retention_job_keeps_the_last_sessions_of_position_results(books, settings):
    batch.run_daily_batch(AS_OF, jobs=["market_data", "greeks", "factors", "market_risk"])
    earlier = calendar.sessions_back(AS_OF, 6)[:-1]  # the five sessions before
    _history(earlier)
    portfolio_level = (RiskMetricSnapshot.objects.count(), PortfolioSnapshot.objects.count())
    settings.SIGMASIGHT_POSITION_RESULTS_RETENTION = 3
    cutoff = retention_cutoff(AS_OF)
    assert cutoff == calendar.sessions_back(AS_OF, 3)[0]

    job = batch.job_run("retention", AS_OF)
    assert job.status == "succeeded", job.error
    for model in POSITION_RESULTS:
        assert _dates(model) == [d for d in [*earlier, AS_OF] if d >= cutoff], model.__name__
    per_session = sum(m._default_manager.filter(date=AS_OF).count() for m in POSITION_RESULTS)
    assert job.counts["rows_pruned"] == 3 * per_session  # three of the five earlier sessions
    assert (
        RiskMetricSnapshot.objects.count(),
        PortfolioSnapshot.objects.count(),
    ) == portfolio_level
    # Run again: nothing left to prune.
    assert batch.job_run("retention", AS_OF).counts["rows_pruned"] == 0


def test_the_retention_prunes_only_the_chunks_portfolios(books, settings):
    from analytics.retention import position_results_prune

    first, second = books
    batch.run_daily_batch(AS_OF, jobs=["market_data", "greeks", "factors", "market_risk"])
    _history(calendar.sessions_back(AS_OF, 6)[:-1])
    settings.SIGMASIGHT_POSITION_RESULTS_RETENTION = 2

    def theirs() -> dict[str, int]:
        return {m.__name__: of_portfolios(m, [second.pk]).count() for m in POSITION_RESULTS}

    before = theirs()
    assert sum(before.values()) > 0
    pruned = position_results_prune(as_of=AS_OF, portfolio_ids=[first.pk])
    assert sum(pruned.rows.values()) > 0
    assert theirs() == before  # the other book's rows are untouched


def test_a_calendar_shorter_than_the_retention_prunes_nothing(settings):
    from analytics.retention import position_results_prune

    settings.SIGMASIGHT_POSITION_RESULTS_RETENTION = 10
    assert retention_cutoff(date(1990, 1, 5)) is None
    assert position_results_prune(as_of=date(1990, 1, 5), portfolio_ids=[1]).rows == {}
