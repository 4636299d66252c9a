"""Factor betas for whole books (DESIGN.md, "Conventions that numbers depend on").

Returns are decimal daily simple returns (0.01 = 1%). The market factor is SPY's return; style
factors enter as their residual to the market over the same window (`residualize`), so a
position's market beta in the multi-factor regression equals its one-factor (market-only) beta.
The caller passes the window (the last 252 sessions); a position needs at least 60 usable
sessions. Betas are dimensionless, capped at +/-3 with the capping recorded; dollar exposures
are in the position's currency (exposure x beta).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from analytics.calculations.aggregation import return_base

# The market factor's name (FactorDefinition.name): the regressor the styles are residual to.
MARKET = "Market"
MIN_OBSERVATIONS = 60
BETA_CAP = 3.0
# Past this condition number of the (intercept + factors) design, OLS via QR keeps fewer than
# ~6 of float64's 16 significant digits; such a window (e.g. a factor that never moved) is
# reported ("collinear_factors") rather than solved.
MAX_CONDITION = 1e10
BLOCK = 1024  # positions solved per matrix product: (252 x 1024) float64 is 2 MB, cache-sized


@dataclass(frozen=True)
class BetaResult:
    factors: list[str]
    betas: npt.NDArray[np.float64]  # (P, K) capped at +/-cap; NaN rows where not solved
    raw_betas: npt.NDArray[np.float64]  # (P, K) before capping
    intercept: npt.NDArray[np.float64]  # (P,) decimal daily return
    std_errors: npt.NDArray[np.float64]  # (P, K) classical OLS standard errors of raw_betas
    r_squared: npt.NDArray[np.float64]  # (P,)
    residual_vol: npt.NDArray[np.float64]  # (P,) daily stdev of residuals, ddof = K + 1
    observations: npt.NDArray[np.int_]  # (P,) usable sessions
    capped: npt.NDArray[np.bool_]  # (P, K)
    reason: list[str]  # (P,) "" when solved


def simple_returns(closes: pd.DataFrame) -> pd.DataFrame:
    """Daily simple returns (decimal) of a sessions x symbols close frame, oldest first; the
    first session is dropped. A missing close makes both returns it touches NaN (no bridging
    over gaps)."""
    closes = closes.astype(float)
    return (closes / closes.shift(1) - 1.0).iloc[1:]


def residualize(factors: pd.DataFrame, market: str = "market") -> pd.DataFrame:
    """Replace every column except `market` by its OLS residual (with intercept) on the market
    column, fitted over the rows where both exist (NaN elsewhere). In-sample, each residual has
    zero mean and zero covariance with the market. Units are unchanged (decimal daily returns)."""
    if market not in factors.columns:
        raise ValueError(f"market column {market!r} not in factors")
    values = factors.to_numpy(dtype=float)
    m = factors[market].to_numpy(dtype=float)[:, None]
    both = np.isfinite(values) & np.isfinite(m)
    n = both.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        m_mean = np.where(both, m, 0.0).sum(axis=0) / n
        f_mean = np.where(both, values, 0.0).sum(axis=0) / n
        m_dev = np.where(both, m - m_mean, 0.0)
        f_dev = np.where(both, values - f_mean, 0.0)
        slope = (m_dev * f_dev).sum(axis=0) / (m_dev * m_dev).sum(axis=0)
        residual = np.where(both, f_dev - slope * m_dev, np.nan)
    out = pd.DataFrame(residual, index=factors.index, columns=factors.columns)
    out[market] = factors[market]
    return out


def batched_ols(
    y: npt.NDArray[np.float64],
    X: npt.NDArray[np.float64],
    factor_names: list[str],
    *,
    min_obs: int = MIN_OBSERVATIONS,
    cap: float = BETA_CAP,
) -> BetaResult:
    """OLS with intercept of every column of `y` (T sessions x P positions, decimal daily returns,
    NaN where missing) on `X` (T x K factor returns; a row with any non-finite factor is unusable
    for every position), each over the rows where it and X are finite.

    Positions sharing a usable-row pattern (normally: all of them) are solved together: one QR
    of the design, applied to their stacked returns in blocks of `BLOCK` positions; each other
    pattern gets its own QR on its own rows. A position with fewer than `min_obs` usable rows (at
    least K + 2, so the residual variance has a degree of freedom) gets NaN and an
    `insufficient_history` reason; a near-singular design gets NaN and `collinear_factors`.
    Standard errors are the classical ones, sqrt(s^2 diag((Z'Z)^-1)) with s^2 = SSR / (n - K - 1).
    """
    y = np.asarray(y, dtype=float)
    X = np.asarray(X, dtype=float)
    if y.ndim != 2 or X.ndim != 2 or len(y) != len(X) or X.shape[1] != len(factor_names):
        raise ValueError(
            f"y must be (T, P) and X (T, K) with K = len(factor_names); got y {y.shape}, "
            f"X {X.shape}, {len(factor_names)} names"
        )
    P = y.shape[1]
    K = X.shape[1]
    needed = max(min_obs, K + 2)

    row_ok = np.all(np.isfinite(X), axis=1)
    usable = np.isfinite(y)
    usable &= row_ok[:, None]
    observations = usable.sum(axis=0)
    raw = np.full((P, K), np.nan)
    intercept = np.full(P, np.nan)
    std_errors = np.full((P, K), np.nan)
    r_squared = np.full(P, np.nan)
    residual_vol = np.full(P, np.nan)
    reason = np.full(P, "", dtype=object)
    short = observations < needed
    reason[short] = [
        f"insufficient_history: {n} observations, {needed} needed" for n in observations[short]
    ]

    for rows, cols in _row_patterns(usable, row_ok, observations, ~short):
        design = np.column_stack([np.ones(int(rows.sum())), X[rows]])
        q, r = np.linalg.qr(design)
        condition = np.linalg.cond(r)
        if not condition < MAX_CONDITION:
            reason[cols] = f"collinear_factors: design condition number {condition:.3g}"
            continue
        r_inv = np.linalg.solve(r, np.eye(K + 1))
        xtx_inv_diag = np.einsum("ij,ij->i", r_inv, r_inv)  # diag((X'X)^-1) = row norms of R^-1
        dof = len(design) - (K + 1)
        all_rows = bool(rows.all())
        whole_panel = all_rows and len(cols) == P
        # Blocks of positions, not a loop per position: one small scratch buffer is reused, so no
        # (sessions x positions) temporary is allocated (fresh 20 MB arrays cost more in page
        # faults than the arithmetic) and memory stays flat for any book size. Residuals are
        # formed explicitly, not as y'y - |Q'y|^2, so a near-perfect fit loses no digits.
        work = np.empty((len(design), min(BLOCK, len(cols))))
        for start in range(0, len(cols), BLOCK):
            block = cols[start : start + BLOCK]
            if whole_panel:
                target = y[:, start : start + BLOCK]  # a view: no copy
            else:
                target = y[:, block] if all_rows else y[np.ix_(rows, block)]
            qty = q.T @ target
            coef = np.linalg.solve(r, qty)  # (K + 1, len(block))
            fitted = np.matmul(q, qty, out=work[:, : len(block)])
            resid = np.subtract(target, fitted, out=fitted)
            ssr = np.einsum("ij,ij->j", resid, resid)
            centred = np.subtract(target, target.mean(axis=0), out=resid)
            tss = np.einsum("ij,ij->j", centred, centred)
            scale = ssr / dof
            intercept[block] = coef[0]
            raw[block] = coef[1:].T
            std_errors[block] = np.sqrt(np.outer(scale, xtx_inv_diag[1:]))
            with np.errstate(invalid="ignore", divide="ignore"):
                r_squared[block] = 1.0 - ssr / tss
            residual_vol[block] = np.sqrt(scale)

    with np.errstate(invalid="ignore"):
        capped = np.abs(raw) > cap
    return BetaResult(
        factors=list(factor_names),
        betas=np.clip(raw, -cap, cap),
        raw_betas=raw,
        intercept=intercept,
        std_errors=std_errors,
        r_squared=r_squared,
        residual_vol=residual_vol,
        observations=observations.astype(int),
        capped=capped,
        reason=list(reason),
    )


def _row_patterns(
    usable: npt.NDArray[np.bool_],
    row_ok: npt.NDArray[np.bool_],
    observations: npt.NDArray[np.int_],
    solvable: npt.NDArray[np.bool_],
) -> list[tuple[npt.NDArray[np.bool_], npt.NDArray[np.intp]]]:
    """(rows mask, position indices) for each distinct usable-row pattern among the solvable
    positions, without a Python loop over positions. A position with as many observations as
    there are usable factor rows has exactly those rows, so the common case needs no comparing."""
    full = solvable & (observations == row_ok.sum())
    patterns = [(row_ok, np.flatnonzero(full))] if full.any() else []
    rest = np.flatnonzero(solvable & ~full)
    if len(rest):
        packed = np.ascontiguousarray(np.packbits(usable[:, rest], axis=0).T)
        keys = packed.view(np.dtype((np.void, packed.shape[1]))).ravel()
        _, first_of, inverse = np.unique(keys, return_index=True, return_inverse=True)
        order = np.argsort(inverse, kind="stable")
        groups = np.split(order, np.cumsum(np.bincount(inverse))[:-1])
        patterns += [(usable[:, rest[first_of[g]]], rest[m]) for g, m in enumerate(groups)]
    return patterns


def dollar_exposures(
    exposure: npt.NDArray[np.float64], betas: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """(P,) signed exposures in currency x (P, K) betas -> (P, K) dollar factor exposures in
    currency. A NaN beta (not solved) contributes 0; a NaN exposure (not valued) stays NaN."""
    exposure = np.asarray(exposure, dtype=float)[:, None]
    betas = np.asarray(betas, dtype=float)
    return np.where(np.isfinite(betas), exposure * np.nan_to_num(betas), 0.0)


def portfolio_betas(
    dollar: npt.NDArray[np.float64], equity: float, gross: float
) -> tuple[npt.NDArray[np.float64], str]:
    """Portfolio betas (dimensionless, (K,)): the sum of dollar exposures over positions (NaN,
    i.e. unvalued, positions left out) divided by equity, or by gross exposure when equity is not
    positive; returns the betas and "equity" or "gross" (the API's `normalized_by`). Raises
    ValueError when neither is positive (nothing to normalize by)."""
    total = np.nansum(np.asarray(dollar, dtype=float), axis=0)
    base = return_base(equity, gross)
    if base.normalized_by == "equity" or gross > 0:
        return total / base.amount, base.normalized_by
    # sigmasight.exceptions is not imported here: importing the package loads Celery and Django.
    raise ValueError(
        f"portfolio betas need positive equity or gross (equity {equity}, gross {gross})"
    )
