"""The one revaluation (`analytics.calculations.revaluation.revalue`) in Monte Carlo's shape:
draws x option legs of underlying returns, the legs European (Black-Scholes-Merton), American
evaluated directly (Bjerksund-Stensland 2002 at every draw and leg: what `revalue` does below
64 scenarios) and American through the premium grid (what `revalue` does with many draws), with
the grid's largest error against direct evaluation, per share as a fraction of the strike. No
database: numpy in one process, best of 3 (direct evaluation once). Target: the grid within the
module's stated 1e-7 x strike, and at least 3x faster than direct evaluation."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np

from analytics.calculations.revaluation import OptionLegs, revalue, shocked_spot
from bench import harness

SHAPES = ((10_000, 400), (1_000, 4_000))  # (draws, legs)
RUNS = 3
TOLERANCE = 1e-7  # per share, x strike (the module docstring's bound)
TARGET_SPEEDUP = 3.0


def book(legs: int, seed: int = 11) -> OptionLegs:
    """American legs on stocks: moneyness 0.7-1.3, 1 day-2 years, r 0-5%, q 0-6%, sigma
    15%-80%, calls and puts, 1-10 contracts long or short."""
    rng = np.random.default_rng(seed)
    spot = rng.uniform(20.0, 500.0, legs)
    return OptionLegs(
        rows=np.arange(legs),
        spot=spot,
        strike=spot * rng.uniform(0.7, 1.3, legs),
        years=rng.integers(1, 731, legs) / 365.0,
        rate=rng.uniform(0.0, 0.05, legs),
        volatility=rng.uniform(0.15, 0.8, legs),
        is_call=rng.random(legs) < 0.5,
        units=rng.choice([-1.0, 1.0], legs) * rng.integers(1, 11, legs) * 100.0,
        dividend_yield=rng.uniform(0.0, 0.06, legs),
        american=np.ones(legs, dtype=bool),
    )


def draws(legs: OptionLegs, count: int, seed: int = 12) -> np.ndarray:
    """One-day underlying returns: one market factor (beta 0.5-1.5) plus residual, each leg's
    daily volatility its implied one / sqrt(252)."""
    rng = np.random.default_rng(seed)
    n = len(legs.rows)
    market = rng.standard_normal((count, 1))
    beta = rng.uniform(0.5, 1.5, n) / 1.5
    z = market * beta + rng.standard_normal((count, n)) * np.sqrt(1.0 - beta**2)
    return np.expm1(z * legs.volatility / np.sqrt(252.0))


def best_seconds(run: Callable[[], object]) -> float:
    return min(harness.timed(run)[0] for _ in range(RUNS))


def measure(count: int, n: int) -> list[list[object]]:
    legs = book(n)
    returns = draws(legs, count)
    european = replace(legs, american=np.zeros(n, dtype=bool))
    european_s = best_seconds(lambda: revalue(european, returns))
    grid_s = best_seconds(lambda: revalue(legs, returns))
    shocked = shocked_spot(legs.spot, returns)
    direct_s, exact = harness.timed(lambda: legs.price(shocked) - legs.price(legs.spot))
    per_share = revalue(legs, returns, by_leg=True) / legs.units
    error = float(np.max(np.abs(per_share - np.asarray(exact)) / legs.strike))
    cells = count * n
    speedup = direct_s / grid_s

    def row(name: str, seconds: float, err: str, holds: str) -> list[object]:
        return [name, f"{count:,} x {n:,}", seconds, 1e9 * seconds / cells, err, holds]

    return [
        row("European legs", european_s, "-", "-"),
        row("American, direct", direct_s, "0 (reference)", "-"),
        row(
            f"American, premium grid ({speedup:.1f}x)",
            grid_s,
            f"{error:.1e}",
            "yes" if error <= TOLERANCE and speedup >= TARGET_SPEEDUP else "NO",
        ),
    ]


def main() -> None:
    rows = [r for count, n in SHAPES for r in measure(count, n)]
    harness.print_table(
        f"Option revaluation, Monte Carlo shape (draws x legs, one-day moves; targets: grid "
        f"error <= {TOLERANCE:g} x strike per share, >= {TARGET_SPEEDUP:g}x faster than direct)",
        ["legs", "draws x legs", "total s", "ns/cell", "max error / strike", "holds"],
        rows,
    )


if __name__ == "__main__":
    main()
