from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from analytics.calculations.revaluation import OptionLegs
from analytics.calculations.scenarios import accuracy, market_scenarios, rate_scenarios
from marketdata.calculations import black_scholes as bs

# No stocks, and the straddle's two legs on an underlying with market beta 1.
NO_STOCKS: dict[str, Any] = {
    "stock_exposure": np.zeros(0),
    "stock_beta": np.zeros(0),
    "option_beta": np.ones(2),
}


def straddle(units: float) -> OptionLegs:
    return OptionLegs(
        rows=np.array([0, 1]),
        spot=np.array([100.0, 100.0]),
        strike=np.array([100.0, 100.0]),
        years=np.array([0.25, 0.25]),
        rate=np.array([0.04, 0.04]),
        volatility=np.array([0.3, 0.3]),
        is_call=np.array([True, False]),
        units=np.array([units, units]),
        dividend_yield=np.array([0.0, 0.0]),
        american=np.array([False, False]),
    )


def test_short_straddle_full_revaluation_loses_more_than_delta_says():
    """Negative gamma: whichever way the market moves 10%, the full revaluation is worse than
    the (near zero) delta-only P&L, by roughly 1/2 gamma x move^2."""
    result = market_scenarios(np.array([-0.10, 0.10]), options=straddle(-100.0), **NO_STOCKS)
    assert np.all(result.full < result.delta_only)
    greeks = bs.greeks(100.0, 100.0, 0.25, 0.04, 0.3, np.array([True, False]))
    gamma_pnl = 0.5 * (greeks.gamma.sum() * -100.0) * (100.0 * 0.10) ** 2
    np.testing.assert_allclose(result.full - result.delta_only, gamma_pnl, rtol=0.15)


def test_long_straddle_convexity_has_the_opposite_sign():
    result = market_scenarios(np.array([-0.10, 0.10]), options=straddle(100.0), **NO_STOCKS)
    assert np.all(result.full > result.delta_only)


def test_stocks_move_by_exposure_times_beta():
    none = np.zeros(0)
    no = np.zeros(0, dtype=bool)
    empty = OptionLegs(np.zeros(0, dtype=int), none, none, none, none, none, no, none, none, no)
    result = market_scenarios(
        np.array([-0.01, 0.01]),
        stock_exposure=np.array([100_000.0, -50_000.0]),
        stock_beta=np.array([1.2, np.nan]),
        options=empty,
        option_beta=np.zeros(0),
    )
    np.testing.assert_allclose(result.full, [-1200.0, 1200.0])
    np.testing.assert_allclose(result.delta_only, result.full)


def test_american_legs_use_their_own_model_for_full_and_delta_only():
    """An American put deep in the money on a stock paying 2% is exercised now: its delta is -1
    (the European one is -0.955), and its full revaluation moves with K - S."""
    put = OptionLegs(
        rows=np.array([0]),
        spot=np.array([100.0]),
        strike=np.array([160.0]),
        years=np.array([1.0]),
        rate=np.array([0.08]),
        volatility=np.array([0.2]),
        is_call=np.array([False]),
        units=np.array([100.0]),
        dividend_yield=np.array([0.02]),
        american=np.array([True]),
    )
    moves = np.array([-0.05, 0.05])
    result = market_scenarios(moves, options=put, **{**NO_STOCKS, "option_beta": np.ones(1)})
    np.testing.assert_allclose(result.delta_only, [500.0, -500.0], rtol=1e-12)
    np.testing.assert_allclose(result.full, [500.0, -500.0], rtol=1e-12)
    european = bs.greeks(100.0, 160.0, 1.0, 0.08, 0.2, False, 0.02).delta
    assert european == pytest.approx(-0.955, abs=1e-3)


def test_small_moves_full_and_delta_agree():
    result = market_scenarios(np.array([1e-5]), options=straddle(-10.0), **NO_STOCKS)
    assert result.full[0] == pytest.approx(result.delta_only[0], abs=1e-4)


def test_rate_scenarios():
    pnl = rate_scenarios(
        np.array([-0.005, 0.005]), values=np.array([1e6, 2e5]), ir_betas=np.array([-17.0, np.nan])
    )
    np.testing.assert_allclose(pnl, [85_000.0, -85_000.0])


def test_accuracy_hand_worked():
    result = accuracy(np.array([1.0, -2.0, 3.0, np.nan]), np.array([2.0, -1.0, -3.0, 5.0]))
    assert result["observations"] == 3
    assert result["rmse"] == pytest.approx(np.sqrt((1 + 1 + 36) / 3))
    assert result["hit_rate"] == pytest.approx(2 / 3)
    assert result["correlation"] == pytest.approx(np.corrcoef([1, -2, 3], [2, -1, -3])[0, 1])
