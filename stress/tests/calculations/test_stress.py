from __future__ import annotations

import numpy as np
import pytest

from analytics.calculations.revaluation import OptionLegs
from analytics.calculations.risk import ewma_covariance
from stress.calculations.stress import conditional_moves, nearest_psd, position_pnl

NO_OPTIONS = OptionLegs(
    *(np.zeros(0, dtype=int) for _ in range(1)), *(np.zeros(0) for _ in range(9))
)


def test_ewma_matches_a_hand_rolled_recursion_and_is_a_correlation_source():
    rng = np.random.default_rng(5)
    returns = (
        rng.standard_normal((300, 4))
        @ np.array([[1, 0.5, 0, 0], [0, 1, 0.3, 0], [0, 0, 1, 0.2], [0, 0, 0, 1]])
        * 0.01
    )
    cov = ewma_covariance(returns, lam=0.94)
    seed = np.cov(returns[:20], rowvar=False)
    hand = seed.copy()
    for r in returns[20:]:
        hand = 0.94 * hand + 0.06 * np.outer(r, r)
    np.testing.assert_allclose(cov, hand, rtol=1e-12, atol=1e-16)
    np.testing.assert_allclose(cov, cov.T, atol=0)
    assert np.linalg.eigvalsh(cov).min() >= 0
    corr = cov / np.sqrt(np.outer(np.diag(cov), np.diag(cov)))
    np.testing.assert_allclose(np.diag(corr), 1.0, atol=1e-12)


def test_perfectly_correlated_factor_moves_by_the_same_z_score():
    # Factor 1 is exactly twice factor 0: a 1-sigma shock to 0 moves 1 by its own 1 sigma.
    base = np.random.default_rng(1).standard_normal(500) * 0.01
    cov = np.cov(
        np.column_stack([base, 2 * base, np.random.default_rng(2).standard_normal(500) * 0.01]),
        rowvar=False,
    )
    sigma = np.sqrt(np.diag(cov))
    moves = conditional_moves(cov, np.array([0]), np.array([-3 * sigma[0]]))
    assert moves[1] / sigma[1] == pytest.approx(-3.0, rel=1e-9)
    assert abs(moves[2] / sigma[2]) < 0.2  # independent factor barely moves


def test_conditional_moves_keep_the_shocks_and_match_the_closed_form():
    cov = np.array([[4.0, 2.0, 1.0], [2.0, 9.0, 3.0], [1.0, 3.0, 16.0]]) * 1e-4
    moves = conditional_moves(cov, np.array([0, 2]), np.array([-0.1, 0.05]))
    expected_other = float(
        cov[1, [0, 2]] @ np.linalg.solve(cov[np.ix_([0, 2], [0, 2])], [-0.1, 0.05])
    )
    np.testing.assert_allclose(moves, [-0.1, expected_other, 0.05], rtol=1e-12)


def test_nearest_psd_repairs_an_inconsistent_matrix():
    bad = np.array([[1.0, 0.9, -0.9], [0.9, 1.0, 0.9], [-0.9, 0.9, 1.0]])
    fixed = nearest_psd(bad)
    assert np.linalg.eigvalsh(bad).min() < 0
    assert np.linalg.eigvalsh(fixed).min() >= -1e-12
    np.testing.assert_allclose(fixed, fixed.T)


def test_spy_book_under_market_down_10_loses_exposure_times_beta_times_10pct():
    dollar = np.array([[250_000.0 * 1.0, 0.0]])  # exposure x beta to (Market, Value)
    pnl = position_pnl(
        np.array([-0.10, 0.0]), dollar=dollar, betas=np.array([[1.0, 0.0]]), options=NO_OPTIONS
    )
    assert pnl[0, 0] == pytest.approx(-25_000.0)


def test_options_are_fully_revalued_at_the_implied_underlying_move():
    legs = OptionLegs(
        rows=np.array([0]),
        spot=np.array([100.0]),
        strike=np.array([100.0]),
        years=np.array([0.1]),
        rate=np.array([0.03]),
        volatility=np.array([0.25]),
        is_call=np.array([False]),
        units=np.array([100.0]),
        dividend_yield=np.array([0.0]),
        american=np.array([False]),
    )
    betas = np.array([[1.5, 0.0]])
    pnl = position_pnl(np.array([[-0.20, 0.0]]), dollar=np.zeros((1, 2)), betas=betas, options=legs)
    from marketdata.calculations import black_scholes as bs

    expected = (
        bs.price(70.0, 100.0, 0.1, 0.03, 0.25, False)
        - bs.price(100.0, 100.0, 0.1, 0.03, 0.25, False)
    ) * 100
    assert pnl[0, 0] == pytest.approx(float(expected), rel=1e-12)
