"""The value path of today's book and its returns, against independent computations on arch's
S&P 500 and NASDAQ closes (1999-2018) and hand-worked examples."""

from __future__ import annotations

import empyrical
import numpy as np
import pandas as pd
import pytest
from arch.data import nasdaq, sp500

from analytics.calculations import risk
from analytics.calculations.book_path import book_path


@pytest.fixture(scope="module")
def closes() -> pd.DataFrame:
    frame = pd.DataFrame({"SPX": sp500.load()["Adj Close"], "NDX": nasdaq.load()["Adj Close"]})
    frame.index = [d.date() for d in frame.index]
    return frame


def test_an_index_only_book_has_the_index_returns_beta_one_and_its_drawdown(closes):
    year = closes.loc[pd.Timestamp("2008-01-01").date() : pd.Timestamp("2008-12-31").date()]
    path = book_path(pd.Series({"SPX": 3.0}), year, cash=0.0)
    index_returns = year["SPX"].pct_change().dropna().to_numpy()
    assert path.normalized_by == "equity"
    np.testing.assert_allclose(path.returns, index_returns, rtol=1e-12, atol=0)
    assert risk.beta(path.returns, index_returns) == pytest.approx(1.0, abs=1e-9)
    drawdown = risk.max_drawdown(path.returns)
    # The index's own fall over 2008 (empyrical on its returns, and peak to trough by hand).
    np.testing.assert_allclose(drawdown, empyrical.max_drawdown(index_returns), rtol=1e-10)
    prices = year["SPX"].to_numpy()
    by_hand = np.min(prices / np.maximum.accumulate(prices) - 1.0)
    np.testing.assert_allclose(drawdown, by_hand, rtol=1e-10)
    assert -0.50 < drawdown < -0.45


def test_returns_divide_by_the_value_of_the_previous_session_not_todays(closes):
    # 2 units of each index and 1,000 of cash: r_t = P&L_t / V_{t-1}, computed independently.
    window = closes.iloc[-300:]
    path = book_path(pd.Series({"SPX": 2.0, "NDX": 2.0}), window, cash=1000.0)
    value = 1000.0 + 2.0 * window["SPX"] + 2.0 * window["NDX"]
    expected = (value.diff() / value.shift(1)).dropna().to_numpy()
    np.testing.assert_allclose(path.returns, expected, rtol=1e-12)
    np.testing.assert_allclose(path.pnl, value.diff().dropna().to_numpy(), rtol=1e-12)


def test_a_session_a_series_lacks_is_spanned_not_invented(closes):
    window = closes[["SPX"]].iloc[-100:].copy()
    hole = window.index[50]
    window.loc[hole, "SPX"] = np.nan
    path = book_path(pd.Series({"SPX": 1.0}), window, cash=0.0)
    assert hole not in path.sessions and len(path.returns) == 98
    prices = window["SPX"]
    spanned = prices.iloc[51] / prices.iloc[49] - 1.0
    assert path.returns[49] == pytest.approx(spanned, rel=1e-13)
    assert path.coverage == {"SPX": 99}


def test_a_short_book_without_cash_divides_by_gross(closes):
    window = closes[["SPX"]].iloc[-120:]
    path = book_path(pd.Series({"SPX": -4.0}), window, cash=0.0)
    assert path.normalized_by == "gross"
    np.testing.assert_allclose(path.returns, -window["SPX"].pct_change().dropna(), rtol=1e-12)


def test_a_value_path_crossing_zero_uses_gross_for_every_return():
    # Cash 100 and short one share: value 100 - price; it is +10 at 90 and -20 at 120.
    prices = pd.DataFrame({"X": [90.0, 120.0, 100.0]})
    path = book_path(pd.Series({"X": -1.0}), prices, cash=100.0)
    np.testing.assert_allclose(path.value, [10.0, -20.0, 0.0])
    assert path.normalized_by == "gross"
    np.testing.assert_allclose(path.returns, [-30.0 / 90.0, 20.0 / 120.0])


def test_a_drawdown_never_goes_below_minus_one():
    assert risk.max_drawdown(np.array([0.1, -1.5, 0.5])) == -1.0
    assert risk.max_drawdown(np.array([-1.0, 0.2])) == -1.0


def test_overlapping_horizon_pnl_is_the_value_change_over_h_sessions(closes):
    window = closes.iloc[-80:]
    path = book_path(pd.Series({"SPX": 1.0, "NDX": -0.5}), window, cash=50.0)
    value = 50.0 + window["SPX"] - 0.5 * window["NDX"]
    np.testing.assert_allclose(path.horizon_pnl(10), (value - value.shift(10)).dropna(), rtol=1e-12)
    np.testing.assert_allclose(path.horizon_pnl(1), path.pnl, rtol=0)
    assert len(book_path(pd.Series({"SPX": 1.0}), window.iloc[:5], 0.0).horizon_pnl(10)) == 0


def test_an_empty_book_is_its_cash():
    prices = pd.DataFrame(index=range(3))
    path = book_path(pd.Series(dtype=float), prices, cash=25.0)
    np.testing.assert_allclose(path.value, [25.0, 25.0, 25.0])
    np.testing.assert_allclose(path.pnl, [0.0, 0.0])
