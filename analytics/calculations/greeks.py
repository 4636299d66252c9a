"""Position Greeks for whole books, through the one options facade
(`marketdata.calculations.options`), in mibian's units: each contract by its exercise style
(Bjerksund-Stensland 2002 for American, Black-Scholes-Merton for European) with its underlying's
continuous dividend yield, for the price, the Greeks and the implied volatility alike.

Volatility choice per option, in order: implied from the option's own close when it solves and
is sane (1%..500%); else the underlying's realized volatility (annualized with 252); else the
default from settings; and when there is no underlying price at all, mock Greeks (the plan's
last resort), always flagged `mock`. Position Greek = per-share Greek x quantity x multiplier;
dollar delta = position delta x underlying price. Expired options (days <= 0) are all zero.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from analytics.calculations.risk import TRADING_DAYS
from marketdata.calculations import black_scholes as bs
from marketdata.calculations import options as engine

SANE_VOL = (0.01, 5.0)
# Per-share mock Greeks (delta, gamma, theta/day, vega/pt, rho/pt) for a long contract; a short
# position flips the signs through its quantity. Only when no underlying price exists.
MOCK_PER_SHARE = {
    "C": (0.5, 0.02, -0.05, 0.15, 0.05),
    "P": (-0.5, 0.02, -0.05, 0.15, -0.05),
}


@dataclass(frozen=True)
class PositionGreeksArrays:
    delta: npt.NDArray[np.float64]
    gamma: npt.NDArray[np.float64]
    theta: npt.NDArray[np.float64]
    vega: npt.NDArray[np.float64]
    rho: npt.NDArray[np.float64]
    dollar_delta: npt.NDArray[np.float64]
    model_price: npt.NDArray[np.float64]
    volatility: npt.NDArray[np.float64]
    implied_volatility: npt.NDArray[np.float64]
    source: npt.NDArray[np.object_]  # "implied" | "realized" | "default" | "mock"
    dividend_yield: npt.NDArray[np.float64]  # the yield used, decimal
    american: npt.NDArray[np.bool_]  # the contract's exercise style
    early_exercise_premium: npt.NDArray[np.float64]  # per share; 0 European, NaN without spot


def realized_volatility(closes: npt.NDArray[np.float64], window: int) -> npt.NDArray[np.float64]:
    """Annualized (x sqrt 252) stdev of the last `window` daily simple returns per column of a
    sessions x symbols close matrix (oldest first); NaN where fewer than window/2 returns exist."""
    closes = np.asarray(closes, dtype=float)
    returns = closes[1:] / closes[:-1] - 1.0
    returns = returns[-window:]
    counts = np.sum(np.isfinite(returns), axis=0)
    with np.errstate(invalid="ignore"):
        vol = (
            np.nanstd(returns, axis=0, ddof=1) * np.sqrt(TRADING_DAYS)
            if len(returns) > 1
            else np.full(closes.shape[1], np.nan)
        )
    return np.where(counts >= max(2, window // 2), vol, np.nan)


def position_greeks(
    *,
    underlying_price: npt.NDArray[np.float64],
    strike: npt.NDArray[np.float64],
    days: npt.NDArray[np.float64],
    rate: npt.NDArray[np.float64] | float,
    is_call: npt.NDArray[np.bool_],
    quantity: npt.NDArray[np.float64],
    multiplier: npt.NDArray[np.float64],
    option_close: npt.NDArray[np.float64],
    realized_vol: npt.NDArray[np.float64],
    default_vol: float,
    dividend_yield: npt.NDArray[np.float64] | float = 0.0,
    american: npt.NDArray[np.bool_] | bool = False,
) -> PositionGreeksArrays:
    """Greeks per position. `dividend_yield` (continuous, decimal) and `american` (the
    contract's exercise style) are per row or one for all; the implied volatility is solved
    under the same model the Greeks use."""
    spot = np.asarray(underlying_price, dtype=float)
    strike = np.asarray(strike, dtype=float)
    years = np.asarray(days, dtype=float) / bs.DAYS_PER_YEAR
    is_call = np.asarray(is_call, dtype=bool)
    units = np.asarray(quantity, dtype=float) * np.asarray(multiplier, dtype=float)
    n = len(spot)
    rate = np.broadcast_to(np.asarray(rate, dtype=float), (n,))
    q = np.broadcast_to(np.asarray(dividend_yield, dtype=float), (n,))
    style = np.broadcast_to(np.asarray(american, dtype=bool), (n,))
    has_spot = np.isfinite(spot) & (spot > 0)
    safe_spot = np.where(has_spot, spot, 1.0)

    implied = np.full(n, np.nan)
    close = np.asarray(option_close, dtype=float)
    can_solve = has_spot & np.isfinite(close) & (close > 0) & (years > 0)
    if can_solve.any():
        solved = engine.implied_volatility(
            close[can_solve],
            safe_spot[can_solve],
            strike[can_solve],
            years[can_solve],
            rate[can_solve],
            is_call[can_solve],
            q[can_solve],
            style[can_solve],
        )
        implied[can_solve] = solved.sigma
    implied_ok = np.isfinite(implied) & (implied >= SANE_VOL[0]) & (implied <= SANE_VOL[1])
    realized = np.asarray(realized_vol, dtype=float)
    realized_ok = np.isfinite(realized) & (realized > 0)
    vol = np.where(implied_ok, implied, np.where(realized_ok, realized, default_vol))
    source = np.where(implied_ok, "implied", np.where(realized_ok, "realized", "default")).astype(
        object
    )

    per_share = engine.greeks(safe_spot, strike, years, rate, vol, is_call, q, style)
    premium = engine.early_exercise_premium(safe_spot, strike, years, rate, vol, is_call, q, style)
    mock = np.array([MOCK_PER_SHARE["C" if c else "P"] for c in is_call]).reshape(n, 5)
    live = years > 0

    def pick(values: npt.NDArray[np.float64], column: int) -> npt.NDArray[np.float64]:
        chosen = np.where(has_spot, values, mock[:, column] if n else values)
        picked: npt.NDArray[np.float64] = np.where(live, chosen, 0.0) * units
        return picked

    delta = pick(per_share.delta, 0)
    source = np.where(has_spot, source, "mock").astype(object)
    return PositionGreeksArrays(
        delta=delta,
        gamma=pick(per_share.gamma, 1),
        theta=pick(per_share.theta, 2),
        vega=pick(per_share.vega, 3),
        rho=pick(per_share.rho, 4),
        dollar_delta=np.where(has_spot, delta * spot, 0.0),
        model_price=np.where(has_spot, per_share.price, np.nan),
        volatility=vol,
        implied_volatility=np.where(implied_ok, implied, np.nan),
        source=source,
        dividend_yield=np.array(q, dtype=float),
        american=np.array(style, dtype=bool),
        early_exercise_premium=np.where(has_spot, np.where(live, premium, 0.0), np.nan),
    )
