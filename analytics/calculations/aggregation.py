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

import numpy as np
import pandas as pd

GREEKS = ["delta", "gamma", "theta", "vega", "rho"]


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


def by_key(frame: pd.DataFrame, keys: Iterable[str] | pd.Series) -> dict[str, dict]:
    """Exposures and Greeks per group (e.g. underlying); a row may carry one key."""
    grouped = frame.assign(_key=np.asarray(list(keys)))
    return {
        str(key): {"exposures": exposures(group), "greeks": greeks(group)}
        for key, group in grouped.groupby("_key", sort=True)
    }


def by_tags(
    frame: pd.DataFrame, tags: list[set[str]], wanted: list[str], mode: str = "any"
) -> dict:
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
