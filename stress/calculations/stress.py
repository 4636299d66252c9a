"""Stress impacts on whole books (pure numpy).

Factor moves are decimals: returns for price factors (-0.10 = a 10% fall), a yield change for
Rates (0.01 = +100bp). A position's P&L under moves f: stocks (and anything linear) dollar
exposures @ f; options are revalued by Black-Scholes at the underlying moved by betas @ f
(full revaluation). The direct impact applies only the scenario's shocks; the correlated impact
adds every other factor's conditional move E[f_o | f_s = s] = Sigma_os Sigma_ss^-1 s (DESIGN.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from marketdata.calculations import black_scholes as bs

SPOT_FLOOR = 1e-6


def nearest_psd(matrix: np.ndarray) -> np.ndarray:
    """The nearest symmetric positive semi-definite matrix (negative eigenvalues clipped to 0)."""
    sym = (np.asarray(matrix, dtype=float) + np.asarray(matrix, dtype=float).T) / 2.0
    values, vectors = np.linalg.eigh(sym)
    if values.min() >= 0:
        return sym
    repaired = (vectors * np.clip(values, 0.0, None)) @ vectors.T
    return (repaired + repaired.T) / 2.0


def conditional_moves(cov: np.ndarray, shocked: np.ndarray, shocks: np.ndarray) -> np.ndarray:
    """All K factor moves given the shocked ones: the shocks themselves, and for every other
    factor Sigma_os Sigma_ss^+ s (pseudo-inverse, so perfectly correlated shocks still work)."""
    cov = np.asarray(cov, dtype=float)
    shocked = np.asarray(shocked, dtype=int)
    shocks = np.asarray(shocks, dtype=float)
    moves = cov[:, shocked] @ (np.linalg.pinv(cov[np.ix_(shocked, shocked)]) @ shocks)
    moves[shocked] = shocks
    return moves


@dataclass(frozen=True)
class OptionLegs:
    """Option positions of the book: `rows` index them among all positions."""

    rows: np.ndarray
    spot: np.ndarray
    strike: np.ndarray
    years: np.ndarray
    rate: np.ndarray
    volatility: np.ndarray
    is_call: np.ndarray
    units: np.ndarray  # signed contracts x multiplier


def position_pnl(
    moves: np.ndarray, *, dollar: np.ndarray, betas: np.ndarray, options: OptionLegs
) -> np.ndarray:
    """(S, K) scenario moves -> (S, P) P&L per position; option rows fully revalued."""
    moves = np.atleast_2d(np.asarray(moves, dtype=float))
    pnl = moves @ np.nan_to_num(dollar).T
    if len(options.rows):
        underlying = moves @ np.nan_to_num(betas[options.rows]).T  # (S, options)
        terms = (options.strike, options.years, options.rate, options.volatility, options.is_call)
        base = bs.price(options.spot, *terms)
        # A move of -100% or worse leaves the underlying at (almost) nothing, never below it:
        # Black-Scholes is undefined at zero, so floor at a millionth of the spot.
        floor = options.spot * SPOT_FLOOR
        shocked = bs.price(np.maximum(options.spot * (1.0 + underlying), floor), *terms)
        pnl[:, options.rows] = (shocked - base) * options.units
    return pnl
