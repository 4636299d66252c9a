"""How much risk a trade adds or a hedge removes, in a what-if session.

A trade's incremental VaR and ES are the change of the base book's measures when that trade
alone is added to it (the base as the session froze it, none of the session's other trades):
`after(base + trade) - before(base)`, per confidence (one day), for every VaR the batch stores
(historical, parametric, Monte Carlo) and the historical expected shortfall, all by
`modeling.book.risk_of`, the batch's own computation (Monte Carlo on the same seeded draws, so
the base's draws cancel and only the trade moves the number). Positive: the trade adds risk.
`var` and `es` name the primary pair (historical, 95%), as the limits and the workbench read it.

A trade's `contribution` is its Euler component in the after-book (the session's whole book): its
share of the after-book's 95% one-day historical VaR and ES (its P&L on the VaR day, its mean P&L
over the ES tail, on its own closes, as the stored contributions) and its marginal VaR per dollar
of its exposure; null with the reason when the after-book has too little history.

A hedge suggestion's `risk_removed` is the same difference the other way: the measures of the
session's book (base + trades) before the hedges less those after them (positive: the hedge
takes risk away).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from django.conf import settings

from analytics.calculations.book_path import book_path
from analytics.calculations.contributions import scenario_contributions
from analytics.contributions import historical_position_pnl
from analytics.risk_metrics import book_units
from analytics.selectors import closes_panel
from modeling import book as engine
from sigmasight.exceptions import DomainError

MEASURES = ("var_historical", "var_parametric", "var_monte_carlo", "expected_shortfall")
PRIMARY_CONFIDENCE = 0.95


def risk_change(before: Sequence[dict], after: Sequence[dict]) -> list[dict]:
    """after - before for each measure and confidence (None where either is unknown, with the
    reason of the side that could not be measured)."""
    rows = []
    for was, now in zip(before, after, strict=True):
        row: dict = {"confidence": was["confidence"]}
        for name in MEASURES:
            a, b = now.get(name), was.get(name)
            row[name] = None if a is None or b is None else float(a) - float(b)
        error = now.get("error") or was.get("error")
        if error:
            row["error"] = error
        rows.append(row)
    return rows


def _primary(rows: list[dict]) -> dict:
    row = next((r for r in rows if r["confidence"] == PRIMARY_CONFIDENCE), rows[0])
    return {"var": row["var_historical"], "es": row["expected_shortfall"]}


def trade_increments(
    base: engine.Book, before: Sequence[dict], trades: Sequence[engine.Trade], ctx: engine.Context
) -> list[dict]:
    """Each trade's incremental risk against the base book (`before` = the base's `risk_of`)."""
    result = []
    for trade in trades:
        alone = base.plus(engine.trades_book([trade], base, ctx))
        rows = risk_change(before, engine.risk_of(alone, ctx))
        result.append({"trade_id": -trade.key, "incremental": {**_primary(rows), "by": rows}})
    return result


def risk_removed(before: Sequence[dict], after: Sequence[dict]) -> dict:
    """before - after of a hedge, primary pair first (`by`: every measure and confidence)."""
    rows = [
        {k: (-v if k in MEASURES and v is not None else v) for k, v in row.items()}
        for row in risk_change(before, after)
    ]
    return {**_primary(rows), "by": rows}


def trade_contributions(
    after: engine.Book, trades: Sequence[engine.Trade], ctx: engine.Context
) -> dict[int, dict]:
    """Each trade's historical VaR and ES components (95%, one day) in the after-book, by trade
    id."""
    frame = after.frame
    window = settings.SIGMASIGHT_FACTOR_WINDOW
    try:
        closes = closes_panel(sorted(set(frame["symbol"])), ctx.as_of, window + 1, reads=ctx.reads)
        path = book_path(book_units(frame), closes, ctx.cash)
        pnl = historical_position_pnl(frame, closes, path.sessions)
        found = scenario_contributions(
            pnl, exposures=frame["exposure"].to_numpy(dtype=float), confidence=PRIMARY_CONFIDENCE
        )
    except (DomainError, ValueError) as exc:
        why = exc.message if isinstance(exc, DomainError) else str(exc)
        empty = {"var": None, "es": None, "marginal_var": None, "share_of_var": None, "error": why}
        return {-t.key: dict(empty) for t in trades}
    ids = frame["id"].to_numpy()
    result = {}
    for trade in trades:
        rows = np.flatnonzero(ids == trade.key)
        var, es = found.var.components[rows].sum(), found.es.components[rows].sum()
        exposure = float(frame["exposure"].to_numpy(dtype=float)[rows].sum())
        result[-trade.key] = {
            "var": float(var),
            "es": float(es),
            "marginal_var": float(var) / exposure if exposure else None,
            "share_of_var": float(var) / found.var.total if found.var.total else None,
        }
    return result
