"""Position Greeks for whole books, on the one Black-Scholes engine
(`marketdata.calculations.black_scholes`), in mibian's units.

Volatility choice per option, in order: implied from the option's own close when it solves and
is sane (1%..500%); else the underlying's realized volatility (annualized with 252); else the
default from settings; and when there is no underlying price at all, mock Greeks (the plan's
last resort), always flagged `mock`. Position Greek = per-share Greek x quantity x multiplier;
dollar delta = position delta x underlying price. Expired options (days <= 0) are all zero.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from marketdata.calculations import black_scholes as bs

SANE_VOL = (0.01, 5.0)
# Per-share mock Greeks (delta, gamma, theta/day, vega/pt, rho/pt) for a long contract; a short
# position flips the signs through its quantity. Only when no underlying price exists.
MOCK_PER_SHARE = {
    "C": (0.5, 0.02, -0.05, 0.15, 0.05),
    "P": (-0.5, 0.02, -0.05, 0.15, -0.05),
}


@dataclass(frozen=True)
class PositionGreeksArrays:
    delta: np.ndarray
    gamma: np.ndarray
    theta: np.ndarray
    vega: np.ndarray
    rho: np.ndarray
    dollar_delta: np.ndarray
    model_price: np.ndarray
    volatility: np.ndarray
    implied_volatility: np.ndarray
    source: np.ndarray  # "implied" | "realized" | "default" | "mock"


def realized_volatility(closes: np.ndarray, window: int) -> np.ndarray:
    """Annualized (x sqrt 252) stdev of the last `window` daily simple returns per column of a
    sessions x symbols close matrix (oldest first); NaN where fewer than window/2 returns exist."""
    closes = np.asarray(closes, dtype=float)
    returns = closes[1:] / closes[:-1] - 1.0
    returns = returns[-window:]
    counts = np.sum(np.isfinite(returns), axis=0)
    with np.errstate(invalid="ignore"):
        vol = (
            np.nanstd(returns, axis=0, ddof=1) * np.sqrt(252.0)
            if len(returns) > 1
            else np.full(closes.shape[1], np.nan)
        )
    return np.where(counts >= max(2, window // 2), vol, np.nan)


def position_greeks(
    *,
    underlying_price: np.ndarray,
    strike: np.ndarray,
    days: np.ndarray,
    rate: np.ndarray | float,
    is_call: np.ndarray,
    quantity: np.ndarray,
    multiplier: np.ndarray,
    option_close: np.ndarray,
    realized_vol: np.ndarray,
    default_vol: float,
) -> PositionGreeksArrays:
    spot = np.asarray(underlying_price, dtype=float)
    strike = np.asarray(strike, dtype=float)
    years = np.asarray(days, dtype=float) / 365.0
    is_call = np.asarray(is_call, dtype=bool)
    units = np.asarray(quantity, dtype=float) * np.asarray(multiplier, dtype=float)
    n = len(spot)
    rate = np.broadcast_to(np.asarray(rate, dtype=float), (n,))
    has_spot = np.isfinite(spot) & (spot > 0)
    safe_spot = np.where(has_spot, spot, 1.0)

    implied = np.full(n, np.nan)
    close = np.asarray(option_close, dtype=float)
    can_solve = has_spot & np.isfinite(close) & (close > 0) & (years > 0)
    if can_solve.any():
        solved = bs.implied_volatility(
            close[can_solve], safe_spot[can_solve], strike[can_solve], years[can_solve],
            rate[can_solve], is_call[can_solve],
        )  # fmt: skip
        implied[can_solve] = solved.sigma
    implied_ok = np.isfinite(implied) & (implied >= SANE_VOL[0]) & (implied <= SANE_VOL[1])
    realized = np.asarray(realized_vol, dtype=float)
    realized_ok = np.isfinite(realized) & (realized > 0)
    vol = np.where(implied_ok, implied, np.where(realized_ok, realized, default_vol))
    source = np.where(implied_ok, "implied", np.where(realized_ok, "realized", "default")).astype(
        object
    )

    per_share = bs.greeks(safe_spot, strike, years, rate, vol, is_call)
    mock = np.array([MOCK_PER_SHARE["C" if c else "P"] for c in is_call]).reshape(n, 5)
    live = years > 0

    def pick(values: np.ndarray, column: int) -> np.ndarray:
        chosen = np.where(has_spot, values, mock[:, column] if n else values)
        return np.where(live, chosen, 0.0) * units

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
    )
