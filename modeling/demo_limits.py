"""The demo's risk limits: each demo book gets the limits a risk manager would set (VaR, gross
leverage, single-name concentration, days to liquidate, a stress loss), and the first book a
gross-exposure cap set below its book on the demo date, so the evening's `limits` job opens a
breach and the `alerts` job sends its owner a digest (console email in development).

The cap is 90% of the book's stock gross exposure at the demo date's closes: its gross (stocks
and options) is at least that, so the breach does not depend on option prices. Created before
the batch runs; a book that already has limits keeps them (re-seeding changes nothing).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from marketdata.services import current_prices
from modeling.models import Limit
from portfolios.models import Portfolio
from stress.models import StressScenario

BREACHED_SHARE = Decimal("0.9")  # the demo cap, as a share of the first book's stock gross


def _standing(scenario: str | None) -> list[dict]:
    """The limits every demo book has (levels in their unit: decimals of equity, days...)."""
    limits = [
        {
            "name": "1-day 99% historical VaR",
            "measure": "var",
            "params": {"method": "historical", "confidence": 0.99, "horizon_days": 1},
            "unit": "share_of_equity",
            "warning": 0.04,
            "hard": 0.06,
        },
        {
            "name": "Gross leverage",
            "measure": "gross_exposure",
            "unit": "share_of_equity",
            "warning": 2.0,
            "hard": 3.0,
        },
        {
            "name": "Largest single name",
            "measure": "name_concentration",
            "unit": "number",
            "warning": 0.25,
            "hard": 0.35,
        },
        {
            "name": "Days to liquidate",
            "measure": "days_to_liquidate",
            "unit": "days",
            "warning": 3.0,
            "hard": 5.0,
        },
    ]
    if scenario is not None:
        limits.append(
            {
                "name": f"Stress loss: {scenario}",
                "measure": "stress_loss",
                "params": {"scenario": scenario},
                "unit": "share_of_equity",
                "warning": 0.20,
                "hard": 0.30,
            }
        )
    return limits


def _stock_gross(portfolio: Portfolio, as_of: date) -> Decimal:
    stocks = list(
        portfolio.positions.filter(closed_at__isnull=True, option_type="").values_list(
            "symbol", "quantity"
        )
    )
    prices = current_prices([symbol for symbol, _ in stocks], as_of=as_of)
    return sum(
        (abs(quantity) * prices[symbol].price for symbol, quantity in stocks if symbol in prices),
        Decimal(0),
    )


def demo_limits(portfolio_ids: list[int], as_of: date) -> str:
    """Create the demo books' limits where a book has none; returns what it did, one line."""
    scenario = (
        StressScenario.objects.filter(is_active=True)
        .order_by("id")
        .values_list("name", flat=True)
        .first()
    )
    made = 0
    books = Portfolio.objects.filter(pk__in=portfolio_ids).order_by("id")
    for index, portfolio in enumerate(books):
        if Limit.objects.filter(portfolio=portfolio).exists():
            continue
        rows = _standing(scenario)
        if index == 0:
            cap = float((BREACHED_SHARE * _stock_gross(portfolio, as_of)).quantize(Decimal(1)))
            rows.append(
                {
                    "name": "Gross exposure cap (demo: set below today's book)",
                    "measure": "gross_exposure",
                    "unit": "money",
                    "warning": round(cap * 0.9),
                    "hard": cap,
                }
            )
        Limit.objects.bulk_create(
            Limit(owner_id=portfolio.owner_id, portfolio=portfolio, bound="max", **row)
            for row in rows
        )
        made += len(rows)
    return f"Limits: {made} created" + (
        " (one set below a book to show a breach)." if made else "."
    )
