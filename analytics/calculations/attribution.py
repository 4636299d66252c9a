"""P&L attribution of a day (DESIGN.md, "P&L attribution of a day"), for whole books at once.

Units: money in the book's currency, gains positive; returns and volatilities decimal (0.01 =
1%); position Greeks in mibian's units (theta per calendar day, vega per vol point, rho per rate
point, each per share x quantity x multiplier).

Total. A position's P&L of session t is the book frame's daily P&L: (close_t - close_{t-1}) x
units, plus the dividend of the ex-date. A position without a price on either session has no
P&L (0, as in the snapshots' sums).

Factors. factor P&L_i = sum_k D_ik x f_k(t), with D_ik the position's stored dollar exposure to
factor k of the previous session (exposure x beta; options delta-adjusted) and f_k(t) the
factor's move on t in the definition its betas were estimated on (`factor_moves`):
- Market: its proxy's daily simple return (SPY).
- a style: its return residual to the market, (r_k - mean r_k) - b_k (r_m - mean r_m), with the
  means and the OLS slope b_k of the window the betas were estimated on (the sessions to t-1
  where the market and every style have a return): `factors.residualize` applied out of
  sample, so a session inside the window gets exactly the regressor value the OLS saw.
- a macro factor: its raw move (a return; Rates: the yield change) beyond the market,
  x_k - c_k r_m, c_k the OLS slope of x_k on the market over the window's sessions where both
  moved. Its stored beta is its coefficient beside Market in a regression on [Market, x_k]
  over those sessions, which by Frisch-Waugh applies to that residual move (the stress
  engine's `beyond_market`).
A factor without a move on t (its proxy has no close) contributes nothing. specific = total -
factor, so the parts sum to the day's P&L.

Greeks (options). explain = delta dS + 1/2 gamma dS^2 + vega (100 d sigma) + theta dt +
rho (100 dr), with the previous session's position Greeks, dS, d sigma and dr the changes of
the underlying price, the volatility and the rate the two sessions' Greeks used, and dt the
calendar days between the sessions; residual = total - explain.

The residual's size. The explain is the Taylor expansion of the price V(S, sigma, t, r) to
second order in S and first order in the rest, so the residual is what that leaves out: the
other second-order terms, veta V_sigma,t dsigma dt, charm V_S,t dS dt, vanna V_S,sigma dS dsigma,
V_S,r dS dr, 1/2 V_t,t dt^2, 1/2 volga dsigma^2, ..., then the third-order ones, 1/2 zomma
V_SS,sigma dS^2 dsigma, 1/2 color V_SS,t dS^2 dt, 1/6 speed V_SSS dS^3, ... A bound is the sum
of their absolute values, the derivatives taken from the model by finite differences. For a
30-day at-the-money European call (S = K = 100, sigma 25%, r 4%), one contract (100 shares),
the underlying up 1% with sigma +1 point, r +5bp and one calendar day: P&L 61.97, explain
62.34, residual -0.368 against a bound of 0.512. The largest terms (per contract): veta -0.189,
zomma -0.111, charm -0.054, color +0.046, 1/2 V_t,t -0.040, V_S,r +0.023, speed -0.019,
vanna -0.015; the signed sum of all second- and third-order terms is within 0.001 of the
residual. The underlying down 1%: P&L -44.41, residual -0.238; the put: -37.34 and +56.28,
residuals -0.354 and -0.224, the bound 0.512 each time. Over a weekend (three calendar days,
the rest the same) the residuals are -0.73 to -1.12 against a bound of 1.46, under 3.2% of the
P&L (analytics/tests/calculations/test_attribution.py reprices and checks all eight cases).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

Array = npt.NDArray[np.float64]
GREEK_PARTS = ("delta", "gamma", "vega", "theta", "rho", "residual")


def _slope(y: Array, x: Array) -> tuple[float, float, float]:
    """OLS of y on x with an intercept: (slope, mean of x, mean of y); NaN slope without spread."""
    if len(x) < 2:
        return float("nan"), float("nan"), float("nan")
    x_mean, y_mean = float(x.mean()), float(y.mean())
    dx = x - x_mean
    spread = float(dx @ dx)
    if spread == 0.0:
        return float("nan"), x_mean, y_mean
    return float(dx @ (y - y_mean)) / spread, x_mean, y_mean


def factor_moves(
    returns: pd.DataFrame,
    *,
    market: str | None,
    styles: Sequence[str],
    macros: Sequence[str],
    residual_styles: bool = True,
) -> pd.Series:
    """The factor moves of one session, in the definitions the betas were estimated on.

    `returns`: raw daily moves (decimal returns; Rates: yield changes), sessions x factor names,
    oldest first; the last row is the session, the rows before it the beta window. `market`
    names the market column (None: no market factor, every move raw); the styles are residual
    to it unless `residual_styles` is off (SIGMASIGHT_RAW_STYLE_FACTORS), the macros always
    beyond it. Returns a Series over the columns, NaN where the session has no move or the
    window cannot define one."""
    window, day = returns.iloc[:-1], returns.iloc[-1]
    moves = day.astype(float).copy()
    if market is None or market not in returns:
        return moves
    m_today = float(day[market])
    model = [market, *[s for s in styles if s in returns]]
    sample = window[model].dropna(how="any")
    for style in model[1:] if residual_styles else []:
        slope, m_mean, s_mean = _slope(
            sample[style].to_numpy(dtype=float), sample[market].to_numpy(dtype=float)
        )
        moves[style] = (float(day[style]) - s_mean) - slope * (m_today - m_mean)
    for macro in macros:
        if macro not in returns:
            continue
        pair = window[[market, macro]].dropna(how="any")
        slope, _, _ = _slope(pair[macro].to_numpy(dtype=float), pair[market].to_numpy(dtype=float))
        moves[macro] = float(day[macro]) - slope * m_today
    return moves


def daily_factor_moves(
    returns: pd.DataFrame,
    window: int,
    *,
    market: str | None,
    styles: Sequence[str],
    macros: Sequence[str],
    residual_styles: bool = True,
) -> pd.DataFrame:
    """`factor_moves` of every session of `returns` after its first `window` rows, each with
    the `window` rows before it as its beta window (fewer at the start of a short history).
    Returns (sessions x factors), the sessions the index of `returns[window:]`."""
    rows = [
        factor_moves(
            returns.iloc[max(0, i - window) : i + 1],
            market=market,
            styles=styles,
            macros=macros,
            residual_styles=residual_styles,
        )
        for i in range(window, len(returns))
    ]
    return pd.DataFrame(rows, index=returns.index[window:], columns=returns.columns, dtype=float)


@dataclass(frozen=True)
class FactorAttribution:
    """A book's P&L split into factors and the rest; arrays over (..., positions)."""

    total: Array  # the P&L of the day, 0 where a position has none
    by_factor: Array  # (..., positions, factors)
    factor: Array  # the sum over factors
    specific: Array  # total - factor


def factor_attribution(total: Array, dollar: Array, moves: Array) -> FactorAttribution:
    """`total` (..., P) P&L, `dollar` (P, K) dollar exposures of the previous session (NaN:
    none stored, e.g. a position new today: all its P&L is specific) and `moves` (..., K)
    factor moves (NaN: none on the session) -> the factor attribution. Leading axes broadcast
    (sessions of a history: total (S, P), moves (S, K))."""
    total = np.nan_to_num(np.asarray(total, dtype=float))
    dollar = np.nan_to_num(np.asarray(dollar, dtype=float))
    moves = np.nan_to_num(np.asarray(moves, dtype=float))
    by_factor = dollar * moves[..., None, :]
    factor = by_factor.sum(axis=-1)
    return FactorAttribution(
        total=total, by_factor=by_factor, factor=factor, specific=total - factor
    )


@dataclass(frozen=True)
class GreeksExplain:
    """Options' P&L explained by their Greeks; arrays over positions (NaN where no explain)."""

    delta: Array
    gamma: Array
    vega: Array
    theta: Array
    rho: Array
    residual: Array

    def parts(self) -> dict[str, Array]:
        return {name: getattr(self, name) for name in GREEK_PARTS}


def greeks_explain(
    *,
    total: Array,
    delta: Array,
    gamma: Array,
    vega: Array,
    theta: Array,
    rho: Array,
    spot_change: Array,
    vol_change: Array,
    rate_change: Array,
    days: float | Array,
) -> GreeksExplain:
    """The Taylor explain of options' P&L (module docstring) from the previous session's
    position Greeks and the changes to the session: `spot_change` in currency per share,
    `vol_change` and `rate_change` decimal (0.01 = one point, hence the x 100 against vega and
    rho per point), `days` calendar days. residual = total - the sum of the five terms. A NaN
    input makes that position's parts NaN (no explain)."""
    d_s = np.asarray(spot_change, dtype=float)
    parts = {
        "delta": np.asarray(delta, dtype=float) * d_s,
        "gamma": 0.5 * np.asarray(gamma, dtype=float) * d_s * d_s,
        "vega": np.asarray(vega, dtype=float) * 100.0 * np.asarray(vol_change, dtype=float),
        "theta": np.asarray(theta, dtype=float) * np.asarray(days, dtype=float),
        "rho": np.asarray(rho, dtype=float) * 100.0 * np.asarray(rate_change, dtype=float),
    }
    explained = sum(parts.values(), np.zeros_like(d_s))
    residual = np.asarray(total, dtype=float) - explained
    known = np.isfinite(explained) & np.isfinite(residual)
    return GreeksExplain(
        **{name: np.where(known, value, np.nan) for name, value in parts.items()},
        residual=np.where(known, residual, np.nan),
    )
