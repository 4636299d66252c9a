"""Monte Carlo revaluation of a book under the seeded factor draws (the P&L behind Monte Carlo
VaR/ES and its contributions), and the memo of distinct option legs' revaluations.

Every book of a session is revalued under the same draws (`RiskInputs.moves`: one covariance, one
seed). An option leg's price change per share under those draws depends only on the contract's
pricing inputs (spot, strike, time, rate, volatility, dividend yield, type, style) and on its
underlying's factor betas, not on the book that holds it; books that hold the same contract (a
listed option many managers trade) share it. `LegDraws` keeps those columns by their exact inputs
and draws, so a contract held by many books is repriced once per session per process; its bytes
are bounded (SIGMASIGHT_REVALUATION_MEMO_MB), past which new legs are revalued without being
kept. Being keyed by every input, a kept column is never stale.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from django.conf import settings

from analytics.calculations import revaluation

MONTE_CARLO_SEED = 20_261_124


@dataclass(frozen=True)
class RevaluedRows:
    """The Monte Carlo factor P&L (no residual) of a portfolio's first `rows` frame rows under
    the seeded draws of `cov` (SIGMASIGHT_MONTE_CARLO_DRAWS, MONTE_CARLO_SEED, horizon_days).
    P&L adds up over positions under the same draws, so a book that only appends rows (a
    what-if session's trades after its frozen base) revalues just the new ones."""

    rows: int
    horizon_days: int
    cov: np.ndarray
    pnl: np.ndarray

    def fits(self, rows: int, cov: np.ndarray | None, horizon_days: int) -> bool:
        return (
            cov is not None
            and self.rows <= rows
            and self.horizon_days == horizon_days
            and len(self.pnl) == settings.SIGMASIGHT_MONTE_CARLO_DRAWS
            and np.array_equal(self.cov, cov)
        )


@dataclass(frozen=True)
class PositionDraws:
    """Each position's P&L under the draws (draws x positions), held factored and never formed:
    a stock's is linear in the moves (`moves @ dollar[i]`), an option leg's is its revalued
    column. The contributions need only linear functionals of it (a tail's mean, the
    covariance with the book), which the factors give at a fraction of the cost: a book of 100
    positions under 10,000 draws of 17 factors spent 17 million multiply-adds and 8 MB on the
    full array, to average a hundred of its rows."""

    moves: np.ndarray  # (draws, factors)
    dollar: np.ndarray  # (positions, factors): a stock's dollar factor exposures; 0 for options
    legs: np.ndarray  # (draws, legs): the option legs' P&L
    rows: np.ndarray  # (legs,): each leg's position (its column)

    @property
    def shape(self) -> tuple[int, int]:
        return (len(self.moves), len(self.dollar))

    def tail_mean(self, draws: np.ndarray) -> np.ndarray:
        """(positions,) mean P&L over the `draws` selected (a boolean mask)."""
        mean = self.dollar @ self.moves[draws].mean(axis=0)
        mean[self.rows] += self.legs[draws].mean(axis=0)
        return np.asarray(mean, dtype=float)

    def weighted(self, weights: np.ndarray) -> np.ndarray:
        """(positions,) sum over the draws of each position's P&L x `weights` (draws,)."""
        total = self.dollar @ (self.moves.T @ weights)
        total[self.rows] += self.legs.T @ weights
        return np.asarray(total, dtype=float)

    def dense(self) -> np.ndarray:
        """The (draws, positions) array itself (for tests and small books)."""
        out = self.moves @ self.dollar.T
        out[:, self.rows] = self.legs
        return np.asarray(out, dtype=float)


@dataclass(frozen=True)
class Draws:
    """One set of seeded Monte Carlo draws revalued: the book's P&L (residual noise included),
    the noise drawn, and with `by_position` each position's P&L before the noise."""

    pnl: np.ndarray  # (draws,)
    noise: np.ndarray  # (draws,) residual_sd x N(0, 1), one draw per scenario
    positions: PositionDraws | None  # stocks linear, legs revalued


class SameDraws:
    """Revalue once per set of draws: the confidences of one portfolio share the seeded moves,
    so their Monte Carlo P&L is computed once (and its residual noise drawn once); the last
    draws stay readable (`draws`) for the contributions."""

    def __init__(self, revalue: Callable[[np.ndarray], Draws]) -> None:
        self._revalue = revalue
        self._moves: np.ndarray | None = None
        self.draws: Draws | None = None

    def __call__(self, moves: np.ndarray) -> np.ndarray:
        if self.draws is None or self._moves is None or not np.array_equal(self._moves, moves):
            self._moves, self.draws = moves, self._revalue(moves)
        return self.draws.pnl


class LegDraws:
    """The price change per share of distinct option legs under sets of factor moves (the Monte
    Carlo draws, a stress library's scenarios, the market scenarios), kept across books (module
    docstring). A leg is known by the bytes of its pricing inputs and its underlying's betas; a
    set of moves by a digest of its values (computed once per read-only array, else at each
    call). The MAX_SETS latest sets are kept, within the byte bound. Not shared across threads."""

    MAX_SETS = 8

    def __init__(self, max_bytes: int | None = None) -> None:
        self._max_bytes = max_bytes  # None: the setting SIGMASIGHT_REVALUATION_MEMO_MB
        self._seen: list[tuple[np.ndarray, bytes]] = []  # read-only arrays already digested
        self._sets: dict[bytes, dict[bytes, np.ndarray]] = {}  # oldest first
        self.bytes = 0
        self.revalued = 0  # legs revalued (not found), for tests and benchmarks

    @property
    def max_bytes(self) -> int:
        if self._max_bytes is not None:
            return self._max_bytes
        return int(settings.SIGMASIGHT_REVALUATION_MEMO_MB) * 2**20

    def __len__(self) -> int:
        return sum(len(columns) for columns in self._sets.values())

    def change(
        self, legs: revaluation.OptionLegs, betas: np.ndarray, moves: np.ndarray
    ) -> np.ndarray:
        """(scenarios, legs) price change per share of `legs` when each leg's underlying moves
        by `moves @ betas[leg]` (moves: scenarios x factors, betas: legs x factors), as
        `revaluation.revalue` gives it."""
        if not len(legs.rows):
            return np.zeros((len(moves), 0))
        columns = self._set(moves)
        keys = _leg_keys(legs, betas)
        new: dict[bytes, int] = {}
        for i, key in enumerate(keys):
            if key not in columns and key not in new:
                new[key] = i
        fresh: dict[bytes, np.ndarray] = {}
        if new:
            pick = np.fromiter(new.values(), dtype=np.intp, count=len(new))
            computed = revaluation.change_under(legs.subset(pick), betas[pick], moves).T.copy()
            fresh = dict(zip(new, computed, strict=True))
            self.revalued += len(new)
        out = np.column_stack([columns[key] if key in columns else fresh[key] for key in keys])
        for key, column in fresh.items():
            if self.bytes + column.nbytes > self.max_bytes:
                break
            columns[key] = column
            self.bytes += column.nbytes
        return out

    def _set(self, moves: np.ndarray) -> dict[bytes, np.ndarray]:
        """The columns kept under these moves (a new set, the oldest dropped past MAX_SETS)."""
        digest = next((d for a, d in self._seen if a is moves), None)
        if digest is None:
            digest = hashlib.blake2b(
                np.ascontiguousarray(moves).tobytes() + repr(moves.shape).encode(),
                digest_size=16,
            ).digest()
            if not moves.flags.writeable:
                self._seen = [*self._seen[-(self.MAX_SETS - 1) :], (moves, digest)]
        if digest not in self._sets:
            while len(self._sets) >= self.MAX_SETS:
                oldest = next(iter(self._sets))
                self.bytes -= sum(c.nbytes for c in self._sets.pop(oldest).values())
            self._sets[digest] = {}
        return self._sets[digest]


def _leg_keys(legs: revaluation.OptionLegs, betas: np.ndarray) -> list[bytes]:
    """Each leg's pricing inputs and betas as bytes (exact: equal bytes, equal revaluation)."""
    inputs = np.column_stack(
        [
            legs.spot,
            legs.strike,
            legs.years,
            legs.rate,
            legs.volatility,
            legs.dividend_yield,
            legs.is_call.astype(float),
            legs.american.astype(float),
            np.asarray(betas, dtype=float).reshape(len(legs.rows), -1),
        ]
    )
    return [row.tobytes() for row in np.ascontiguousarray(inputs)]


def full_revaluation(
    frame: pd.DataFrame,
    betas: np.ndarray,
    residual_var: float,
    known: RevaluedRows | None = None,
    *,
    by_position: bool = False,
    memo: LegDraws | None = None,
) -> Callable[[np.ndarray], Draws]:
    """P&L of the book under factor moves: every position's underlying moves by its own betas;
    stocks linearly (their dollar exposure to each factor, exposure x betas), options fully
    revalued (`revaluation.revalue`, through `memo` when given); plus the positions' residual
    risk as seeded normal noise (so a linear book converges to parametric). Rows already
    `known` under these draws add their P&L instead of being revalued. `by_position` (without
    `known`) keeps each position's P&L (draws x positions, factored: `PositionDraws`)."""
    if known is not None:
        frame, betas = frame.iloc[known.rows :], betas[known.rows :]
    legs = revaluation.OptionLegs.from_frame(frame)
    stock = ~frame["is_option"].to_numpy(dtype=bool)
    exposure = np.nan_to_num(frame["exposure"].to_numpy(dtype=float))
    # (positions, factors): a stock's exposure x betas; 0 for options (even without betas)
    dollar = np.where(stock[:, None], exposure[:, None] * betas, 0.0)
    noise = np.random.default_rng(MONTE_CARLO_SEED + 1)
    residual_sd = float(np.sqrt(max(residual_var, 0.0)))
    memo = memo if memo is not None else LegDraws()

    def revalue(moves: np.ndarray) -> Draws:
        legs_pnl = memo.change(legs, betas[legs.rows], moves) * legs.units
        positions = PositionDraws(moves, dollar, legs_pnl, legs.rows) if by_position else None
        pnl = moves @ dollar.sum(axis=0) + legs_pnl.sum(axis=1)
        if known is not None:
            pnl = known.pnl + pnl
        drawn = residual_sd * noise.standard_normal(len(moves))
        return Draws(pnl=pnl + drawn, noise=drawn, positions=positions)

    return revalue
