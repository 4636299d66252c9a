from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.test import override_settings

from analytics.services import greeks_compute, positions_value
from analytics.tests.helpers import AS_OF
from portfolios.tests.factories import PortfolioFactory
from sigmasight.tests.helpers import assert_envelope

pytestmark = pytest.mark.django_db

API = "/api/v1"
PLAN = {
    "option_type": "C",
    "underlying_price": 100,
    "strike": 105,
    "days_to_expiry": 30,
    "volatility": 0.25,
    "rate": 0.05,
}


@pytest.fixture
def computed(book):
    positions_value(as_of=AS_OF, portfolio_ids=[book["portfolio"].pk])
    greeks_compute(as_of=AS_OF, portfolio_ids=[book["portfolio"].pk])
    return book


def test_summary_and_default_portfolio(auth_client, computed):
    p = computed["portfolio"]
    body = auth_client.get(f"{API}/portfolios/{p.pk}/summary/").json()
    assert body["as_of"] == AS_OF.isoformat()
    assert set(body) >= {
        "portfolio",
        "as_of",
        "equity",
        "market_value",
        "cash",
        "exposures",
        "greeks",
        "delta_adjusted_exposure",
        "daily_pnl",
        "unrealized_pnl",
        "factor_betas",
        "data_quality",
    }
    assert set(body["greeks"]) == {"delta", "gamma", "theta", "vega", "rho", "dollar_delta"}
    assert isinstance(body["equity"], str) and isinstance(body["greeks"]["delta"], float)
    assert body["data_quality"]["source"] == "synthetic"
    assert auth_client.get(f"{API}/portfolio/").json() == body


def test_positions_api_carries_greeks(auth_client, computed):
    rows = {r["id"]: r for r in auth_client.get(f"{API}/positions/").json()["results"]}
    call = rows[computed["call"].pk]["greeks"]
    assert call["source"] == "implied" and call["as_of"] == AS_OF.isoformat()
    assert rows[computed["aapl"].pk]["greeks"]["delta"] == 300.0


def test_risk_greeks(auth_client, computed):
    body = auth_client.get(f"{API}/risk/greeks/", {"portfolio": computed["portfolio"].pk}).json()
    assert body["as_of"] == AS_OF.isoformat()
    sources = {r["position"]: r["source"] for r in body["positions"]}
    assert sources[computed["call"].pk] == "implied" and sources[computed["aapl"].pk] == "stock"
    assert body["portfolio"]["delta"] == pytest.approx(sum(r["delta"] for r in body["positions"]))


def test_calculate_reproduces_the_plans_example(auth_client):
    put = {**PLAN, "option_type": "P"}
    results = auth_client.post(f"{API}/risk/greeks/calculate/", {"options": [PLAN, put]}).json()[
        "results"
    ]
    call = results[0]
    for key, value in {
        "price": 1.18945613,
        "delta": 0.27841370,
        "gamma": 0.04683718,
        "theta": -0.04375127,
        "vega": 0.09624078,
        "rho": 0.02190568,
    }.items():
        assert call[key] == pytest.approx(value, abs=1e-8), key
    assert results[1]["price"] == pytest.approx(5.75883473, abs=1e-8)
    assert results[1]["delta"] == pytest.approx(-0.72158630, abs=1e-8)


def test_calculate_implied_vol_and_quantity(auth_client):
    body = {
        "options": [
            {
                **{k: v for k, v in PLAN.items() if k != "volatility"},
                "option_price": 1.18945613,
                "quantity": -2,
            }
        ]
    }
    row = auth_client.post(f"{API}/risk/greeks/calculate/", body).json()["results"][0]
    assert row["implied_volatility"] == pytest.approx(0.25, abs=1e-7)
    assert row["delta"] == pytest.approx(0.27841370 * -200, abs=1e-5)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"strike": -5}, "strike"),
        ({"underlying_price": 0}, "underlying_price"),
        ({"volatility": -0.2}, "volatility"),
        ({"volatility": None, "option_price": -1}, "option_price"),
        ({"volatility": None, "option_price": 150}, "option_price"),  # above the spot
        (
            {"days_to_expiry": None, "expiration": (date.today() - timedelta(days=1)).isoformat()},
            "expiration",
        ),
        ({"option_type": "X"}, "option_type"),
        ({"style": "bermudan"}, "style"),
        ({"underlying_symbol": "X" * 33}, "underlying_symbol"),
    ],
)
def test_calculate_rejects_bad_input(auth_client, change, field):
    option = {k: v for k, v in {**PLAN, **change}.items() if v is not None}
    error = assert_envelope(
        auth_client.post(f"{API}/risk/greeks/calculate/", {"options": [option]}), 400
    )
    assert field in str(error["fields"])


@override_settings()
def test_calculate_rejects_more_than_10000_options(auth_client):
    error = assert_envelope(
        auth_client.post(f"{API}/risk/greeks/calculate/", {"options": [PLAN] * 10_001}), 400
    )
    assert "options" in error["fields"]


def test_second_user_gets_404_on_first_users_analytics(other_client, computed):
    p = computed["portfolio"].pk
    assert_envelope(other_client.get(f"{API}/portfolios/{p}/summary/"), 404, "not_found")
    assert_envelope(other_client.get(f"{API}/risk/greeks/", {"portfolio": p}), 404, "not_found")
    assert_envelope(other_client.get(f"{API}/portfolio/"), 404, "not_found")  # has no portfolio


def test_default_portfolio_is_the_users_own(other_client, other_user, computed):
    mine = PortfolioFactory(owner=other_user)
    assert other_client.get(f"{API}/portfolio/").json()["portfolio"] == mine.pk


def test_calculate_prices_the_contracts_exercise_style(auth_client):
    """`style` (or the underlying's style) picks the engine: an American put is worth its early
    exercise premium more than the European one, checked against QuantLib's 2,000-step binomial
    tree within the approximation's stated error (README); a call without dividends is the
    European call exactly; a cash-settled index option is European by its underlying."""
    import QuantLib as ql

    put = {**PLAN, "option_type": "P"}
    options = [
        {**put, "style": "american"},
        {**put, "style": "european"},
        {**PLAN, "underlying_symbol": "AAPL"},
        {**put, "underlying_symbol": "SPX"},
    ]
    results = auth_client.post(f"{API}/risk/greeks/calculate/", {"options": options}).json()[
        "results"
    ]
    american, european, call, index = results
    assert [r["style"] for r in results] == ["american", "european", "american", "european"]
    assert american["price"] > european["price"] == pytest.approx(5.75883473, abs=1e-8)
    assert american["early_exercise_premium"] == pytest.approx(
        american["price"] - european["price"], abs=1e-12
    )
    assert european["early_exercise_premium"] == 0.0 == index["early_exercise_premium"]
    assert index["price"] == pytest.approx(european["price"], abs=1e-12)
    assert call["price"] == pytest.approx(1.18945613, abs=1e-8)
    assert call["early_exercise_premium"] == pytest.approx(0.0, abs=1e-12)

    today = ql.Date(1, 1, 2026)
    ql.Settings.instance().evaluationDate = today
    process = ql.BlackScholesMertonProcess(
        ql.QuoteHandle(ql.SimpleQuote(PLAN["underlying_price"])),
        ql.YieldTermStructureHandle(ql.FlatForward(today, 0.0, ql.Actual365Fixed())),
        ql.YieldTermStructureHandle(ql.FlatForward(today, PLAN["rate"], ql.Actual365Fixed())),
        ql.BlackVolTermStructureHandle(
            ql.BlackConstantVol(today, ql.NullCalendar(), PLAN["volatility"], ql.Actual365Fixed())
        ),
    )
    option = ql.VanillaOption(
        ql.PlainVanillaPayoff(ql.Option.Put, PLAN["strike"]),
        ql.AmericanExercise(today, today + PLAN["days_to_expiry"]),
    )
    option.setPricingEngine(ql.BinomialVanillaEngine(process, "lr", 2000))
    assert american["price"] == pytest.approx(option.NPV(), abs=0.06)
