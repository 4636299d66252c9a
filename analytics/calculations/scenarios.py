"""Market and rate scenarios on whole books, and how well predictions matched outcomes.

Market move m (decimal, -0.01 = market down 1%): a stock's P&L is exposure x market beta x m; an
option's underlying moves by its own market beta x m and the option is revalued at the shocked
price by its contract's style (`revaluation.revalue`: Black-Scholes-Merton with its dividend
yield, or Bjerksund-Stensland 2002 when American) with its volatility, yield, time and rate
unchanged (full revaluation). The delta-only P&L beside it is dollar delta x beta x m, the
delta of the same model (`marketdata.calculations.options.greeks`), so the difference is the
convexity the delta approximation misses. Rate move (decimal yield change, 0.005 = +50bp):
P&L = value x IR beta x move (IR beta = slope of daily returns on daily yield changes). P&L in
currency.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from analytics.calculations.revaluation import ChangeUnder, OptionLegs, change_under
from marketdata.calculations import options as pricing


@dataclass(frozen=True)
class ScenarioPnl:
    moves: npt.NDArray[np.float64]
    full: npt.NDArray[np.float64]  # options fully revalued
    delta_only: npt.NDArray[np.float64]


def market_scenarios(
    moves: npt.NDArray[np.float64],
    *,
    stock_exposure: npt.NDArray[np.float64],
    stock_beta: npt.NDArray[np.float64],
    options: OptionLegs,
    option_beta: npt.NDArray[np.float64],
    change: ChangeUnder = change_under,
) -> ScenarioPnl:
    """P&L (currency) per market move (decimal) of stocks (exposure x beta x move) and option
    legs (their underlying's market beta `option_beta`, per leg; NaN = no beta, contributes
    nothing), fully revalued (`revaluation.revalue`, through `change`: a memo shared by books
    holding the same contracts) and delta-only."""
    moves = np.asarray(moves, dtype=float)
    stock_beta = np.nan_to_num(np.asarray(stock_beta, dtype=float))
    linear = np.asarray(stock_exposure, dtype=float) @ stock_beta * moves
    beta = np.nan_to_num(np.asarray(option_beta, dtype=float))
    delta = pricing.greeks(
        options.spot,
        options.strike,
        options.years,
        options.rate,
        options.volatility,
        options.is_call,
        options.dividend_yield,
        options.american,
    ).delta
    # (moves, options): each option's underlying moves by its own beta times the market move.
    per_share = change(options, beta[:, None], moves[:, None])
    full = linear + (per_share * options.units).sum(axis=1)
    dollar_delta = delta * options.units * options.spot
    delta_only = linear + (dollar_delta * beta)[None, :].sum(axis=1) * moves
    return ScenarioPnl(moves=moves, full=full, delta_only=delta_only)


def rate_scenarios(
    moves: npt.NDArray[np.float64],
    *,
    values: npt.NDArray[np.float64],
    ir_betas: npt.NDArray[np.float64],
) -> npt.NDArray[np.float64]:
    """P&L per yield move; positions without an IR beta contribute nothing."""
    weighted: float = np.asarray(values, dtype=float) @ np.nan_to_num(
        np.asarray(ir_betas, dtype=float)
    )
    return weighted * np.asarray(moves, dtype=float)


def accuracy(
    predicted: npt.NDArray[np.float64], realized: npt.NDArray[np.float64]
) -> dict[str, float | int | None]:
    """RMSE (currency), Pearson correlation and hit rate (share of days whose signs agree)."""
    predicted, realized = np.asarray(predicted, dtype=float), np.asarray(realized, dtype=float)
    keep = np.isfinite(predicted) & np.isfinite(realized)
    p, r = predicted[keep], realized[keep]
    n = int(keep.sum())
    if n < 2:
        return {"rmse": None, "correlation": None, "hit_rate": None, "observations": n}
    correlation = float(np.corrcoef(p, r)[0, 1]) if p.std() > 0 and r.std() > 0 else None
    return {
        "rmse": float(np.sqrt(np.mean((p - r) ** 2))),
        "correlation": correlation,
        "hit_rate": float(np.mean(np.sign(p) == np.sign(r))),
        "observations": n,
    }
