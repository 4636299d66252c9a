"""The demo's corporate action: a quarterly cash dividend of its dividend names (JPM, XOM), with
an ex-date a few sessions before the demo date, recorded and applied the way the batch applies
any action on its ex-date (`portfolios.corporate_actions`): the holders' cash, that day's P&L in
the rebuilt snapshots, the audit trail and the admin's applied actions all show it.

Only on the synthetic market (its yields are the model's, universe.DIVIDEND_YIELDS); with a real
source the batch fetches the real actions. The amount is a quarter of the yield on the close of
the session before the ex-date, rounded to the cent; the source says "synthetic".
"""

from __future__ import annotations

from datetime import date
from decimal import ROUND_HALF_UP, Decimal

import pandas as pd

from marketdata.corporate_actions import ACTION_COLUMNS, corporate_actions_upsert, ex_date_start
from marketdata.models import DailyPrice
from marketdata.providers.synthetic import model
from portfolios.corporate_actions import corporate_actions_apply
from portfolios.models import Position

DIVIDEND_NAMES = ("JPM", "XOM")
SESSIONS_BACK = 5  # the ex-date: this many sessions before the demo date


def demo_dividends(portfolio_ids: list[int], sessions: list[date]) -> int:
    """Record and apply the demo dividends; returns the positions they were applied to now (0
    when already applied: re-seeding changes nothing)."""
    ex_date, before = sessions[-1 - SESSIONS_BACK], sessions[-2 - SESSIONS_BACK]
    closes = dict(
        DailyPrice.objects.filter(security__symbol__in=DIVIDEND_NAMES, date=before).values_list(
            "security__symbol", "close"
        )
    )
    rows = [
        {
            "symbol": symbol,
            "kind": "cash_dividend",
            "ex_date": ex_date,
            "pay_date": None,
            "split_to": None,
            "split_from": None,
            "cash_amount": (
                Decimal(closes[symbol]) * Decimal(str(model(symbol).dividend_yield)) / 4
            ).quantize(Decimal("0.01"), ROUND_HALF_UP),
        }
        for symbol in DIVIDEND_NAMES
        if symbol in closes
    ]
    if not rows:
        return 0
    corporate_actions_upsert(pd.DataFrame(rows, columns=ACTION_COLUMNS), source="synthetic")
    # The demo's lots stand for positions entered on their entry dates (they were created just
    # now): an action applies to what was held before its ex-date.
    lots = list(Position.objects.filter(portfolio_id__in=portfolio_ids, entry_date__lt=ex_date))
    for lot in lots:
        lot.created_at = ex_date_start(lot.entry_date)
    Position.objects.bulk_update(lots, ["created_at"])
    return corporate_actions_apply(as_of=ex_date, portfolio_ids=portfolio_ids).applied
