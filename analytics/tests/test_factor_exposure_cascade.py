"""The factor exposures' foreign keys have no database constraint (analytics.models): deleting a
position, a portfolio or a factor definition through Django still deletes their rows, on both
databases, and nothing else."""

from __future__ import annotations

from datetime import date

import pytest

from analytics.models import FactorDefinition, PositionFactorExposure
from portfolios.tests.factories import PortfolioFactory, stock

pytestmark = pytest.mark.django_db

DAY = date(2026, 11, 20)


def _exposures(position, factors):
    PositionFactorExposure.objects.bulk_create(
        PositionFactorExposure(
            position=position,
            factor=factor,
            date=DAY,
            beta=1.0,
            raw_beta=1.0,
            dollar_exposure=100.0,
            r_squared=0.5,
            observations=60,
        )
        for factor in factors
    )


def test_deleting_a_position_portfolio_or_factor_deletes_its_exposures_only(user):
    first, second = (
        FactorDefinition.objects.create(name="F1"),
        FactorDefinition.objects.create(name="F2"),
    )
    book, other = PortfolioFactory(owner=user), PortfolioFactory(owner=user)
    kept, sold = stock(book, "AAPL", 10), stock(book, "MSFT", 5)
    elsewhere = stock(other, "KO", 7)
    for position in (kept, sold, elsewhere):
        _exposures(position, [first, second])

    sold.delete()
    assert not PositionFactorExposure.objects.filter(position_id=sold.pk).exists()
    assert PositionFactorExposure.objects.count() == 4

    first.delete()
    assert set(PositionFactorExposure.objects.values_list("factor_id", flat=True)) == {second.pk}
    assert PositionFactorExposure.objects.count() == 2

    book.delete()
    assert list(PositionFactorExposure.objects.values_list("position_id", flat=True)) == [
        elsewhere.pk
    ]
