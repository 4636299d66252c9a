"""The Black-Scholes engine against QuantLib, mibian, parity, its own inverse and its limits.

Tolerances are absolute and per share: 1e-10 for every price and Greek against QuantLib
(AnalyticEuropeanEngine) and mibian, 1e-8 for the plan's example, put-call parity to 1e-12 of
max(1, S). Implied volatility must reprice to 1e-8 everywhere strictly inside the no-arbitrage
bounds, and give back sigma to 1e-8 wherever the price determines it that well: the price's own
rounding (a few ulps of the larger of S e^-qT and K e^-rT, the two terms the formula subtracts)
moves sigma by that error over vega, so rows where this exceeds 1e-9 (far in or out of the
money, where the time value sits in the last digits of the price) are checked on price only.
"""

from __future__ import annotations

import mibian
import numpy as np
import pytest
import QuantLib as ql

from marketdata.calculations import black_scholes as bs
from marketdata.calculations.black_scholes import Reason

pytestmark = pytest.mark.filterwarnings("error")

EPS = np.finfo(float).eps
N = 10_000


def random_book(n: int, seed: int, *, dividends: bool = True, one_day_share: float = 0.0):
    """S 1..1000, K 0.3S..3S, whole days 1..3 years, r -1%..10%, q 0..5%, sigma 5%..150%.
    A one-day share of the options expire tomorrow with K within 10% of S (further out, a
    one-day option's time value is lost to rounding and says nothing about sigma)."""
    rng = np.random.default_rng(seed)
    days = rng.integers(1, 3 * 365 + 1, n)
    ratio = rng.uniform(0.3, 3.0, n)
    one_day = rng.random(n) < one_day_share
    days[one_day] = 1
    ratio[one_day] = rng.uniform(0.9, 1.1, one_day.sum())
    return {
        "S": rng.uniform(1.0, 1000.0, n),
        "K_ratio": ratio,
        "days": days,
        "r": rng.uniform(-0.01, 0.10, n),
        "q": rng.uniform(0.0, 0.05, n) if dividends else np.zeros(n),
        "sigma": rng.uniform(0.05, 1.5, n),
        "is_call": rng.random(n) < 0.5,
    }


def _args(book):
    return (
        book["S"],
        book["S"] * book["K_ratio"],
        book["days"] / 365.0,
        book["r"],
        book["sigma"],
        book["is_call"],
        book["q"],
    )


def quantlib_greeks(book) -> np.ndarray:
    """Price and Greeks per option from QuantLib, converted to mibian's units."""
    today = ql.Date(15, 1, 2024)
    ql.Settings.instance().evaluationDate = today
    day_count = ql.Actual365Fixed()
    spot, rate, dividend, vol = (ql.SimpleQuote(0.0) for _ in range(4))

    def curve(quote):
        return ql.YieldTermStructureHandle(ql.FlatForward(today, ql.QuoteHandle(quote), day_count))

    vol_curve = ql.BlackVolTermStructureHandle(
        ql.BlackConstantVol(today, ql.NullCalendar(), ql.QuoteHandle(vol), day_count)
    )
    process = ql.BlackScholesMertonProcess(
        ql.QuoteHandle(spot), curve(dividend), curve(rate), vol_curve
    )
    engine = ql.AnalyticEuropeanEngine(process)
    S, K, _, r, sigma, is_call, q = _args(book)
    out = np.empty((len(S), 6))
    for i in range(len(S)):
        spot.setValue(float(S[i]))
        rate.setValue(float(r[i]))
        dividend.setValue(float(q[i]))
        vol.setValue(float(sigma[i]))
        payoff = ql.PlainVanillaPayoff(ql.Option.Call if is_call[i] else ql.Option.Put, float(K[i]))
        option = ql.VanillaOption(payoff, ql.EuropeanExercise(today + int(book["days"][i])))
        option.setPricingEngine(engine)
        # QuantLib: theta per year, vega and rho per 1.0 of vol and rate.
        out[i] = (
            option.NPV(),
            option.delta(),
            option.gamma(),
            option.theta() / 365.0,
            option.vega() / 100.0,
            option.rho() / 100.0,
        )
    return out


def test_greeks_plan_example():
    call = bs.greeks(100.0, 105.0, 30 / 365, 0.05, 0.25, True)
    put = bs.greeks(100.0, 105.0, 30 / 365, 0.05, 0.25, False)
    got = [call.price, call.delta, call.gamma, call.theta, call.vega, call.rho, put.price]
    want = [1.18945613, 0.27841370, 0.04683718, -0.04375127, 0.09624078, 0.02190568, 5.75883473]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-8)
    np.testing.assert_allclose(put.delta, -0.72158630, rtol=0, atol=1e-8)
    assert call.reason == put.reason == Reason.OK


def test_greeks_match_quantlib_analytic_european():
    book = random_book(N, seed=11)
    reference = quantlib_greeks(book)
    result = bs.greeks(*_args(book))
    for column, name in enumerate(["price", "delta", "gamma", "theta", "vega", "rho"]):
        np.testing.assert_allclose(
            getattr(result, name), reference[:, column], rtol=0, atol=1e-10, err_msg=name
        )


def test_greeks_match_mibian():
    # mibian.BS (no dividends) takes the rate and volatility in percent and days to expiry; its
    # source divides theta by 365 and vega and rho by 100: the engine's units, no conversion.
    book = random_book(N, seed=12, dividends=False)
    S, K, T, r, sigma, _, _ = _args(book)
    reference = np.empty((N, 10))
    for i in range(N):
        m = mibian.BS([S[i], K[i], r[i] * 100, book["days"][i]], volatility=sigma[i] * 100)
        reference[i] = (
            m.callPrice,
            m.putPrice,
            m.callDelta,
            m.putDelta,
            m.gamma,
            m.callTheta,
            m.putTheta,
            m.vega,
            m.callRho,
            m.putRho,
        )
    call, put = bs.greeks(S, K, T, r, sigma, True), bs.greeks(S, K, T, r, sigma, False)
    mine = np.column_stack(
        [
            call.price,
            put.price,
            call.delta,
            put.delta,
            call.gamma,
            call.theta,
            put.theta,
            call.vega,
            call.rho,
            put.rho,
        ],
    )
    np.testing.assert_allclose(mine, reference, rtol=0, atol=1e-10)
    np.testing.assert_array_equal(put.gamma, call.gamma)
    np.testing.assert_array_equal(put.vega, call.vega)


def test_greeks_put_call_parity():
    book = random_book(N, seed=13)
    S, K, T, r, sigma, _, q = _args(book)
    call, put = bs.greeks(S, K, T, r, sigma, True, q), bs.greeks(S, K, T, r, sigma, False, q)
    scale = np.maximum(1.0, S)
    parity = S * np.exp(-q * T) - K * np.exp(-r * T)
    assert np.max(np.abs(call.price - put.price - parity) / scale) <= 1e-12
    # The same parity, differentiated: by S, S twice, sigma, r (per point) and calendar days.
    np.testing.assert_allclose(call.delta - put.delta, np.exp(-q * T), rtol=0, atol=1e-14)
    np.testing.assert_allclose(call.gamma, put.gamma, rtol=1e-14, atol=0)
    np.testing.assert_allclose(call.vega, put.vega, rtol=1e-14, atol=0)
    rho_parity = T * K * np.exp(-r * T) / 100
    assert np.max(np.abs(call.rho - put.rho - rho_parity) / scale) <= 1e-12
    theta_parity = (q * S * np.exp(-q * T) - r * K * np.exp(-r * T)) / 365
    assert np.max(np.abs(call.theta - put.theta - theta_parity) / scale) <= 1e-12


def test_price_is_the_greeks_price():
    book = random_book(1_000, seed=14)
    np.testing.assert_array_equal(bs.price(*_args(book)), bs.greeks(*_args(book)).price)


def test_greeks_broadcast_over_shapes():
    spots, strikes = np.array([[90.0], [100.0], [110.0]]), np.array([95.0, 105.0])
    result = bs.greeks(spots, strikes, 0.5, 0.03, 0.2, np.array([True, False]))
    assert result.price.shape == result.theta.shape == result.reason.shape == (3, 2)
    single = bs.greeks(110.0, 105.0, 0.5, 0.03, 0.2, False)
    assert result.price[2, 1] == single.price
    assert bs.greeks(100.0, 100.0, 1.0, 0.0, 0.2, True).delta.shape == ()


def test_results_do_not_depend_on_how_a_book_is_sliced():
    # 40,000 options go through the engine in slices; each row of 200 goes through at once.
    book = random_book(40_000, seed=17)
    grid = [np.reshape(a, (200, 200)) for a in _args(book)]
    whole = bs.greeks(*grid)
    S, K, T, r, _, is_call, q = grid
    solved = bs.implied_volatility(whole.price, S, K, T, r, is_call, q)
    for i in (0, 81, 199):
        row = bs.greeks(*(a[i] for a in grid))
        for name in ("price", "delta", "gamma", "theta", "vega", "rho", "reason"):
            np.testing.assert_array_equal(getattr(whole, name)[i], getattr(row, name), name)
        alone = bs.implied_volatility(row.price, S[i], K[i], T[i], r[i], is_call[i], q[i])
        np.testing.assert_array_equal(solved.sigma[i], alone.sigma)
        np.testing.assert_array_equal(solved.reason[i], alone.reason)


def test_implied_volatility_round_trip():
    book = random_book(N, seed=15, one_day_share=0.3)
    S, K, T, r, sigma, is_call, q = _args(book)
    exact = bs.greeks(S, K, T, r, sigma, is_call, q)
    solved = bs.implied_volatility(exact.price, S, K, T, r, is_call, q)

    fwd_s, fwd_k = S * np.exp(-q * T), K * np.exp(-r * T)
    lower = np.maximum(np.where(is_call, fwd_s - fwd_k, fwd_k - fwd_s), 0.0)
    inside = exact.price > lower
    # Where all the time value was lost to rounding the price sits on its bound: no answer.
    assert np.all(solved.reason[~inside] == Reason.BELOW_LOWER_BOUND)
    assert np.isnan(solved.sigma[~inside]).all()

    assert np.all(solved.reason[inside] == Reason.OK)
    repriced = bs.price(S, K, T, r, solved.sigma, is_call, q)
    assert np.max(np.abs(repriced - exact.price)[inside]) <= 1e-8

    rounding = 4 * EPS * np.maximum(fwd_s, fwd_k)
    determined = inside & (rounding <= 1e-9 * exact.vega * 100)
    assert determined.sum() > 0.9 * N
    assert (determined & (T == 1 / 365)).sum() > 0.2 * N
    assert (determined & (book["K_ratio"] > 2.5)).sum() > 0.04 * N
    assert (determined & (book["K_ratio"] < 0.5)).sum() > 0.04 * N
    np.testing.assert_allclose(solved.sigma[determined], sigma[determined], rtol=0, atol=1e-8)
    assert solved.iterations.max() <= 8


def test_implied_volatility_converges_for_any_price_inside_the_bounds():
    rng = np.random.default_rng(16)
    n = 30_000
    S = rng.uniform(1.0, 1000.0, n)
    K = S * np.exp(rng.uniform(-4.0, 4.0, n))
    T = np.where(rng.random(n) < 0.3, 1.0, rng.integers(1, 3 * 365 + 1, n)) / 365
    r, q, is_call = rng.uniform(-0.01, 0.1, n), rng.uniform(0.0, 0.05, n), rng.random(n) < 0.5
    fwd_s, fwd_k = S * np.exp(-q * T), K * np.exp(-r * T)
    lower = np.maximum(np.where(is_call, fwd_s - fwd_k, fwd_k - fwd_s), 0.0)
    upper = np.where(is_call, fwd_s, fwd_k)
    # Uniform between the bounds, and log-uniformly close to each of them.
    near = 10 ** rng.uniform(-17, 0, n) * (upper - lower)
    kind = rng.integers(0, 3, n)
    uniform = lower + rng.random(n) * (upper - lower)
    target = np.choose(kind, [uniform, lower + near, upper - near])
    inside = (target > lower) & (target < upper)

    solved = bs.implied_volatility(target, S, K, T, r, is_call, q)

    assert inside.sum() > 0.95 * n
    assert np.all(solved.reason[inside] == Reason.OK)
    repriced = bs.price(S, K, T, r, solved.sigma, is_call, q)
    assert np.max(np.abs(repriced - target)[inside]) <= 1e-8
    assert np.all(solved.sigma[inside] > 0)
    at_bound = ~inside & (target <= lower)
    assert np.all(solved.reason[at_bound] == Reason.BELOW_LOWER_BOUND)
    assert np.all(solved.reason[~inside & ~at_bound] == Reason.ABOVE_UPPER_BOUND)


def test_implied_volatility_outside_the_bounds_is_nan_with_a_reason():
    S, K, T, r, q = 100.0, 90.0, 0.5, 0.05, 0.02
    fwd_s, fwd_k = S * np.exp(-q * T), K * np.exp(-r * T)
    prices = np.array(
        [fwd_s - fwd_k - 0.01, fwd_s - fwd_k, fwd_s, fwd_s + 1.0, -1.0, np.nan, 12.0, 12.0]
    )
    expiry = np.array([T] * 6 + [0.0, -1.0])
    solved = bs.implied_volatility(prices, S, K, expiry, r, True, q)
    assert solved.reason.tolist() == [
        Reason.BELOW_LOWER_BOUND,
        Reason.BELOW_LOWER_BOUND,
        Reason.ABOVE_UPPER_BOUND,
        Reason.ABOVE_UPPER_BOUND,
        Reason.BELOW_LOWER_BOUND,
        Reason.NAN_INPUT,
        Reason.EXPIRED,
        Reason.EXPIRED,
    ]
    assert np.isnan(solved.sigma).all()
    # A put's upper bound is the discounted strike, not the underlying.
    put = bs.implied_volatility([fwd_k, fwd_k - 1e-3], S, K, T, r, False, q)
    assert put.reason.tolist() == [Reason.ABOVE_UPPER_BOUND, Reason.OK]
    spots, strikes, rates = [0.0, 100.0, 100.0], [90.0, -1.0, 90.0], [r, r, np.inf]
    bad_inputs = bs.implied_volatility(5.0, spots, strikes, T, rates, True)
    assert bad_inputs.reason.tolist() == [
        Reason.NON_POSITIVE_SPOT,
        Reason.NON_POSITIVE_STRIKE,
        Reason.NAN_INPUT,
    ]


def test_implied_volatility_scalar_and_shapes():
    price = bs.price(100.0, 105.0, 30 / 365, 0.05, 0.25, True)
    solved = bs.implied_volatility(price, 100.0, 105.0, 30 / 365, 0.05, True)
    assert solved.sigma.shape == solved.reason.shape == ()
    assert abs(solved.sigma - 0.25) <= 1e-12
    strikes, expiries = np.array([95.0, 100.0, 105.0]), np.array([[0.25], [0.0]])
    grid = bs.implied_volatility(np.full((2, 3), 8.0), 100.0, strikes, expiries, 0.03, True)
    assert grid.sigma.shape == (2, 3)
    assert np.isfinite(grid.sigma[0]).all()
    assert grid.reason[1].tolist() == [Reason.EXPIRED] * 3


def test_greeks_expired_are_intrinsic_with_zero_greeks():
    S = np.array([90.0, 110.0, 100.0, 90.0, 110.0])
    T = np.array([0.0, 0.0, 0.0, -0.5, -0.5])
    call = bs.greeks(S, 100.0, T, 0.05, 0.3, True, 0.02)
    put = bs.greeks(S, 100.0, T, 0.05, 0.3, False, 0.02)
    np.testing.assert_array_equal(call.price, [0.0, 10.0, 0.0, 0.0, 10.0])
    np.testing.assert_array_equal(put.price, [10.0, 0.0, 0.0, 10.0, 0.0])
    for result in (call, put):
        for name in ("delta", "gamma", "theta", "vega", "rho"):
            np.testing.assert_array_equal(getattr(result, name), 0.0, err_msg=name)
        assert (result.reason == Reason.OK).all()
    # sigma = 0 at expiry is still just expired.
    both = bs.greeks(S, 100.0, T, 0.05, 0.0, True)
    np.testing.assert_array_equal(both.price, call.price)
    np.testing.assert_array_equal(both.delta, 0.0)


def test_greeks_without_volatility_are_the_deterministic_forward():
    S, K, T, r, q = np.array([80.0, 120.0]), 100.0, 0.5, 0.04, 0.01
    disc_q, disc_r = np.exp(-q * T), np.exp(-r * T)
    call = bs.greeks(S, K, T, r, 0.0, True, q)
    put = bs.greeks(S, K, T, r, 0.0, False, q)
    np.testing.assert_allclose(call.price, [0.0, 120 * disc_q - 100 * disc_r], rtol=1e-15)
    np.testing.assert_allclose(put.price, [100 * disc_r - 80 * disc_q, 0.0], rtol=1e-15)
    np.testing.assert_array_equal(call.delta, [0.0, disc_q])
    np.testing.assert_array_equal(put.delta, [-disc_q, 0.0])
    for result in (call, put):
        np.testing.assert_array_equal(result.gamma, 0.0)
        np.testing.assert_array_equal(result.vega, 0.0)
    np.testing.assert_allclose(
        call.theta, [0.0, (q * 120 * disc_q - r * 100 * disc_r) / 365], rtol=1e-15
    )
    np.testing.assert_allclose(
        put.theta, [(r * 100 * disc_r - q * 80 * disc_q) / 365, 0.0], rtol=1e-15
    )
    np.testing.assert_allclose(call.rho, [0.0, T * 100 * disc_r / 100], rtol=1e-15)
    np.testing.assert_allclose(put.rho, [-T * 100 * disc_r / 100, 0.0], rtol=1e-15)
    # They are the limits of a vanishing volatility.
    tiny = bs.greeks(S, K, T, r, 1e-6, True, q)
    for name in ("price", "delta", "gamma", "theta", "vega", "rho"):
        np.testing.assert_allclose(getattr(tiny, name), getattr(call, name), atol=1e-12)
    # At the money on the forward, delta is half the step (the sigma -> 0 limit).
    at_forward = bs.greeks(100.0 * disc_r / disc_q, K, T, r, 0.0, True, q)
    assert at_forward.price == 0.0
    np.testing.assert_allclose(at_forward.delta, 0.5 * disc_q, rtol=1e-15)


def test_validate_reason_codes_in_order():
    codes = bs.validate(
        [100.0, np.nan, -1.0, 100.0, 100.0, 100.0, -1.0, 100.0],
        [100.0, 100.0, 100.0, 0.0, 100.0, 100.0, -1.0, 100.0],
        [1.0, 1.0, 1.0, 1.0, 1.0, np.inf, 1.0, 1.0],
        0.05,
        [0.2, 0.2, 0.2, 0.2, -0.1, 0.2, -0.1, 0.2],
        q=[0.0] * 7 + [np.nan],
    )
    assert codes.tolist() == [
        Reason.OK,
        Reason.NAN_INPUT,
        Reason.NON_POSITIVE_SPOT,
        Reason.NON_POSITIVE_STRIKE,
        Reason.NEGATIVE_VOLATILITY,
        Reason.NAN_INPUT,
        Reason.NON_POSITIVE_SPOT,
        Reason.NAN_INPUT,
    ]
    assert codes.dtype == np.int8


def test_greeks_invalid_rows_are_nan_and_say_why():
    S = np.array([100.0, np.nan, -5.0, 100.0, 100.0, 100.0])
    K = np.array([100.0, 100.0, 100.0, 0.0, 100.0, 100.0])
    sigma = np.array([0.2, 0.2, 0.2, 0.2, -0.2, np.nan])
    result = bs.greeks(S, K, 1.0, 0.05, sigma, True)
    assert result.reason.tolist() == [
        Reason.OK,
        Reason.NAN_INPUT,
        Reason.NON_POSITIVE_SPOT,
        Reason.NON_POSITIVE_STRIKE,
        Reason.NEGATIVE_VOLATILITY,
        Reason.NAN_INPUT,
    ]
    for name in ("price", "delta", "gamma", "theta", "vega", "rho"):
        values = getattr(result, name)
        assert np.isfinite(values[0]), name
        assert np.isnan(values[1:]).all(), name
    assert np.isnan(bs.price(S, K, 1.0, 0.05, sigma, True)[1:]).all()


def test_price_at_spots_is_price_to_the_last_bit():
    """Many spots per option (a Monte Carlo block): each option's constants taken once give the
    very values `price` gives cell by cell, for calls and puts, dividends, deep in and out of the
    money, and the options `price` treats apart (expired, no volatility, NaN inputs, a bad
    strike) or a column with a NaN or non-positive spot, which go through `price` itself."""
    rng = np.random.default_rng(7)
    K = np.array([100.0, 100.0, 50.0, 400.0, 100.0, 100.0, 100.0, 100.0, -1.0, 100.0, 80.0])
    T = np.array([0.5, 0.02, 2.0, 0.25, 0.0, 0.5, np.nan, 0.5, 0.5, 0.5, 0.5])
    r = np.array([0.05, 0.0, 0.03, -0.01, 0.05, 0.05, 0.05, 0.05, 0.05, 0.05, 0.05])
    sigma = np.array([0.2, 0.9, 0.05, 0.35, 0.2, 0.0, 0.2, 0.2, 0.2, 0.2, 0.2])
    q = np.array([0.0, 0.02, 0.01, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.01])
    call = np.array([True, False, True, False, True, True, False, True, False, True, False])
    spots = 100.0 * np.exp(rng.normal(0.0, 0.4, size=(2_000, len(K))))
    spots[5, 7] = np.nan  # a NaN scenario for one option
    spots[9, 9] = 0.0  # a spot at the floor's limit
    fast = bs.price_at_spots(spots, K, T, r, sigma, call, q)
    slow = bs.price(spots, K, T, r, sigma, call, q)
    np.testing.assert_array_equal(fast, slow)  # bit for bit, NaN where price gives NaN
    assert np.isfinite(fast[:, [0, 1, 2, 3, 10]]).all()
