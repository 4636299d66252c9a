"""A small long/short book with options and a year of synthetic prices, for the modeling tests."""

from __future__ import annotations

import io
from datetime import date
from decimal import Decimal

import pytest
from django.core.management import call_command

from marketdata.calendar import sessions_back
from marketdata.providers.synthetic import SyntheticProvider
from marketdata.services import prices_fetch_and_cache
from portfolios.tests.factories import PortfolioFactory, option, stock

AS_OF = date(2026, 11, 20)
EXPIRY = date(2027, 1, 15)
SERIES = ["SPY", "VTV", "VUG", "MTUM", "QUAL", "SIZE", "USMV", "US10Y", "US3M", "USO", "GLD", "EWG",
          "EEM", "FXI", "VIXY", "HYG", "JETS", "XLK"]  # fmt: skip
STOCKS = ["AAPL", "MSFT", "JPM", "XOM", "NVDA"]


def fetch(symbols: list[str], sessions: int = 270) -> None:
    prices_fetch_and_cache(
        symbols=symbols,
        start=sessions_back(AS_OF, sessions)[0],
        end=AS_OF,
        providers=[SyntheticProvider()],
    )


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
