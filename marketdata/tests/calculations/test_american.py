"""The American engine (Bjerksund-Stensland) against QuantLib, a binomial tree, its own inverse,
the no-arbitrage relations and its limits; the options facade's per-row dispatch.

Tolerances (absolute, per share unless said): the 1993 model is QuantLib's
BjerksundStenslandApproximationEngine, matched to 1e-8 in price and in its analytic Greeks;
the 2002 model's jet Greeks match central differences of its own price to 1e-6 (the
differences' own error); against a 2,000-step Leisen-Reimer tree the 2002 approximation is
within 2.5% of the price + 0.06 on a grid up to sigma = 100% and two years (its error grows
with sigma^2 T: 1.33 on a two-year put at sigma = 100% worth 63.44, the 1993 model 1.27), and
within 0.11 up to sigma = 25%, where it beats the 1993 model (0.14). Implied volatility gives sigma back
to 1e-8 wherever vega is at least 1e-3 per vol point.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import QuantLib as ql

from marketdata.calculations import american as am
from marketdata.calculations import black_scholes as bs
from marketdata.calculations import options
from marketdata.calculations.black_scholes import Reason

pytestmark = pytest.mark.filterwarnings("error")

TODAY = ql.Date(15, 1, 2024)


def grid():
    """Calls and puts, K 80/100/120 of S = 100, 3 days..2 years, r and q 0..6%, sigma
    5%..100%."""
    rows = list(
        itertools.product(
            [True, False],
            [80.0, 100.0, 120.0],
            [3, 30, 180, 730],
            [0.0, 0.03, 0.06],
            [0.0, 0.03, 0.06],
            [0.05, 0.25, 1.0],
        )
    )
    call, K, days, r, q, sigma = (np.array(c) for c in zip(*rows, strict=True))
    return {
        "S": np.full(len(rows), 100.0),
        "K": K,
        "days": days,
        "r": r,
        "q": q,
        "sigma": sigma,
        "is_call": call,
    }


def args(b):
    return b["S"], b["K"], b["days"] / 365.0, b["r"], b["sigma"], b["is_call"], b["q"]


def quantlib(b, engine):
    """NPV, delta, gamma, theta per day, vega and rho (per point) of each row in QuantLib."""
    ql.Settings.instance().evaluationDate = TODAY
    dc = ql.Actual365Fixed()
    out = []
    for S, K, days, r, q, sigma, call in zip(
        b["S"], b["K"], b["days"], b["r"], b["q"], b["sigma"], b["is_call"], strict=True
    ):
        curve = ql.YieldTermStructureHandle(ql.FlatForward(TODAY, float(r), dc))
        div = ql.YieldTermStructureHandle(ql.FlatForward(TODAY, float(q), dc))
        vol = ql.BlackVolTermStructureHandle(
            ql.BlackConstantVol(TODAY, ql.NullCalendar(), float(sigma), dc)
        )
        process = ql.BlackScholesMertonProcess(
            ql.QuoteHandle(ql.SimpleQuote(float(S))), div, curve, vol
        )
        option = ql.VanillaOption(
            ql.PlainVanillaPayoff(ql.Option.Call if call else ql.Option.Put, float(K)),
            ql.AmericanExercise(TODAY, TODAY + int(days)),
        )
        if engine == "bjerksund":
            option.setPricingEngine(ql.BjerksundStenslandApproximationEngine(process))
            out.append(
                [
                    option.NPV(),
                    option.delta(),
                    option.gamma(),
                    option.thetaPerDay(),
                    option.vega() / 100,
                    option.rho() / 100,
                ]
            )
        else:
            option.setPricingEngine(ql.BinomialVanillaEngine(process, "lr", 2000))
            out.append([option.NPV()])
    return np.array(out).T


def test_american_1993_model_is_quantlibs_engine():
    b = grid()
    ref = quantlib(b, "bjerksund")
    g = am.greeks(*args(b), model="1993")
    np.testing.assert_allclose(am.price(*args(b), model="1993"), ref[0], rtol=0, atol=1e-8)
    # Where the European value rounds to the intrinsic one, QuantLib reports the Greeks of
    # exercising now even when early exercise is never optimal; the engine keeps the European.
    S, K, call = b["S"], b["K"], b["is_call"]
    rounded = ref[0] == np.maximum(np.where(call, S - K, K - S), 0.0)
    for name, expected in zip(
        ["price", "delta", "gamma", "theta", "vega", "rho"], ref, strict=True
    ):
        np.testing.assert_allclose(
            getattr(g, name)[~rounded], expected[~rounded], rtol=0, atol=1e-8, err_msg=name
        )


def test_american_greeks_are_derivatives_of_the_price():
    b = grid()
    S, K, T, r, sigma, call, q = args(b)
    g = am.greeks(S, K, T, r, sigma, call, q)
    h = 1e-5
    # Differences are taken where a bump stays in one regime: r, q > 0 (at 0 the rule that
    # early exercise is never optimal switches), r != q (the boundary's B0 = K max(1, r/q) has
    # a kink there) and some time value left (not at the exercise boundary).
    inside = (
        (r > 0)
        & (q > 0)
        & (r != q)
        & (g.price - np.maximum(np.where(call, S - K, K - S), 0) > 1e-3)
    )

    def bumped(**kw):
        base = {"S": S, "T": T, "r": r, "sigma": sigma}
        up = am.price(**{**base, **{k: base[k] + v for k, v in kw.items()}}, K=K, is_call=call, q=q)
        down = am.price(
            **{**base, **{k: base[k] - v for k, v in kw.items()}}, K=K, is_call=call, q=q
        )
        return up, down

    up, down = bumped(S=h * S)
    np.testing.assert_allclose(g.delta[inside], ((up - down) / (2 * h * S))[inside], atol=1e-6)
    np.testing.assert_allclose(
        g.gamma[inside], ((up - 2 * g.price + down) / (h * S) ** 2)[inside], atol=1e-5
    )
    up, down = bumped(sigma=h)
    np.testing.assert_allclose(g.vega[inside], ((up - down) / (2 * h) / 100)[inside], atol=1e-6)
    up, down = bumped(r=h)
    np.testing.assert_allclose(g.rho[inside], ((up - down) / (2 * h) / 100)[inside], atol=1e-6)
    live = inside & (2 * h < T)
    up, down = bumped(T=h)
    np.testing.assert_allclose(g.theta[live], -((up - down) / (2 * h) / 365)[live], atol=1e-6)


def test_american_2002_against_a_2000_step_tree():
    b = grid()
    tree = quantlib(b, "binomial")[0]
    err_2002 = np.abs(am.price(*args(b)) - tree)
    err_1993 = np.abs(am.price(*args(b), model="1993") - tree)
    assert np.all(err_2002 <= 0.025 * tree + 0.06), err_2002.max()
    moderate = b["sigma"] <= 0.25
    assert err_2002[moderate].max() <= 0.11
    assert err_2002[moderate].max() < err_1993[moderate].max()


def test_american_implied_volatility_round_trip():
    b = grid()
    S, K, T, r, sigma, call, q = args(b)
    g = am.greeks(S, K, T, r, sigma, call, q)
    iv = am.implied_volatility(g.price, S, K, T, r, call, q)
    determined = g.vega >= 1e-3
    assert np.all(iv.reason[determined] == Reason.OK)
    np.testing.assert_allclose(iv.sigma[determined], sigma[determined], rtol=0, atol=1e-8)


def test_american_implied_volatility_takes_few_steps():
    # Halley steps with the exact volga from the European implied volatility of the price less
    # the early exercise premium: the error is cubed each step, so no option on the grid is
    # priced with its vega and volga more than 4 times.
    b = grid()
    S, K, T, r, sigma, call, q = args(b)
    g = am.greeks(S, K, T, r, sigma, call, q)
    iv = am.implied_volatility(g.price, S, K, T, r, call, q)
    assert iv.iterations[g.vega >= 1e-3].max() <= 4


def test_american_no_arbitrage_relations():
    b = grid()
    S, K, T, r, sigma, call, q = args(b)
    american, european = am.price(S, K, T, r, sigma, call, q), bs.price(S, K, T, r, sigma, call, q)
    intrinsic = np.maximum(np.where(call, S - K, K - S), 0.0)
    # A European-exact row (early exercise never optimal) may round a few ulps below intrinsic.
    assert np.all(american >= european) and np.all(american >= intrinsic - 1e-12)
    no_div_call = call & (q == 0)
    np.testing.assert_array_equal(american[no_div_call], european[no_div_call])
    # The put is the call with spot and strike, r and q exchanged.
    np.testing.assert_allclose(
        am.price(S, K, T, r, sigma, False, q), am.price(K, S, T, q, sigma, True, r), atol=1e-12
    )


def test_american_early_exercise_premium():
    b = grid()
    S, K, T, r, sigma, call, q = args(b)
    premium = am.early_exercise_premium(S, K, T, r, sigma, call, q)
    assert np.all(premium >= 0)
    assert np.all(premium[call & (q == 0)] == 0)
    assert premium[~call & (r > 0)].max() > 1.0


def test_american_limits_and_reasons():
    S = np.array([100.0, 100.0, 100.0, np.nan, -1.0, 100.0, 100.0])
    K = np.array([110.0, 90.0, 110.0, 100.0, 100.0, 0.0, 100.0])
    T = np.array([0.0, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5])
    sigma = np.array([0.2, 0.0, 0.0, 0.2, 0.2, 0.2, -0.1])
    g = am.greeks(S, K, T, 0.05, sigma, False, 0.02)
    assert list(g.reason) == [
        0,
        0,
        0,
        Reason.NAN_INPUT,
        Reason.NON_POSITIVE_SPOT,
        Reason.NON_POSITIVE_STRIKE,
        Reason.NEGATIVE_VOLATILITY,
    ]
    assert g.price[0] == 10.0 and g.delta[0] == 0.0  # expired: intrinsic, no risk
    assert g.price[1] == pytest.approx(bs.price(100, 90, 0.5, 0.05, 0.0, False, 0.02), abs=1e-12)
    assert g.price[2] == 10.0 and g.delta[2] == -1.0  # sigma 0 in the money: exercise now
    assert np.isnan(g.price[3:]).all() and np.isnan(g.vega[3:]).all()
    iv = am.implied_volatility(
        [5.0, 1.0, 200.0, np.nan], 100.0, 110.0, [0.0, 0.5, 0.5, 0.5], 0.05, False
    )
    assert list(iv.reason) == [
        Reason.EXPIRED,
        Reason.BELOW_LOWER_BOUND,
        Reason.ABOVE_UPPER_BOUND,
        Reason.NAN_INPUT,
    ]
    assert np.isnan(iv.sigma).all()


def test_options_facade_dispatches_per_row_in_order():
    b = grid()
    S, K, T, r, sigma, call, q = args(b)
    american = np.arange(len(S)) % 3 == 0
    g = options.greeks(S, K, T, r, sigma, call, q, american=american)
    ga, ge = am.greeks(S, K, T, r, sigma, call, q), bs.greeks(S, K, T, r, sigma, call, q)
    for name in ("price", "delta", "gamma", "theta", "vega", "rho"):
        expected = np.where(american, getattr(ga, name), getattr(ge, name))
        np.testing.assert_array_equal(getattr(g, name), expected)
    p = options.price(S, K, T, r, sigma, call, q, american=american)
    np.testing.assert_array_equal(p, g.price)
    assert np.array_equal(options.price(S, K, T, r, sigma, call, q, american=True), ga.price)
    iv = options.implied_volatility(p, S, K, T, r, call, q, american=american)
    ok = g.vega >= 1e-3
    np.testing.assert_allclose(iv.sigma[ok], sigma[ok], atol=1e-8)
    premium = options.early_exercise_premium(S, K, T, r, sigma, call, q, american=american)
    assert np.all(premium[~american] == 0)
    np.testing.assert_allclose(premium[american], (ga.price - ge.price)[american], atol=1e-12)
    shaped = options.price(
        S.reshape(6, -1),
        K.reshape(6, -1),
        0.5,
        0.03,
        0.2,
        True,
        0.02,
        american=american.reshape(6, -1),
    )
    assert shaped.shape == (6, len(S) // 6)
