"""Stress P&L and market scenarios through the shared memo of option legs' revaluations
(analytics.montecarlo.LegDraws): the numbers of pricing every leg, each contract priced once."""

from __future__ import annotations

import numpy as np

from analytics.calculations.scenarios import market_scenarios
from analytics.montecarlo import LegDraws
from analytics.tests.services.test_leg_draws import K, legs
from stress.calculations.stress import position_pnl


def test_stress_and_market_scenarios_through_the_memo_are_unchanged():
    """The stress library and the market scenarios priced through a shared memo: the same
    P&L, and a second book of the same contracts reprices nothing."""
    memo, four = LegDraws(), legs()
    betas = np.tile([1.1, 0.2, -0.3], (4, 1))
    shocks = np.array([[-0.2, 0.05, 0.0], [0.1, -0.02, 0.01]])
    dollar = np.zeros((4, K))
    plain = position_pnl(shocks, dollar=dollar, betas=betas, options=four)
    shared = position_pnl(shocks, dollar=dollar, betas=betas, options=four, change=memo.change)
    np.testing.assert_array_equal(plain, shared)
    again = position_pnl(shocks, dollar=dollar, betas=betas, options=four, change=memo.change)
    np.testing.assert_array_equal(plain, again)
    assert memo.revalued == 4
    moves = np.array([-0.1, -0.05, 0.05, 0.1])
    beta = np.array([1.2, 0.8, 1.0, 1.5])
    none = np.zeros(0)
    one = market_scenarios(
        moves, stock_exposure=none, stock_beta=none, options=four, option_beta=beta
    )
    two = market_scenarios(
        moves,
        stock_exposure=none,
        stock_beta=none,
        options=four,
        option_beta=beta,
        change=memo.change,
    )
    np.testing.assert_array_equal(one.full, two.full)
    assert memo.revalued == 8
