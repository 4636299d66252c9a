"""Stress impacts on whole books (pure numpy).

Factor moves are decimals: returns for price factors (-0.10 = a 10% fall), a yield change for
Rates (0.01 = +100bp). A position's P&L under moves f: stocks (and anything linear) dollar
exposures @ f; options are revalued by Black-Scholes at the underlying moved by betas @ f
(full revaluation). The direct impact applies only the scenario's shocks; the correlated impact
adds every other factor's conditional move E[f_o | f_s = s] = Sigma_os Sigma_ss^-1 s (DESIGN.md).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from analytics.calculations.revaluation import ChangeUnder, OptionLegs, change_under


def nearest_psd(matrix: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """The nearest symmetric positive semi-definite matrix (negative eigenvalues clipped to 0)."""
    sym: npt.NDArray[np.float64] = (
        np.asarray(matrix, dtype=float) + np.asarray(matrix, dtype=float).T
    ) / 2.0
    values, vectors = np.linalg.eigh(sym)
    if values.min() >= 0:
        return sym
    repaired: npt.NDArray[np.float64] = (vectors * np.clip(values, 0.0, None)) @ vectors.T
    return (repaired + repaired.T) / 2.0


def conditional_moves(
    cov: npt.NDArray[np.float64], shocked: npt.NDArray[np.intp], shocks: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """All K factor moves given the shocked ones: the shocks themselves, and for every other
    factor Sigma_os Sigma_ss^+ s (pseudo-inverse, so perfectly correlated shocks still work)."""
    cov = np.asarray(cov, dtype=float)
    shocked = np.asarray(shocked, dtype=int)
    shocks = np.asarray(shocks, dtype=float)
    moves = cov[:, shocked] @ (np.linalg.pinv(cov[np.ix_(shocked, shocked)]) @ shocks)
    moves[shocked] = shocks
    return moves


def position_pnl(
    moves: npt.NDArray[np.float64],
    *,
    dollar: npt.NDArray[np.float64],
    betas: npt.NDArray[np.float64],
    options: OptionLegs,
    change: ChangeUnder = change_under,
) -> npt.NDArray[np.float64]:
    """(S, K) scenario moves -> (S, P) P&L per position (currency); the option legs' rows fully
    revalued at their underlying moved by betas @ moves (`revaluation.revalue`, through
    `change`: a memo shared by books holding the same contracts)."""
    moves = np.atleast_2d(np.asarray(moves, dtype=float))
    pnl = moves @ np.nan_to_num(dollar).T
    if len(options.rows):
        per_share = change(options, np.nan_to_num(betas[options.rows]), moves)  # (S, options)
        pnl[:, options.rows] = per_share * options.units
    return pnl
