from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import factory

from marketdata.services import securities_ensure
from portfolios.models import Portfolio, Position, Tag
from sigmasight.accounts.tests.factories import ModelFactory, UserFactory


class PortfolioFactory(ModelFactory[Portfolio]):
    class Meta:
        model = Portfolio

    owner = factory.SubFactory(UserFactory)
    name = factory.Sequence(lambda n: f"Portfolio {n}")
    cash = Decimal("100000.00")


class TagFactory(ModelFactory[Tag]):
    class Meta:
        model = Tag

    owner = factory.SubFactory(UserFactory)
    name = factory.Sequence(lambda n: f"tag-{n}")


def stock(
    portfolio: Portfolio, symbol: str, quantity: str | int | Decimal, **extra: Any
) -> Position:
    """A stock lot stored the way the services store it."""
    security_id = securities_ensure([symbol])[symbol]
    quantity = Decimal(quantity)
    return Position.objects.create(
        portfolio=portfolio,
        security_id=security_id,
        symbol=symbol,
        underlying_symbol=symbol,
        position_type="LONG" if quantity > 0 else "SHORT",
        quantity=quantity,
        entry_price=Decimal(str(extra.pop("entry_price", "100"))),
        entry_date=extra.pop("entry_date", date(2024, 1, 2)),
        **extra,
    )


def option(
    portfolio: Portfolio,
    root: str,
    expiration: date,
    option_type: str,
    strike: str,
    contracts: str | int | Decimal,
    **extra: Any,
) -> Position:
    from marketdata.symbols import build_occ

    symbol = build_occ(root, expiration, option_type, Decimal(strike))
    security_id = securities_ensure([symbol])[symbol]
    contracts = Decimal(contracts)
    return Position.objects.create(
        portfolio=portfolio,
        security_id=security_id,
        symbol=symbol,
        underlying_symbol=root,
        position_type=("L" if contracts > 0 else "S") + option_type,
        quantity=contracts,
        entry_price=Decimal(str(extra.pop("entry_price", "5"))),
        entry_date=extra.pop("entry_date", date(2024, 1, 2)),
        option_type=option_type,
        strike=Decimal(strike),
        expiration=expiration,
        multiplier=100,
        **extra,
    )
