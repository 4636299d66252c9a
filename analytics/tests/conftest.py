"""The analytics tests' book: stocks long and short and options (one expired at AS_OF) with 80
sessions of synthetic prices. A module with a book of its own defines its own `book` fixture.
The batch tests' two books are in the root conftest.py."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from analytics.tests.helpers import AS_OF, EXP
from marketdata.calendar import sessions_back
from marketdata.providers.synthetic import SyntheticProvider
from marketdata.services import prices_fetch_and_cache
from portfolios.tests.factories import PortfolioFactory, option, stock


@pytest.fixture
def book(user):
    portfolio = PortfolioFactory(owner=user, cash=Decimal("50000.00"))
    positions = {
        "aapl": stock(portfolio, "AAPL", "300", entry_price="400"),
        "short": stock(portfolio, "MSFT", "-100", entry_price="500"),
        "call": option(portfolio, "AAPL", EXP, "C", "550", "-2", entry_price="20"),
        "put": option(portfolio, "AAPL", EXP, "P", "500", "3", entry_price="15"),
        "expired": option(portfolio, "AAPL", date(2026, 11, 20), "C", "500", "1"),
    }
    symbols = sorted({p.symbol for p in positions.values()} | {"AAPL", "MSFT", "US3M"})
    start = sessions_back(AS_OF, 80)[0]
    prices_fetch_and_cache(symbols=symbols, start=start, end=AS_OF, providers=[SyntheticProvider()])
    return {"portfolio": portfolio, **positions}
