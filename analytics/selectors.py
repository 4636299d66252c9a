"""Analytics reads: stored Greeks and summaries, in a fixed number of queries."""

from __future__ import annotations

from datetime import date

from django.db.models import F, Max, Window
from django.db.models.functions import RowNumber

from analytics.models import PositionGreeks
from portfolios.models import Portfolio, Position

FIELDS = ("delta", "gamma", "theta", "vega", "rho", "dollar_delta")


def latest_position_greeks(positions: list[Position]) -> dict[int, dict]:
    """Latest stored Greeks per position (one query), for the positions API. Stocks need no
    query: delta is the quantity, the other Greeks zero."""
    option_ids = [p.id for p in positions if p.option_type]
    rows = (
        PositionGreeks.objects.filter(position_id__in=option_ids)
        .annotate(
            rank=Window(RowNumber(), partition_by=[F("position_id")], order_by=F("date").desc())
        )
        .filter(rank=1)
        .values(
            "position_id", "date", *FIELDS, "implied_volatility", "volatility", "volatility_source"
        )
        if option_ids
        else []
    )
    result: dict[int, dict] = {
        r["position_id"]: {
            "as_of": r["date"],
            **{f: r[f] for f in FIELDS},
            "implied_volatility": r["implied_volatility"],
            "volatility": r["volatility"],
            "source": r["volatility_source"],
        }
        for r in rows
    }
    for p in positions:
        if not p.option_type:
            delta = float(p.quantity) * p.multiplier
            price = float(p.last_price) if p.last_price is not None else None
            result[p.id] = {
                "as_of": p.valued_as_of, "delta": delta, "gamma": 0.0, "theta": 0.0, "vega": 0.0,
                "rho": 0.0, "dollar_delta": delta * price if price is not None else None,
                "implied_volatility": None, "volatility": None, "source": "stock",
            }  # fmt: skip
    return result


def latest_greeks_date(portfolio: Portfolio) -> date | None:
    return PositionGreeks.objects.filter(position__portfolio=portfolio).aggregate(d=Max("date"))[
        "d"
    ]
