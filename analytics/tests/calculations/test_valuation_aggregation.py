"""Valuation and aggregation against hand-worked examples (no database)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analytics.calculations import aggregation
from analytics.calculations.valuation import value_positions


def test_valuation_hand_worked_long_short_and_options():
    # long 100 AAPL @150 now 160 (prev 158); short 50 TSLA @200 now 190 (prev 195);
    # long 2 calls entered 3.00 now 4.50 (prev 4.00); short 3 puts entered 2.00 now 1.20 (prev 1.50)
    v = value_positions(
        quantity=np.array([100, -50, 2, -3]),
        price=np.array([160.0, 190.0, 4.5, 1.2]),
        previous_price=np.array([158.0, 195.0, 4.0, 1.5]),
        entry_price=np.array([150.0, 200.0, 3.0, 2.0]),
        multiplier=np.array([1, 1, 100, 100]),
    )
    np.testing.assert_allclose(v.market_value, [16000, 9500, 900, 360], rtol=0, atol=1e-9)
    np.testing.assert_allclose(v.exposure, [16000, -9500, 900, -360], rtol=0, atol=1e-9)
    np.testing.assert_allclose(v.unrealized_pnl, [1000, 500, 300, 240], rtol=0, atol=1e-9)
    np.testing.assert_allclose(v.daily_pnl, [200, 250, 100, 90], rtol=0, atol=1e-9)


def test_valuation_missing_price_is_nan_not_zero():
    v = value_positions(
        quantity=np.array([10.0]),
        price=np.array([np.nan]),
        previous_price=np.array([1.0]),
        entry_price=np.array([1.0]),
        multiplier=np.array([1]),
    )
    assert np.isnan(v.market_value[0]) and np.isnan(v.exposure[0])


def _book() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "exposure": [16000.0, -9500.0, 900.0, -360.0, np.nan],
            "market_value": [16000.0, 9500.0, 900.0, 360.0, np.nan],
            "is_option": [False, False, True, True, False],
            "quantity": [100.0, -50.0, 2.0, -3.0, 5.0],
            "multiplier": [1.0, 1.0, 100.0, 100.0, 1.0],
            "underlying_price": [160.0, 190.0, 160.0, 50.0, np.nan],
            "delta": [100.0, -50.0, 120.0, 90.0, np.nan],
            "gamma": [0.0, 0.0, 4.0, -6.0, np.nan],
            "theta": [0.0, 0.0, -10.0, 6.0, np.nan],
            "vega": [0.0, 0.0, 30.0, -18.0, np.nan],
            "rho": [0.0, 0.0, 5.0, 3.0, np.nan],
        }
    )


def test_exposures_hand_worked_with_shorts_options_and_an_unvalued_position():
    e = aggregation.exposures(_book())
    assert e == {
        "gross": 26760.0,
        "net": 7040.0,
        "long": 16900.0,
        "short": -9860.0,
        "long_count": 2,
        "short_count": 2,
        "options": 1260.0,
        "stock": 25500.0,
        "notional": 16000.0 + 9500.0 + 2 * 100 * 160.0 + 3 * 100 * 50.0,
        "unvalued": 1,
    }
    assert e["gross"] == e["long"] + abs(e["short"])
    assert e["net"] == e["long"] - abs(e["short"])


def test_portfolio_greeks_and_dollar_delta_hand_worked():
    g = aggregation.greeks(_book())
    assert g == {
        "delta": 260.0,
        "gamma": -2.0,
        "theta": -4.0,
        "vega": 12.0,
        "rho": 8.0,
        "dollar_delta": 100 * 160.0 - 50 * 190.0 + 120 * 160.0 + 90 * 50.0,
    }


def test_empty_portfolio_aggregates_to_zero():
    empty = _book().iloc[0:0]
    assert aggregation.exposures(empty)["gross"] == 0.0
    assert aggregation.exposures(empty)["long_count"] == 0
    assert aggregation.greeks(empty)["dollar_delta"] == 0.0


def test_by_underlying_and_by_tags():
    book = _book()
    groups = aggregation.by_key(book, ["AAPL", "TSLA", "AAPL", "KO", "MSFT"])
    assert groups["AAPL"]["exposures"]["net"] == 16900.0
    assert groups["AAPL"]["greeks"]["delta"] == 220.0
    tags = [{"growth"}, {"hedge"}, {"growth", "hedge"}, set(), {"Growth"}]
    assert aggregation.by_tags(book, tags, ["growth"])["positions"] == 3
    assert aggregation.by_tags(book, tags, ["growth", "hedge"], mode="all")["positions"] == 1
    assert (
        aggregation.by_tags(book, tags, ["growth", "hedge"], mode="all")["exposures"]["net"]
        == 900.0
    )


def test_10000_position_book_matches_plain_sums():
    rng = np.random.default_rng(3)
    n = 10_000
    quantity = rng.integers(-500, 500, n).astype(float)
    quantity[quantity == 0] = 1
    price = rng.uniform(1, 500, n)
    frame = pd.DataFrame(
        {
            "exposure": quantity * price,
            "market_value": np.abs(quantity) * price,
            "is_option": rng.random(n) < 0.4,
            "quantity": quantity,
            "multiplier": 1.0,
            "underlying_price": price,
            "delta": quantity,
            "gamma": 0.0,
            "theta": 0.0,
            "vega": 0.0,
            "rho": 0.0,
        }
    )
    e = aggregation.exposures(frame)
    exposure = quantity * price
    assert e["gross"] == pytest.approx(np.abs(exposure).sum(), rel=1e-12)
    assert e["short"] == pytest.approx(exposure[exposure < 0].sum(), rel=1e-12)
    assert e["long_count"] + e["short_count"] == n
    assert aggregation.greeks(frame)["dollar_delta"] == pytest.approx(exposure.sum(), rel=1e-12)
