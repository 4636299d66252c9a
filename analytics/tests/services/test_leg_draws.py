"""The memo of distinct option legs' Monte Carlo revaluations (analytics.montecarlo.LegDraws):
books holding the same contract reprice it once under the session's draws, and every book's
Monte Carlo P&L and VaR are what it gets revalued alone."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import numpy as np
import pytest

from analytics import batch
from analytics import risk_metrics as rm
from analytics.calculations import revaluation
from analytics.models import RiskMetricSnapshot
from analytics.montecarlo import LegDraws
from analytics.risk_services import factors_compute
from analytics.selectors import ReadCache
from analytics.services import greeks_compute, positions_value
from analytics.tests.helpers import SERIES
from analytics.tests.services.test_contributions_store import AS_OF, EXP, prices
from portfolios.tests.factories import PortfolioFactory, option, stock

N, K = 10_000, 3


def legs(count: int = 4) -> revaluation.OptionLegs:
    """American and European calls and puts (American puts exercise early: the grid)."""
    i = np.arange(count)
    return revaluation.OptionLegs(
        rows=i.astype(np.intp),
        spot=np.full(count, 100.0),
        strike=(90.0 + 10.0 * (i % 3)).astype(np.float64),
        years=np.full(count, 0.5),
        rate=np.full(count, 0.04),
        volatility=(0.2 + 0.05 * (i % 2)).astype(np.float64),
        is_call=i % 2 == 0,
        units=np.full(count, 100.0),
        dividend_yield=np.full(count, 0.01),
        american=i % 4 != 3,
    )


def draws(seed: int = 1) -> np.ndarray:
    moves = np.random.default_rng(seed).normal(0.0, 0.01, (N, K))
    moves.flags.writeable = False
    return moves


def alone(each: revaluation.OptionLegs, betas: np.ndarray, moves: np.ndarray) -> np.ndarray:
    """Per-share change of every leg revalued without the memo."""
    ones = replace(each, units=np.ones(len(each.rows)))
    return revaluation.revalue(ones, moves @ betas.T, by_leg=True)


def test_a_leg_is_revalued_once_and_reads_back_the_same_change():
    memo, moves = LegDraws(), draws()
    four = legs()
    betas = np.tile([1.1, 0.2, -0.3], (4, 1))
    first = memo.change(four, betas, moves)
    np.testing.assert_array_equal(first, alone(four, betas, moves))
    assert memo.revalued == 4 and len(memo) == 4 and memo.bytes == 4 * N * 8
    # Another book: two of the same legs (repeated) and one new; only the new one is revalued.
    other = four.subset(np.array([2, 0, 2]))
    other = replace(other, strike=np.append(other.strike[:2], 125.0))
    changed = memo.change(other, betas[:3], moves)
    assert memo.revalued == 5
    np.testing.assert_array_equal(changed[:, :2], first[:, [2, 0]])
    np.testing.assert_allclose(changed, alone(other, betas[:3], moves), rtol=1e-13, atol=1e-12)


def test_the_underlyings_betas_are_part_of_a_legs_identity():
    memo, moves = LegDraws(), draws()
    one = legs(1)
    a = memo.change(one, np.array([[1.0, 0.0, 0.0]]), moves)
    b = memo.change(one, np.array([[0.0, 1.0, 0.0]]), moves)
    assert memo.revalued == 2 and not np.array_equal(a, b)
    np.testing.assert_array_equal(b, alone(one, np.array([[0.0, 1.0, 0.0]]), moves))


def test_sets_of_moves_are_kept_apart_and_the_oldest_dropped_past_max_sets():
    memo, four, betas = LegDraws(), legs(), np.ones((4, K))
    memo.change(four, betas, draws(1))
    memo.change(four, betas, draws(1))  # equal values in a new array: still known
    assert memo.revalued == 4
    fresh = memo.change(four, betas, draws(2))
    assert memo.revalued == 8 and len(memo) == 8
    np.testing.assert_array_equal(fresh, alone(four, betas, draws(2)))
    scenarios = np.array([[-0.1, 0.0, 0.0], [0.05, 0.01, 0.0]])  # writeable: digested each call
    np.testing.assert_array_equal(
        memo.change(four, betas, scenarios), alone(four, betas, scenarios)
    )
    memo.change(four, betas, scenarios.copy())
    assert memo.revalued == 12
    for seed in range(3, 1 + LegDraws.MAX_SETS):  # one set more than MAX_SETS in all
        memo.change(four, betas, draws(seed))
    assert len(memo) == 4 * LegDraws.MAX_SETS
    assert memo.bytes == 4 * 8 * (N * (LegDraws.MAX_SETS - 1) + 2)  # the scenarios' set is kept
    memo.change(four, betas, draws(1))  # the first set was dropped: revalued again
    assert memo.revalued == 12 + 4 * (LegDraws.MAX_SETS - 2) + 4


def test_past_its_bytes_nothing_more_is_kept_and_the_numbers_hold():
    memo, moves, four, betas = LegDraws(max_bytes=2 * N * 8), draws(), legs(), np.ones((4, K))
    first = memo.change(four, betas, moves)
    assert len(memo) == 2 and memo.bytes == 2 * N * 8
    again = memo.change(four, betas, moves)
    assert memo.revalued == 6  # the two not kept, again
    np.testing.assert_array_equal(first, again)
    nothing = LegDraws(max_bytes=0)
    np.testing.assert_array_equal(nothing.change(four, betas, moves), first)
    assert len(nothing) == 0


def test_a_book_without_options_revalues_nothing():
    memo = LegDraws()
    out = memo.change(legs().subset(np.array([], dtype=np.intp)), np.zeros((0, K)), draws())
    assert out.shape == (N, 0) and memo.revalued == 0


@pytest.mark.django_db
def test_books_sharing_contracts_get_the_var_they_get_alone(user, other_user):
    """Three books, two of them (different owners, sizes and signs) holding the same AAPL put:
    the job revalues the distinct contracts once and stores what each book gets by itself."""
    books = [PortfolioFactory(owner=u, cash=Decimal("100000")) for u in (user, other_user, user)]
    held = [
        option(books[0], "AAPL", EXP, "P", "400", "2"),
        option(books[1], "AAPL", EXP, "P", "400", "-5"),
        option(books[2], "AAPL", EXP, "C", "450", "1"),
    ]
    stock(books[1], "AAPL", "30")
    prices(["AAPL", *SERIES, *{leg.symbol for leg in held}])
    ids = [b.pk for b in books]
    for job in (positions_value, greeks_compute, factors_compute):
        job(as_of=AS_OF, portfolio_ids=ids)
    reads = ReadCache()
    rm.risk_metrics_compute(as_of=AS_OF, portfolio_ids=ids, reads=reads)
    assert reads.legs.revalued == 2 and len(reads.legs) == 2
    shared = dict(
        RiskMetricSnapshot.objects.filter(date=AS_OF, confidence=0.99).values_list(
            "portfolio_id", "var_monte_carlo"
        )
    )
    one_by_one = {}
    for pk in ids:
        alone_reads = ReadCache()
        rm.risk_metrics_compute(as_of=AS_OF, portfolio_ids=[pk], reads=alone_reads)
        assert alone_reads.legs.revalued == 1
        one_by_one[pk] = RiskMetricSnapshot.objects.get(
            portfolio_id=pk, date=AS_OF, confidence=0.99
        ).var_monte_carlo
    for pk in ids:
        var = shared[pk]
        assert var is not None and var > 0
        assert one_by_one[pk] == pytest.approx(var, rel=1e-12)


def test_a_workers_read_caches_share_its_memo():
    kept = LegDraws()
    first, second = (batch.job_reads("market_risk", None, kept) for _ in range(2))
    assert first is not None and second is not None and first.legs is second.legs is kept
    assert batch.job_reads("market_data", None, kept) is None  # writes what it reads
    assert batch.job_reads("stress").legs is not kept  # type: ignore[union-attr]
