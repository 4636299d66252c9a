"""The value path of today's book over past closes, and the returns every return-based measure
uses (DESIGN.md, "Returns of a book").

The book is today's holdings: units (quantity x multiplier, signed) per symbol and the cash. Its
pro-forma value at a past session t is V_t = cash + sum_s units_s x close_{s,t}; its P&L from one
session to the next is V_t - V_{t-1}; its daily return is r_t = P&L_t / V_{t-1}. Holding only an
index therefore gives the index's own returns (beta 1, the index's drawdown), whatever today's
price is.

Sessions: only the sessions where every symbol of the book has a close count ("complete"); a
session a series lacks is skipped, so the next return spans the gap (close_t / close_{t-k} for a
one-symbol book) and no return is invented for the missing day.

When the value is not positive at some session of the window (a short book without enough cash:
its value path is negative or crosses zero), a return over it has no meaning; every return then
divides by the book's gross exposure G_{t-1} = sum_s |units_s| x close_{s,t-1} instead (one
base for the whole series, never a mix), and the path says `normalized_by = "gross"`. The
drawdown is measured on the compounded returns with wealth floored at zero: a day losing more
than the base (possible only on the gross base) is ruin, a drawdown of -100%, never below.

Units: values and P&L in the book's currency; returns decimal (0.01 = 1%).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import numpy.typing as npt
import pandas as pd


@dataclass(frozen=True)
class BookPath:
    sessions: list[date]  # complete sessions, oldest first (len n)
    value: npt.NDArray[np.float64]  # (n,) V_t, cash included
    gross: npt.NDArray[np.float64]  # (n,) gross exposure, sum |units| x close
    pnl: npt.NDArray[np.float64]  # (n - 1,) V_t - V_{t-1} between consecutive complete sessions
    returns: npt.NDArray[np.float64]  # (n - 1,) pnl / base_{t-1}
    normalized_by: str  # "equity" (base = V) or "gross" (base = G)
    coverage: dict[str, int]  # symbol -> sessions with a close in the window

    @property
    def pnl_sessions(self) -> list[date]:
        """The session each P&L and return belongs to (the later end of its span)."""
        return self.sessions[1:]

    def horizon_pnl(self, days: int) -> npt.NDArray[np.float64]:
        """Overlapping `days`-session P&L of the book: V_t - V_{t-days} for every complete
        session t with one `days` complete sessions before it (n - days values)."""
        if days < 1:
            raise ValueError(f"days must be at least 1, got {days}")
        return self.value[days:] - self.value[:-days] if len(self.value) > days else np.zeros(0)


def book_path(units: pd.Series, closes: pd.DataFrame, cash: float) -> BookPath:
    """The value path of `units` (symbol -> signed units, one entry per symbol) over `closes`
    (sessions x symbols, a superset of the book's symbols; NaN where a series has no close),
    plus `cash` at every session."""
    units = units.astype(float)
    book = closes.reindex(columns=units.index).astype(float)
    coverage = {str(s): int(n) for s, n in book.notna().sum(axis=0).items()}
    complete = book.notna().all(axis=1).to_numpy() if len(units) else np.ones(len(book), bool)
    prices = book.to_numpy()[complete]
    weights = units.to_numpy()
    value = float(cash) + prices @ weights
    gross = prices @ np.abs(weights)
    pnl = np.diff(value)
    if len(value) > 1 and (value[:-1] > 0).all():
        normalized_by, base = "equity", value[:-1]
    else:
        normalized_by, base = "gross", gross[:-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        returns = np.where(base > 0, pnl / np.where(base > 0, base, 1.0), np.nan)
    return BookPath(
        sessions=list(book.index[complete]),
        value=value,
        gross=gross,
        pnl=pnl,
        returns=returns,
        normalized_by=normalized_by,
        coverage=coverage,
    )
