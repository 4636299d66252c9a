"""The rows the portfolio services write in bulk (`sigmasight.db.insert_records`,
`update_records`): NamedTuples whose fields are the model's columns, by attname."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import NamedTuple


class NewPosition(NamedTuple):
    """A `Position` row as an import inserts it."""

    portfolio_id: int
    security_id: int
    symbol: str
    underlying_symbol: str
    position_type: str
    quantity: Decimal
    entry_price: Decimal
    entry_date: date
    option_type: str
    strike: Decimal | None
    expiration: date | None
    multiplier: int
    notes: str
    created_at: object
    updated_at: object


class ChangedPosition(NamedTuple):
    """What an import rewrites of an open lot it finds again (the key last)."""

    security_id: int
    underlying_symbol: str
    position_type: str
    quantity: Decimal
    entry_price: Decimal
    option_type: str
    strike: Decimal | None
    expiration: date | None
    multiplier: int
    notes: str
    updated_at: object
    id: int


class PositionTagRow(NamedTuple):
    position_id: int
    tag_id: int
    created_at: object


class StrategyRow(NamedTuple):
    portfolio_id: int
    name: str
    kind: str
    is_detected: bool
    created_at: object


class StrategyLegRow(NamedTuple):
    """A row of the strategy-position link table."""

    strategy_id: int
    position_id: int
