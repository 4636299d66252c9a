"""Portfolio aggregation on whole books (pandas frames in, plain numbers out).

Input frame, one row per position: `exposure`, `market_value` (currency), `is_option` (bool),
`quantity`, `multiplier`, `underlying_price`, and position-level Greeks `delta` (share
equivalents: a stock's delta is its quantity), `gamma`, `theta` (per calendar day), `vega` (per
vol point), `rho` (per rate point). Rows with NaN exposure were not valued and are left out of the
exposure sums (and counted in `unvalued`).

Signs: `short` is the (negative) sum of negative exposures, so gross = long + |short| and
net = long + short. Counts go by the sign of exposure (the sign of the quantity). `notional` is
sum |qty| x multiplier x underlying price: for options the underlying's value the contracts
control. `dollar_delta` (= delta-adjusted exposure) is sum delta x underlying price.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypedDict

import numpy as np
import numpy.typing as npt
import pandas as pd

GREEKS = ["delta", "gamma", "theta", "vega", "rho"]


class GroupAggregate(TypedDict):
    exposures: dict[str, float]
    greeks: dict[str, float]


class TagAggregate(GroupAggregate):
    positions: int


@dataclass(frozen=True)
class ReturnBase:
    """What a book's returns and P&L percentages divide by (DESIGN.md)."""

    amount: float  # currency
    normalized_by: str  # "equity" or "gross" (the API's `normalized_by`)


def return_base(equity: float, gross: float) -> ReturnBase:
    """Equity when it is positive, else gross exposure (both in currency); when that is 0 too
    (nothing valued, no positive equity), 1, so a P&L percentage is 0 rather than a division
    error. Callers that must not divide by that 1 check `gross` themselves."""
    if equity > 0:
        return ReturnBase(equity, "equity")
    return ReturnBase(gross or 1.0, "gross")


def book_return_base(cash: float, exposure: npt.NDArray[np.float64] | pd.Series) -> ReturnBase:
    """`return_base` of a book: equity = cash + the sum of signed exposures, gross = the sum of
    their absolute values (currency; unvalued, NaN, exposures left out)."""
    equity = float(cash) + float(np.nansum(exposure))
    return return_base(equity, float(np.nansum(np.abs(exposure))))


def _sum(series: pd.Series) -> float:
    return float(series.sum()) if len(series) else 0.0


def exposures(frame: pd.DataFrame) -> dict[str, float | int]:
    valued = frame[frame["exposure"].notna()]
    exposure = valued["exposure"]
    options = valued[valued["is_option"]]
    stocks = valued[~valued["is_option"]]
    notional = (
        valued["quantity"].abs() * valued["multiplier"] * valued["underlying_price"]
    ).dropna()
    return {
        "gross": _sum(exposure.abs()),
        "net": _sum(exposure),
        "long": _sum(exposure[exposure > 0]),
        "short": _sum(exposure[exposure < 0]),
        "long_count": int((exposure > 0).sum()),
        "short_count": int((exposure < 0).sum()),
        "options": _sum(options["exposure"].abs()),
        "stock": _sum(stocks["exposure"].abs()),
        "notional": _sum(notional),
        "unvalued": int(frame["exposure"].isna().sum()),
    }


def greeks(frame: pd.DataFrame) -> dict[str, float]:
    """Sums of position Greeks plus dollar delta; positions without Greeks are skipped."""
    result = {name: _sum(frame[name].dropna()) for name in GREEKS}
    result["dollar_delta"] = _sum((frame["delta"] * frame["underlying_price"]).dropna())
    return result


def by_key(frame: pd.DataFrame, keys: Iterable[str] | pd.Series) -> dict[str, GroupAggregate]:
    """Exposures and Greeks per group (e.g. underlying); a row may carry one key."""
    grouped = frame.assign(_key=np.asarray(list(keys)))
    return {
        str(key): {"exposures": exposures(group), "greeks": greeks(group)}
        for key, group in grouped.groupby("_key", sort=True)
    }


def by_tags(
    frame: pd.DataFrame, tags: list[set[str]], wanted: list[str], mode: str = "any"
) -> TagAggregate:
    """Aggregate the positions carrying any (or all) of `wanted` tags."""
    wanted_set = {t.lower() for t in wanted}
    lowered = [{t.lower() for t in row} for row in tags]
    if mode == "all":
        mask = np.array([wanted_set <= row for row in lowered], dtype=bool)
    else:
        mask = np.array([bool(wanted_set & row) for row in lowered], dtype=bool)
    selected = frame[mask] if len(frame) else frame
    return {
        "exposures": exposures(selected),
        "greeks": greeks(selected),
        "positions": int(mask.sum()),
    }
