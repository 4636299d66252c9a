"""Fixtures of the portfolios tests: a staff client and a book of two portfolios with a tag, an
option, a closed position and both detected and user strategies (the admin tests)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING

import pytest

from marketdata.symbols import build_occ
from portfolios.models import PositionTag, Strategy
from portfolios.services import strategies_refresh
from portfolios.tests.factories import PortfolioFactory, TagFactory, option, stock
from sigmasight.accounts.tests.factories import UserFactory

if TYPE_CHECKING:
    pass


EXP = date(2027, 1, 15)
CALL = build_occ("AAPL", EXP, "C", Decimal("200"))


@pytest.fixture
def staff(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def book() -> dict:
    owner = UserFactory()
    core = PortfolioFactory(owner=owner, name="Core")
    hedge = PortfolioFactory(owner=owner, name="Hedge")
    tech = TagFactory(owner=owner, name="Tech")
    aapl = stock(core, "AAPL", "300", entry_date=date(2023, 6, 1))
    call = option(core, "AAPL", EXP, "C", "250", "-2", entry_date=date(2023, 6, 1))
    msft = stock(core, "MSFT", "10", entry_date=date(2024, 2, 1))
    closed = stock(core, "IBM", "5", closed_at=datetime(2024, 3, 1, tzinfo=UTC))
    PositionTag.objects.create(position=aapl, tag=tech)
    strategies_refresh(portfolio=core)
    mine = Strategy.objects.create(
        portfolio=core, name="Mine", kind=Strategy.Kind.CUSTOM, is_detected=False
    )
    mine.positions.set([aapl, msft])
    return {
        "owner": owner,
        "core": core,
        "hedge": hedge,
        "tech": tech,
        "aapl": aapl,
        "call": call,
        "msft": msft,
        "closed": closed,
        "user_strategy": mine,
        "detected": Strategy.objects.get(portfolio=core, kind="covered_call"),
    }
