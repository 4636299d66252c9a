"""Euler risk contributions (`analytics.calculations.contributions`) for a 10,000-position book
with K = 17 factors: parametric, historical (250 days) and Monte Carlo (10,000 draws) volatility,
VaR and ES components. The scenario P&L matrices (S x P) are inputs, built untimed (building them
is the revaluation's work). Beside each: the totals alone (risk.py on the same inputs) and the
naive alternative, per-position central finite differences of risk.py's totals (the book P&L or
factor exposures bumped by one position at a time), timed on 500 positions and scaled to 10,000.
No database: numpy in one process, best of 3 (the naive loop once). Target: every measure of
every method within 300 ms together."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from analytics.calculations import risk
from analytics.calculations.contributions import (
    parametric_contributions,
    scenario_contributions,
    scenario_es_contributions,
    scenario_var_contributions,
    scenario_volatility_contributions,
)
from bench import harness

POSITIONS = 10_000
FACTORS = 17
HISTORICAL_DAYS = 250
MC_DRAWS = 10_000
NAIVE_POSITIONS = 500
CONFIDENCE = 0.99
RUNS = 3
TARGET_S = 0.300
BUMP = 1e-6


@dataclass(frozen=True)
class Book:
    dollar_exposures: np.ndarray  # (P, K)
    factor_cov: np.ndarray  # (K, K) daily
    specific_var: np.ndarray  # (P,) currency^2 daily
    exposures: np.ndarray  # (P,)


def book(seed: int = 21) -> Book:
    """Long and short $10k-$2m positions, betas 0-1.5 on 17 factors (daily vols 0.5%-2%,
    correlated), specific vols 0.5%-3% a day."""
    rng = np.random.default_rng(seed)
    loadings = rng.normal(0.0, 0.006, (FACTORS, FACTORS))
    cov = loadings @ loadings.T + np.diag(rng.uniform(0.005, 0.02, FACTORS) ** 2)
    exposures = rng.choice([-1.0, 1.0], POSITIONS, p=[0.3, 0.7]) * rng.uniform(1e4, 2e6, POSITIONS)
    betas = rng.uniform(0.0, 1.5, (POSITIONS, FACTORS)) * (rng.random((POSITIONS, FACTORS)) < 0.4)
    residual_vol = rng.uniform(0.005, 0.03, POSITIONS)
    return Book(
        dollar_exposures=exposures[:, None] * betas,
        factor_cov=cov,
        specific_var=(exposures * residual_vol) ** 2,
        exposures=exposures,
    )


def historical_pnl(b: Book, seed: int = 22) -> np.ndarray:
    """(250, P) daily P&L: factor moves through the exposures plus specific noise."""
    rng = np.random.default_rng(seed)
    moves = rng.multivariate_normal(np.zeros(FACTORS), b.factor_cov, HISTORICAL_DAYS)
    noise = rng.standard_normal((HISTORICAL_DAYS, POSITIONS)) * np.sqrt(b.specific_var)
    return moves @ b.dollar_exposures.T + noise


def monte_carlo_pnl(b: Book) -> np.ndarray:
    """(10,000, P) P&L of the delta book under risk.monte_carlo_moves (one day)."""
    moves = risk.monte_carlo_moves(b.factor_cov, n=MC_DRAWS, seed=23)
    return moves @ b.dollar_exposures.T


def best_seconds(run: Callable[[], object]) -> float:
    return min(harness.timed(run)[0] for _ in range(RUNS))


def naive_seconds(per_position: Callable[[int], object]) -> float:
    """Central differences on the first 500 positions, scaled to the whole book."""
    seconds, _ = harness.timed(lambda: [per_position(i) for i in range(NAIVE_POSITIONS)])
    return seconds * POSITIONS / NAIVE_POSITIONS


def row(
    method: str, measure: str, shape: str, seconds: float, totals: float, naive: float | None
) -> list[object]:
    return [
        method,
        measure,
        shape,
        1e3 * seconds,
        1e3 * totals,
        "-" if naive is None else 1e3 * naive,
        "-" if naive is None else f"{naive / seconds:,.0f}x",
    ]


def parametric_row(b: Book) -> tuple[list[object], float]:
    D, cov, s = b.dollar_exposures, b.factor_cov, b.specific_var

    def totals() -> float:
        return risk.parametric_var(D.sum(axis=0), cov, float(s.sum()), CONFIDENCE)

    d, residual = D.sum(axis=0), float(s.sum())

    def difference(i: int) -> float:
        # The exposures of every other position summed once: only position i moves.
        up = risk.parametric_var(
            d + BUMP * D[i], cov, residual + ((1 + BUMP) ** 2 - 1) * s[i], CONFIDENCE
        )
        down = risk.parametric_var(
            d - BUMP * D[i], cov, residual + ((1 - BUMP) ** 2 - 1) * s[i], CONFIDENCE
        )
        return (up - down) / (2 * BUMP)

    seconds = best_seconds(
        lambda: parametric_contributions(D, cov, s, exposures=b.exposures, confidence=CONFIDENCE)
    )
    shape = f"{POSITIONS:,} x {FACTORS} factors"
    measured = row(
        "parametric",
        "volatility + VaR + ES",
        shape,
        seconds,
        best_seconds(totals),
        naive_seconds(difference),
    )
    return measured, seconds


def shape_of(pnl: np.ndarray) -> str:
    return f"{pnl.shape[0]:,} x {pnl.shape[1]:,}"


def measure_row(
    method: str,
    name: str,
    pnl: np.ndarray,
    contributions: Callable[[], object],
    total: Callable[[np.ndarray], float],
) -> list[object]:
    book_pnl = pnl.sum(axis=1)

    def difference(i: int) -> float:
        column = pnl[:, i]
        return (total(book_pnl + BUMP * column) - total(book_pnl - BUMP * column)) / (2 * BUMP)

    return row(
        method,
        name,
        shape_of(pnl),
        best_seconds(contributions),
        best_seconds(lambda: total(pnl.sum(axis=1))),
        naive_seconds(difference),
    )


def scenario_rows(method: str, pnl: np.ndarray, e: np.ndarray) -> tuple[list[list[object]], float]:
    measures: list[tuple[str, Callable[[], object], Callable[[np.ndarray], float]]] = [
        (
            "VaR",
            lambda: scenario_var_contributions(pnl, exposures=e, confidence=CONFIDENCE),
            lambda L: risk.historical_var(L, CONFIDENCE),
        ),
        (
            "ES",
            lambda: scenario_es_contributions(pnl, exposures=e, confidence=CONFIDENCE),
            lambda L: risk.expected_shortfall(L, CONFIDENCE),
        ),
        (
            "volatility",
            lambda: scenario_volatility_contributions(pnl, exposures=e),
            lambda L: float(np.std(L, ddof=1)),
        ),
    ]
    rows = [
        measure_row(method, name, pnl, contributions, total)
        for name, contributions, total in measures
    ]
    together = best_seconds(lambda: scenario_contributions(pnl, exposures=e, confidence=CONFIDENCE))

    def all_totals() -> None:
        L = pnl.sum(axis=1)
        risk.historical_var(L, CONFIDENCE)
        risk.expected_shortfall(L, CONFIDENCE)
        np.std(L, ddof=1)

    rows.append(
        row(
            method,
            "VaR + ES + volatility, one call",
            shape_of(pnl),
            together,
            best_seconds(all_totals),
            None,
        )
    )
    return rows, together


def main() -> None:
    b = book()
    e = b.exposures
    historical = historical_pnl(b)
    monte_carlo = monte_carlo_pnl(b)
    parametric, parametric_s = parametric_row(b)
    historical_rows, historical_s = scenario_rows("historical", historical, e)
    mc_rows, mc_s = scenario_rows("Monte Carlo", monte_carlo, e)
    total_s = parametric_s + historical_s + mc_s
    rows = [
        parametric,
        *historical_rows,
        *mc_rows,
        [
            "all",
            "9 measures in 3 calls",
            f"{POSITIONS:,} positions",
            1e3 * total_s,
            "-",
            "-",
            f"target {1e3 * TARGET_S:.0f} ms: {'holds' if total_s <= TARGET_S else 'MISSED'}",
        ],
    ]
    harness.print_table(
        f"Euler risk contributions, {POSITIONS:,} positions, K = {FACTORS}, {CONFIDENCE:.0%} "
        f"(best of {RUNS}; naive = per-position central differences of risk.py's totals on "
        f"{NAIVE_POSITIONS} positions, scaled; target: all within {1e3 * TARGET_S:.0f} ms)",
        [
            "method",
            "measure",
            "scenarios x positions",
            "contributions ms",
            "totals alone ms",
            "naive FD ms",
            "vs naive",
        ],
        rows,
    )


if __name__ == "__main__":
    main()
