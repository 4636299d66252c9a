"""A small long/short book with options and a year of synthetic prices, for the modeling tests."""

from __future__ import annotations

import io
from decimal import Decimal

import pytest
from django.core.management import call_command

from analytics.tests.helpers import SERIES
from modeling.tests.helpers import EXPIRY, STOCKS, fetch
from portfolios.tests.factories import PortfolioFactory, option, stock


@pytest.fixture
def market(db) -> None:
    """A year of prices for the stocks, factor proxies and rates, and the stress library."""
    fetch([*STOCKS, *SERIES])
    call_command("load_stress_scenarios", stdout=io.StringIO())


@pytest.fixture
def portfolio(user, market):
    """Long AAPL and JPM, short MSFT, short AAPL calls, long MSFT puts; option histories cached."""
    book = PortfolioFactory(owner=user, cash=Decimal("250000"))
    stock(book, "AAPL", "300")
    stock(book, "MSFT", "-120")
    stock(book, "JPM", "400")
    calls = option(book, "AAPL", EXPIRY, "C", "250", "-2")
    puts = option(book, "MSFT", EXPIRY, "P", "400", "3")
    fetch([calls.symbol, puts.symbol])
    return book
