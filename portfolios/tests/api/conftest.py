"""The book an upload test writes into."""

from __future__ import annotations

import pytest

from portfolios import services
from portfolios.models import Portfolio, Tag
from portfolios.tests.factories import PortfolioFactory, stock


@pytest.fixture
def portfolio(user) -> Portfolio:
    """A book that already holds a tagged lot in a user strategy, so a write would show."""
    book = PortfolioFactory(owner=user)
    held = stock(book, "IBM", "7", entry_price="180.25", notes="held before")
    hedge = stock(book, "ORCL", "-7", entry_price="110")
    held.tags.add(Tag.objects.create(owner=user, name="core"))
    services.strategy_create(
        portfolio=book, name="IBM/ORCL", kind="pairs", position_ids=[held.pk, hedge.pk]
    )
    services.strategies_refresh(portfolio=book)
    return book
