"""The one option revaluation (`analytics.calculations.revaluation`) against QuantLib's analytic
European engine and hand-worked Black-Scholes values.

Tolerances: our Black-Scholes and QuantLib's agree to ~1e-12 per share, so P&L (x units of a few
hundred) is compared with atol 1e-8 currency; identities of the floor are exact or 1e-12."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import QuantLib as ql

from analytics.calculations.revaluation import SPOT_FLOOR, OptionLegs, revalue, shocked_spot

TODAY = ql.Date(15, 1, 2024)
ATOL = 1e-8  # currency


def quantlib_price(spot: float, strike: float, days: int, rate: float, vol: float, call: bool):
    """Black-Scholes price per share by QuantLib (Actual/365 fixed, continuous flat rate)."""
    ql.Settings.instance().evaluationDate = TODAY
    day_count = ql.Actual365Fixed()
    process = ql.BlackScholesMertonProcess(
        ql.QuoteHandle(ql.SimpleQuote(spot)),
        ql.YieldTermStructureHandle(ql.FlatForward(TODAY, 0.0, day_count)),
        ql.YieldTermStructureHandle(ql.FlatForward(TODAY, rate, day_count)),
        ql.BlackVolTermStructureHandle(
            ql.BlackConstantVol(TODAY, ql.NullCalendar(), vol, day_count)
        ),
    )
    option = ql.VanillaOption(
        ql.PlainVanillaPayoff(ql.Option.Call if call else ql.Option.Put, strike),
        ql.EuropeanExercise(TODAY + days),
    )
    option.setPricingEngine(ql.AnalyticEuropeanEngine(process))
    return option.NPV()


def legs(**columns) -> OptionLegs:
    """Legs from lists; `days` becomes years (/ 365), rows count from 0."""
    days = np.asarray(columns.pop("days"), dtype=float)
    arrays = {k: np.asarray(v, dtype=bool if k == "is_call" else float) for k, v in columns.items()}
    return OptionLegs(rows=np.arange(len(days)), years=days / 365.0, **arrays)


def test_revalue_one_leg_hand_worked_and_quantlib():
    """Long 2 calls (x100) at S = K = 100, one year, r 5%, vol 20%: today's value is Hull's
    10.4506 per share; the P&L of a 10% move either way is 200 x the price change."""
    call = legs(
        spot=[100.0],
        strike=[100.0],
        days=[365],
        rate=[0.05],
        volatility=[0.2],
        is_call=[True],
        units=[200.0],
    )
    assert quantlib_price(100.0, 100.0, 365, 0.05, 0.2, True) == pytest.approx(
        10.450583572, abs=1e-9
    )
    moves = np.array([[-0.10], [0.0], [0.10]])
    expected = [
        (quantlib_price(100.0 * (1 + m), 100.0, 365, 0.05, 0.2, True) - 10.450583572185565) * 200
        for m in moves[:, 0]
    ]
    np.testing.assert_allclose(revalue(call, moves), expected, rtol=0, atol=ATOL)
    assert revalue(call, moves)[1] == 0.0  # no move, no P&L, exactly


def test_revalue_multi_underlying_book_matches_quantlib_per_leg():
    """Five legs on two underlyings (AAA at 100, BBB at 40), short and long, calls and puts; each
    scenario moves each underlying by its own return."""
    book = legs(
        spot=[100.0, 100.0, 40.0, 40.0, 100.0],
        strike=[95.0, 110.0, 40.0, 35.0, 100.0],
        days=[30, 90, 180, 400, 7],
        rate=[0.04, 0.04, 0.03, 0.03, 0.04],
        volatility=[0.25, 0.3, 0.5, 0.45, 0.8],
        is_call=[True, False, True, False, False],
        units=[100.0, -300.0, 500.0, -100.0, 1000.0],
    )
    on_aaa = np.array([True, True, False, False, True])
    scenarios = np.array([[-0.2, 0.1], [0.05, -0.3], [0.0, 0.0], [0.5, 1.0]])  # (AAA, BBB)
    returns = np.where(on_aaa[None, :], scenarios[:, [0]], scenarios[:, [1]])
    got = revalue(book, returns, by_leg=True)
    expected = np.array(
        [
            [
                (quantlib_price(s * (1 + r), k, d, rt, v, c) - quantlib_price(s, k, d, rt, v, c))
                * u
                for s, k, d, rt, v, c, u, r in zip(
                    book.spot,
                    book.strike,
                    [30, 90, 180, 400, 7],
                    book.rate,
                    book.volatility,
                    book.is_call,
                    book.units,
                    row,
                    strict=True,
                )
            ]
            for row in returns
        ]
    )
    np.testing.assert_allclose(got, expected, rtol=0, atol=ATOL)
    np.testing.assert_allclose(revalue(book, returns), got.sum(axis=1), rtol=1e-12, atol=1e-9)
    assert revalue(book, returns[1]).shape == (1,)  # a 1-d row of returns is one scenario


def test_floor_at_and_beyond_minus_100_percent_values_the_option_at_spot_zero():
    """A move of -100% or worse leaves the underlying at SPOT_FLOOR x spot, where a call is
    worth 0 and a put K e^-rT - S x 1e-6 (its value at spot 0, to 1e-4 per share): finite P&L,
    never the NaN Black-Scholes gives at a spot of 0."""
    book = legs(
        spot=[100.0, 100.0],
        strike=[100.0, 100.0],
        days=[182, 182],
        rate=[0.04, 0.04],
        volatility=[0.3, 0.3],
        is_call=[True, False],
        units=[100.0, 100.0],
    )
    base = np.array([quantlib_price(100.0, 100.0, 182, 0.04, 0.3, c) for c in (True, False)])
    at_zero = np.array([0.0, 100.0 * np.exp(-0.04 * 182 / 365) - 100.0 * SPOT_FLOOR])
    pnl = revalue(
        book, np.array([[-1.0, -1.0], [-1.5, -1.5], [-1.0 + 1e-7, -1.0 + 1e-7]]), by_leg=True
    )
    assert np.isfinite(pnl).all()
    np.testing.assert_allclose(pnl[0], (at_zero - base) * 100.0, rtol=1e-12, atol=ATOL)
    np.testing.assert_array_equal(pnl[1], pnl[0])  # beyond -100%: the same floor
    np.testing.assert_array_equal(pnl[2], pnl[0])  # within 1e-6 of -100%: floored too


def test_floor_near_zero_only_binds_below_a_millionth_of_the_spot():
    """A spot shocked to a thousandth or two millionths of itself is kept as it is."""
    spots = shocked_spot(np.array([100.0, 50.0, 80.0]), np.array([-0.999, -1.0 + 2e-6, -3.0]))
    np.testing.assert_allclose(spots, [0.1, 1e-4, 80.0 * SPOT_FLOOR], rtol=1e-9)
    put = legs(
        spot=[100.0],
        strike=[100.0],
        days=[182],
        rate=[0.04],
        volatility=[0.3],
        is_call=[False],
        units=[1.0],
    )
    near, floored = revalue(put, np.array([[-0.999], [-1.0]]))
    # Just above the floor a deep in-the-money put still moves one for one with the spot.
    assert near - floored == pytest.approx(-(0.1 - 100.0 * SPOT_FLOOR), abs=1e-9)


def test_revalue_nan_spot_is_nan_not_zero():
    book = legs(
        spot=[np.nan, 100.0],
        strike=[100.0, 100.0],
        days=[30, 30],
        rate=[0.04, 0.04],
        volatility=[0.3, 0.3],
        is_call=[True, True],
        units=[100.0, 100.0],
    )
    pnl = revalue(book, np.array([[0.1, 0.1]]), by_leg=True)
    assert np.isnan(pnl[0, 0]) and np.isfinite(pnl[0, 1])
    assert np.isnan(revalue(book, np.array([[0.1, 0.1]]))[0])


def book_frame_rows() -> pd.DataFrame:
    """A stock, a call, a put without volatility (not revalued) and a put, as a book frame."""
    return pd.DataFrame(
        {
            "is_option": [False, True, True, True],
            "option_type": ["", "C", "P", "P"],
            "volatility": [np.nan, 0.25, np.nan, 0.4],
            "underlying_price": [50.0, 100.0, 100.0, 40.0],
            "strike": [np.nan, 105.0, 90.0, 35.0],
            "days_to_expiry": [np.nan, 73.0, 30.0, 365.0],
            "risk_free_rate": [np.nan, 0.04, 0.04, 0.03],
            "quantity": [10.0, -2.0, 1.0, 3.0],
            "multiplier": [1.0, 100.0, 100.0, 100.0],
        }
    )


def test_option_legs_from_frame():
    book = OptionLegs.from_frame(book_frame_rows())
    np.testing.assert_array_equal(book.rows, [1, 3])
    np.testing.assert_array_equal(book.spot, [100.0, 40.0])
    np.testing.assert_array_equal(book.strike, [105.0, 35.0])
    np.testing.assert_allclose(book.years, [0.2, 1.0], rtol=1e-15)
    np.testing.assert_array_equal(book.rate, [0.04, 0.03])
    np.testing.assert_array_equal(book.volatility, [0.25, 0.4])
    np.testing.assert_array_equal(book.is_call, [True, False])
    np.testing.assert_array_equal(book.units, [-200.0, 300.0])


@pytest.mark.parametrize("frame", [book_frame_rows().iloc[:1], book_frame_rows().iloc[:0]])
def test_empty_book_has_no_legs_and_zero_pnl(frame):
    """Stocks only, or no position at all: no legs, P&L 0 in every scenario."""
    book = OptionLegs.from_frame(frame)
    assert len(book.rows) == 0
    np.testing.assert_array_equal(revalue(book, np.zeros((3, 0))), np.zeros(3))
    assert revalue(book, np.zeros((3, 0)), by_leg=True).shape == (3, 0)
