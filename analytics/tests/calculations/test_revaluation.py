"""The one option revaluation (`analytics.calculations.revaluation`) against QuantLib's analytic
European engine (with and without a dividend yield), hand-worked Black-Scholes values and, for
American legs, the options facade itself (QuantLib's Bjerksund-Stensland engine is the 1993
model, ours the 2002 one).

Tolerances: our Black-Scholes-Merton and QuantLib's agree to ~1e-12 per share, so P&L (x units of
a few hundred) is compared with atol 1e-8 currency; identities of the floor are exact or 1e-12;
American legs priced directly are the facade's prices exactly, and through the premium grid
within 1e-7 x strike per share (the bound measured in the module docstring)."""

from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import QuantLib as ql

from analytics.calculations import revaluation
from analytics.calculations.revaluation import (
    MIN_GRID_NODES,
    SPOT_FLOOR,
    OptionLegs,
    grid_nodes,
    revalue,
    shocked_spot,
)
from marketdata.calculations import options

TODAY = ql.Date(15, 1, 2024)
ATOL = 1e-8  # currency


def quantlib_price(
    spot: float,
    strike: float,
    days: int,
    rate: float,
    vol: float,
    call: bool,
    dividend_yield: float = 0.0,
):
    """Black-Scholes-Merton price per share by QuantLib (Actual/365 fixed, continuous flat rate
    and dividend yield)."""
    ql.Settings.instance().evaluationDate = TODAY
    day_count = ql.Actual365Fixed()
    process = ql.BlackScholesMertonProcess(
        ql.QuoteHandle(ql.SimpleQuote(spot)),
        ql.YieldTermStructureHandle(ql.FlatForward(TODAY, dividend_yield, day_count)),
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
    """Legs from lists; `days` becomes years (/ 365), rows count from 0; European without a
    dividend yield unless `dividend_yield` and `american` say otherwise."""
    days = np.asarray(columns.pop("days"), dtype=float)
    columns.setdefault("dividend_yield", np.zeros(len(days)))
    columns.setdefault("american", np.zeros(len(days), dtype=bool))
    arrays = {
        k: np.asarray(v, dtype=bool if k in ("is_call", "american") else float)
        for k, v in columns.items()
    }
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
    """A stock, an American call, a put without volatility (not revalued, nor its style read)
    and a European put, as a book frame."""
    return pd.DataFrame(
        {
            "is_option": [False, True, True, True],
            "option_type": ["", "C", "P", "P"],
            "volatility": [np.nan, 0.25, np.nan, 0.4],
            "underlying_price": [50.0, 100.0, 100.0, 40.0],
            "strike": [np.nan, 105.0, 90.0, 35.0],
            "days_to_expiry": [np.nan, 73.0, 30.0, 365.0],
            "risk_free_rate": [np.nan, 0.04, 0.04, 0.03],
            "dividend_yield": [np.nan, 0.015, 0.0, 0.02],
            "exercise_style": [None, "american", None, "european"],
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
    np.testing.assert_array_equal(book.dividend_yield, [0.015, 0.02])
    np.testing.assert_array_equal(book.american, [True, False])


@pytest.mark.parametrize(
    ("style", "named"),
    [("American", "'American'"), ("bermudan", "'bermudan'"), ("", "''"), (None, "None")],
)
def test_option_legs_from_frame_refuses_an_unknown_style_by_name(style, named):
    frame = book_frame_rows()
    frame.loc[3, "exercise_style"] = style
    with pytest.raises(ValueError, match=f"Unknown exercise style {named}: an option is"):
        OptionLegs.from_frame(frame)


def test_option_legs_from_frame_keeps_a_nan_dividend_yield_as_nan():
    frame = book_frame_rows()
    frame.loc[1, "dividend_yield"] = np.nan
    book = OptionLegs.from_frame(frame)
    assert np.isnan(book.dividend_yield[0])
    pnl = revalue(book, np.array([[0.05, 0.05]]), by_leg=True)
    assert np.isnan(pnl[0, 0]) and np.isfinite(pnl[0, 1])


@pytest.mark.parametrize("frame", [book_frame_rows().iloc[:1], book_frame_rows().iloc[:0]])
def test_empty_book_has_no_legs_and_zero_pnl(frame):
    """Stocks only, or no position at all: no legs, P&L 0 in every scenario."""
    book = OptionLegs.from_frame(frame)
    assert len(book.rows) == 0
    np.testing.assert_array_equal(revalue(book, np.zeros((3, 0))), np.zeros(3))
    assert revalue(book, np.zeros((3, 0)), by_leg=True).shape == (3, 0)


def test_revalue_dividend_yield_leg_matches_quantlib_with_a_dividend_curve():
    """European legs with q > 0 are Black-Scholes-Merton: QuantLib's analytic engine with a
    flat dividend curve, to 1e-8 currency."""
    book = legs(
        spot=[100.0, 100.0, 250.0],
        strike=[95.0, 110.0, 260.0],
        days=[45, 200, 500],
        rate=[0.04, 0.04, 0.02],
        volatility=[0.25, 0.3, 0.45],
        is_call=[True, False, True],
        units=[300.0, -200.0, 100.0],
        dividend_yield=[0.03, 0.06, 0.012],
    )
    returns = np.array([[-0.15, -0.15, 0.2], [0.08, 0.08, -0.4], [0.0, 0.0, 0.0]])
    expected = [
        [
            (quantlib_price(s * (1 + m), k, d, r, v, c, q) - quantlib_price(s, k, d, r, v, c, q))
            * u
            for s, k, d, r, v, c, q, u, m in zip(
                book.spot,
                book.strike,
                [45, 200, 500],
                book.rate,
                book.volatility,
                book.is_call,
                book.dividend_yield,
                book.units,
                row,
                strict=True,
            )
        ]
        for row in returns
    ]
    np.testing.assert_allclose(revalue(book, returns, by_leg=True), expected, rtol=0, atol=ATOL)


# One American put in the money, on a stock paying 2%.
LEG = {
    "spot": [100.0],
    "strike": [110.0],
    "days": [180],
    "rate": [0.05],
    "volatility": [0.3],
    "is_call": [False],
    "units": [100.0],
    "dividend_yield": [0.02],
    "american": [True],
}


def american_book() -> OptionLegs:
    """American and European legs, calls and puts, with and without dividends; the last, a
    deep in-the-money put past its exercise boundary (worth its intrinsic value)."""
    return legs(
        spot=[100.0, 100.0, 40.0, 250.0, 100.0, 100.0],
        strike=[110.0, 90.0, 45.0, 240.0, 100.0, 160.0],
        days=[180, 30, 400, 90, 60, 365],
        rate=[0.05, 0.04, 0.03, 0.02, 0.04, 0.08],
        volatility=[0.3, 0.45, 0.35, 0.2, 0.25, 0.2],
        is_call=[False, True, False, True, True, False],
        units=[100.0, -300.0, 500.0, 200.0, -100.0, 100.0],
        dividend_yield=[0.02, 0.0, 0.01, 0.12, 0.03, 0.0],
        american=[True, True, True, True, False, True],
    )


def facade_change(book: OptionLegs, returns: np.ndarray) -> np.ndarray:
    """Price change per share, every scenario and leg priced by the facade (its style)."""
    terms = (book.strike, book.years, book.rate, book.volatility, book.is_call)
    shocked = shocked_spot(book.spot, returns)
    today = options.price(book.spot, *terms, book.dividend_yield, book.american)
    return options.price(shocked, *terms, book.dividend_yield, book.american) - today


def test_revalue_american_legs_are_the_facades_prices_exactly_under_few_scenarios():
    """Below 2 x MIN_GRID_NODES scenarios every leg is priced directly at its shocked spot by
    its style: the P&L is (facade price shocked - facade price today) x units, exactly."""
    book = american_book()
    returns = np.linspace(-0.5, 0.5, 2 * MIN_GRID_NODES - 1)[:, None] * np.ones(6)
    pnl = revalue(book, returns, by_leg=True)
    np.testing.assert_array_equal(pnl, facade_change(book, returns) * book.units)
    intrinsic = book.strike[5] - shocked_spot(book.spot[5], returns[:, 5])
    down = returns[:, 5] <= 0  # the deep put stays past its boundary: K - S
    np.testing.assert_allclose(pnl[down, 5], (intrinsic[down] - 60.0) * 100.0, rtol=0, atol=1e-9)


def test_revalue_deep_in_the_money_american_put_is_not_the_european_one():
    """Past its exercise boundary the American put is worth K - S, which moves one for one with
    the spot; the European put, worth less than K - S there, does not."""
    american = legs(**LEG)
    european = legs(**{**LEG, "american": [False]})
    moves = np.array([[-0.2], [-0.1], [0.1]])
    am, eu = revalue(american, moves, by_leg=True), revalue(european, moves, by_leg=True)
    assert np.all(np.abs(am - eu) > 1.0)  # currency, on 100 shares
    deep = legs(**{**LEG, "strike": [160.0], "dividend_yield": [0.0]})
    np.testing.assert_allclose(
        revalue(deep, np.array([[-0.1], [0.1]]), by_leg=True),
        [[1000.0], [-1000.0]],
        rtol=0,
        atol=1e-9,
    )


@pytest.mark.parametrize("scenarios", [9, 2_000])  # priced directly / through the grid
def test_revalue_american_call_without_dividends_is_exactly_european(scenarios):
    """Early exercise of a call on a stock paying nothing is never optimal: the American leg is
    revalued exactly as the European one, directly or through the premium grid."""
    book = legs(
        spot=[100.0, 100.0, 30.0],
        strike=[80.0, 120.0, 30.0],
        days=[1, 90, 700],
        rate=[0.05, 0.0, 0.1],
        volatility=[0.2, 0.6, 0.05],
        is_call=[True, True, True],
        units=[100.0, -100.0, 100.0],
        american=[True, True, True],
    )
    returns = np.expm1(np.random.default_rng(4).standard_normal((scenarios, 3)) * 0.05)
    assert (2 * grid_nodes(book, returns) <= scenarios).all() == (scenarios > 100)
    european = replace(book, american=np.zeros(3, dtype=bool))
    np.testing.assert_array_equal(
        revalue(book, returns, by_leg=True), revalue(european, returns, by_leg=True)
    )


# The premium grid's test book: moneyness, maturities, rates and yields (a call paying 20% on
# a 10% rate exercises early; puts in the money past their boundary), volatilities.
MONEYNESS = [0.5, 0.8, 0.95, 1.0, 1.05, 1.25, 2.0]
DAYS = [1, 7, 30, 182, 730]
RATE_YIELD = [(0.05, 0.0), (0.02, 0.05), (0.0, 0.15), (0.1, 0.2), (-0.01, 0.03)]
VOLATILITY = [0.05, 0.3, 1.2]
GRID_TOLERANCE = 1e-7  # per share, x strike: the module docstring's measured bound


def grid_book() -> OptionLegs:
    rows = list(itertools.product(MONEYNESS, DAYS, RATE_YIELD, VOLATILITY, [True, False]))
    m, d, ry, v, c = (list(column) for column in zip(*rows, strict=True))
    n = len(rows)
    return legs(
        spot=np.asarray(m) * 100.0,
        strike=np.full(n, 100.0),
        days=d,
        rate=[r for r, _ in ry],
        volatility=v,
        is_call=c,
        units=np.full(n, 100.0),
        dividend_yield=[q for _, q in ry],
        american=np.ones(n, dtype=bool),
    )


def test_revalue_premium_grid_is_within_its_bound_of_direct_pricing():
    """1,050 American legs under 1,000 scenarios (-20% .. +20% and none): the grid's price
    change per share is within 1e-7 x strike of the facade's at every scenario, exact where
    the spot does not move, and the test book has legs exercised now and legs that are not."""
    book = grid_book()
    returns = np.expm1(np.linspace(np.log(0.8), np.log(1.2), 999))
    returns = np.concatenate([returns, [0.0]])[:, None] * np.ones(len(book.rows))
    assert (2 * grid_nodes(book, returns) <= len(returns)).all()  # every leg on the grid
    change = revalue(book, returns, by_leg=True) / book.units
    exact = facade_change(book, returns)
    np.testing.assert_allclose(change, exact, rtol=0, atol=GRID_TOLERANCE * 100.0)
    np.testing.assert_array_equal(change[-1], 0.0)
    spots = shocked_spot(book.spot, returns)
    intrinsic = np.where(book.is_call, spots - book.strike, book.strike - spots)
    priced = exact + book.price(book.spot)
    exercised = priced == intrinsic
    crossing = exercised.any(axis=0) & ~exercised.all(axis=0)  # its boundary within the range
    assert crossing[~book.is_call].any() and crossing[book.is_call].any()
    assert exercised[:, ~book.is_call].all(axis=0).any()  # deep puts, past it throughout


def test_revalue_premium_grid_does_not_depend_on_its_blocks(monkeypatch):
    """The grid interpolates the scenarios in blocks and prices the ones straddling a kink
    directly, all together after the blocks: one block or 33 give the same numbers, bit for
    bit (the straddling scenarios included: the test book's boundaries cross its range)."""
    book = grid_book()
    returns = np.expm1(np.linspace(np.log(0.8), np.log(1.2), 1_000))[:, None] * np.ones(
        len(book.rows)
    )
    blocks = revalue(book, returns, by_leg=True)
    monkeypatch.setattr(revaluation, "_BLOCK", len(returns) * len(book.rows))
    np.testing.assert_array_equal(revalue(book, returns, by_leg=True), blocks)


@pytest.mark.parametrize("scenarios", [5, 500])  # priced directly / through the grid
def test_revalue_nan_dividend_yield_or_spot_is_nan_not_zero(scenarios):
    """A leg whose dividend yield (or spot) is unknown has NaN P&L in every scenario, never
    that of a yield of 0; the other legs are unaffected."""
    book = legs(
        spot=[100.0, np.nan, 100.0],
        strike=[110.0, 110.0, 110.0],
        days=[180, 180, 180],
        rate=[0.05, 0.05, 0.05],
        volatility=[0.3, 0.3, 0.3],
        is_call=[False, False, False],
        units=[100.0, 100.0, 100.0],
        dividend_yield=[np.nan, 0.02, 0.02],
        american=[True, True, True],
    )
    returns = np.linspace(-0.05, 0.05, scenarios)[:, None] * np.ones(3)
    pnl = revalue(book, returns, by_leg=True)
    assert np.isnan(pnl[:, :2]).all() and np.isfinite(pnl[:, 2]).all()
    assert np.isnan(revalue(book, returns)).all()


def test_revalue_empty_legs_with_styles():
    none = np.zeros(0)
    book = OptionLegs(
        np.zeros(0, dtype=np.intp),
        none,
        none,
        none,
        none,
        none,
        np.zeros(0, dtype=bool),
        none,
        none,
        np.zeros(0, dtype=bool),
    )
    np.testing.assert_array_equal(revalue(book, np.zeros((200, 0))), np.zeros(200))
    assert revalue(book, np.zeros((200, 0)), by_leg=True).shape == (200, 0)
