"""Market and rate scenarios on whole books, and how well predictions matched outcomes.

Market move m (decimal, -0.01 = market down 1%): a stock's P&L is exposure x market beta x m; an
option's underlying moves by its own market beta x m and the option is revalued by Black-Scholes
at the shocked price with its volatility, time and rate unchanged (full revaluation). The
delta-only P&L beside it is dollar delta x beta x m, so the difference is the convexity the
delta approximation misses. Rate move (decimal yield change, 0.005 = +50bp): P&L = value x IR
beta x move (IR beta = slope of daily returns on daily yield changes). P&L in currency.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from marketdata.calculations import black_scholes as bs


@dataclass(frozen=True)
class OptionBook:
    spot: np.ndarray
    strike: np.ndarray
    years: np.ndarray
    rate: np.ndarray
    volatility: np.ndarray
    is_call: np.ndarray
    units: np.ndarray  # signed contracts x multiplier
    market_beta: np.ndarray  # of the underlying; NaN = no beta (contributes nothing)


@dataclass(frozen=True)
class ScenarioPnl:
    moves: np.ndarray
    full: np.ndarray  # options fully revalued
    delta_only: np.ndarray


def market_scenarios(
    moves: np.ndarray, *, stock_exposure: np.ndarray, stock_beta: np.ndarray, options: OptionBook
) -> ScenarioPnl:
    moves = np.asarray(moves, dtype=float)
    stock_beta = np.nan_to_num(np.asarray(stock_beta, dtype=float))
    linear = np.asarray(stock_exposure, dtype=float) @ stock_beta * moves
    beta = np.nan_to_num(options.market_beta)
    base = bs.greeks(
        options.spot,
        options.strike,
        options.years,
        options.rate,
        options.volatility,
        options.is_call,
    )
    # (moves, options): each option's underlying moves by its own beta times the market move.
    shocked_spot = options.spot[None, :] * (1.0 + beta[None, :] * moves[:, None])
    # Black-Scholes is undefined at a zero spot: a move of -100% or worse leaves a millionth.
    shocked = bs.price(
        np.maximum(shocked_spot, options.spot[None, :] * 1e-6), options.strike, options.years, options.rate,
        options.volatility, options.is_call,
    )  # fmt: skip
    full = linear + ((shocked - base.price[None, :]) * options.units[None, :]).sum(axis=1)
    dollar_delta = base.delta * options.units * options.spot
    delta_only = linear + (dollar_delta * beta)[None, :].sum(axis=1) * moves
    return ScenarioPnl(moves=moves, full=full, delta_only=delta_only)


def rate_scenarios(moves: np.ndarray, *, values: np.ndarray, ir_betas: np.ndarray) -> np.ndarray:
    """P&L per yield move; positions without an IR beta contribute nothing."""
    weighted = np.asarray(values, dtype=float) @ np.nan_to_num(np.asarray(ir_betas, dtype=float))
    return weighted * np.asarray(moves, dtype=float)


def accuracy(predicted: np.ndarray, realized: np.ndarray) -> dict[str, float | int | None]:
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
