"""Migration 0014 packs the stored per-position contribution rows into one set of vectors per
book, session, confidence and horizon, keeping every number (history is not lost on upgrade)."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from analytics.contribution_models import PositionContributionSet
from portfolios.tests.factories import PortfolioFactory, stock

BEFORE = [("analytics", "0013_contribution_no_fk_constraint")]
AFTER = [("analytics", "0014_position_contribution_sets")]
DAY = date(2026, 11, 20)


def migrate(targets: list[tuple[str, str]]):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_the_per_position_rows_are_packed_into_vectors():
    book = PortfolioFactory()
    other = PortfolioFactory(owner=book.owner)
    held = [stock(book, "AAPL", "1"), stock(book, "JPM", "-1"), stock(other, "KO", "1")]
    gone = stock(book, "GONE", "1")
    old = migrate(BEFORE)  # only analytics goes back: the portfolios' tables are as they are
    try:
        Row = old.get_model("analytics", "PositionRiskContribution")
        numbers: dict[str, list[float | None]] = {
            "historical_var": [1.5, -0.25, 7.0],
            "parametric_var": [2.0, None, 3.0],
        }
        for i, position in enumerate(held):
            Row.objects.create(
                position_id=position.pk,
                date=DAY,
                confidence=0.99,
                horizon_days=1,
                exposure=100.0 * (i + 1),
                **{name: values[i] for name, values in numbers.items()},
            )
        Row.objects.create(
            position_id=gone.pk, date=DAY, confidence=0.99, horizon_days=1, exposure=1.0
        )
        gone.delete()  # no database foreign key: its row stayed behind
    finally:
        migrate(AFTER)
        migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())  # and any later ones
    sets = {s.portfolio_id: s for s in PositionContributionSet.objects.all()}
    assert set(sets) == {book.pk, other.pk}
    first = sets[book.pk]
    assert (first.date, first.confidence, first.horizon_days) == (DAY, 0.99, 1)
    assert first.ids() == [held[0].pk, held[1].pk]  # the orphan is dropped
    rows = first.rows()
    assert [r.exposure for r in rows] == [100.0, 200.0]
    assert [r.historical_var for r in rows] == [1.5, -0.25]
    assert [r.parametric_var for r in rows] == [2.0, None]  # a null entry: NaN, read as None
    assert first.column("monte_carlo_var") is None  # null in every row: the column is null
    np.testing.assert_array_equal(sets[other.pk].column("historical_var"), [7.0])
