from __future__ import annotations

from datetime import date
from decimal import Decimal

import numpy as np
import pytest

from analytics.models import MarketRiskScenario, PortfolioFactorExposure
from analytics.risk_services import factors_compute
from analytics.services import greeks_compute, positions_value
from marketdata.calendar import sessions_back
from marketdata.providers.synthetic import SyntheticProvider
from marketdata.services import prices_fetch_and_cache
from portfolios.tests.factories import PortfolioFactory, option, stock
from sigmasight.tests.helpers import assert_envelope

pytestmark = pytest.mark.django_db

API = "/api/v1"
AS_OF = date(2026, 11, 20)
PROXIES = ["SPY", "VTV", "VUG", "MTUM", "QUAL", "SIZE", "USMV", "US10Y", "US3M"]


def load_prices(symbols: list[str], sessions: int = 300) -> None:
    start = sessions_back(AS_OF, sessions)[0]
    prices_fetch_and_cache(
        symbols=sorted(set(symbols) | set(PROXIES)),
        start=start,
        end=AS_OF,
        providers=[SyntheticProvider()],
    )


@pytest.fixture
def spy_only(user):
    portfolio = PortfolioFactory(owner=user, cash=Decimal("0.00"), name="SPY only")
    stock(portfolio, "SPY", "100")
    load_prices(["SPY"])
    positions_value(as_of=AS_OF, portfolio_ids=[portfolio.pk])
    return portfolio


@pytest.fixture
def book(user):
    portfolio = PortfolioFactory(owner=user, cash=Decimal("100000.00"), name="Mixed")
    stock(portfolio, "AAPL", "200")
    stock(portfolio, "JPM", "-150")
    stock(portfolio, "TLT", "300")
    option(portfolio, "AAPL", date(2027, 1, 15), "C", "550", "-2")
    option(portfolio, "AAPL", date(2027, 1, 15), "P", "500", "-2")
    load_prices(["AAPL", "JPM", "TLT", "AAPL270115C00550000", "AAPL270115P00500000"])
    positions_value(as_of=AS_OF, portfolio_ids=[portfolio.pk])
    greeks_compute(as_of=AS_OF, portfolio_ids=[portfolio.pk])
    return portfolio


def get(client, path: str, **params):
    response = client.get(f"{API}/{path}", {"as_of": AS_OF.isoformat(), **params})
    assert response.status_code == 200, response.content
    return response.json()


def test_factor_definitions_are_seeded(auth_client):
    macro = get(auth_client, "factors/definitions/", factor_type="macro")["results"]
    assert {r["name"]: r["etf_proxy"] for r in macro}["Rates"] == "US10Y" and len(macro) == 10
    rows = get(auth_client, "factors/definitions/", factor_type="style")["results"]
    assert [r["name"] for r in rows] == [
        "Market",
        "Value",
        "Growth",
        "Momentum",
        "Quality",
        "Size",
        "Low Volatility",
        "Short Interest",
    ]
    assert rows[0]["etf_proxy"] == "SPY"
    assert rows[-1]["is_active"] is False and rows[-1]["etf_proxy"] == ""


def test_spy_only_book_has_market_beta_one_and_moves_with_the_market(auth_client, spy_only):
    body = get(auth_client, "risk/factors/", portfolio=spy_only.pk)
    betas = {r["factor"]: r["beta"] for r in body["factors"]}
    assert betas["Market"] == pytest.approx(1.0, abs=1e-9)
    assert all(abs(b) < 1e-9 for name, b in betas.items() if name != "Market")
    assert body["normalized_by"] == "equity"
    exposure = float(spy_only.positions.get().exposure)
    scenarios = get(auth_client, "risk/scenarios/market/", portfolio=spy_only.pk, moves="-0.1,0.1")
    assert [s["move"] for s in scenarios] == [-0.1, 0.1]
    assert scenarios[0]["predicted_pnl"] == pytest.approx(-0.1 * exposure, rel=1e-9)
    assert scenarios[1]["predicted_return"] == pytest.approx(0.1, rel=1e-9)


def test_summary_reports_the_stored_factor_betas(auth_client, spy_only):
    factors_compute(as_of=AS_OF, portfolio_ids=[spy_only.pk])
    summary = get(auth_client, f"portfolios/{spy_only.pk}/summary/")
    assert summary["factor_betas"]["Market"] == pytest.approx(1.0, abs=1e-9)


def test_mixed_book_factors_scenarios_and_rates(auth_client, book):
    factors = get(auth_client, "risk/factors/", portfolio=book.pk)
    assert {r["factor"] for r in factors["factors"]} >= {"Market", "Value"}
    assert all(r["observations"] >= 60 for r in factors["factors"])
    positions = get(auth_client, "factors/exposures/", portfolio=book.pk, level="position")[
        "positions"
    ]
    assert len(positions) == 5 and "Market" in positions[0]["betas"]
    market = get(auth_client, "risk/scenarios/market/", portfolio=book.pk)
    assert [m["move"] for m in market] == [-0.01, 0.01]
    assert all(m["delta_only_pnl"] is not None for m in market)
    rates = get(auth_client, "risk/scenarios/rates/", portfolio=book.pk)
    assert [r["move"] for r in rates] == [-0.005, 0.005]
    assert rates[0]["predicted_pnl"] == pytest.approx(-rates[1]["predicted_pnl"])
    assert rates[1]["predicted_pnl"] < 0  # long TLT loses when yields rise


def test_scenarios_calculate_stores_both_kinds(auth_client, book):
    response = auth_client.post(
        f"{API}/risk/scenarios/calculate/", {"portfolio": book.pk, "as_of": AS_OF.isoformat()}
    )
    assert response.status_code == 200, response.content
    assert set(response.json()) == {"as_of", "market", "rates"}
    assert MarketRiskScenario.objects.filter(portfolio=book, date=AS_OF).count() == 4
    auth_client.post(
        f"{API}/risk/scenarios/calculate/", {"portfolio": book.pk, "as_of": AS_OF.isoformat()}
    )
    assert MarketRiskScenario.objects.filter(portfolio=book, date=AS_OF).count() == 4


def test_accuracy_and_metrics(auth_client, book):
    acc = get(auth_client, "risk/scenarios/accuracy/", portfolio=book.pk, days_back=60)
    assert acc["observations"] == 60 and 0 <= acc["hit_rate"] <= 1
    metrics = get(auth_client, "risk/metrics/", portfolio=book.pk, confidence=0.95, horizon_days=1)
    for key in (
        "var_historical",
        "var_parametric",
        "var_monte_carlo",
        "expected_shortfall",
        "volatility",
        "sharpe",
        "sortino",
        "max_drawdown",
        "beta",
        "backtest",
    ):
        assert key in metrics
    assert (
        metrics["var_historical"] > 0 and metrics["expected_shortfall"] >= metrics["var_historical"]
    )
    # Short options: full revaluation departs from the delta-normal number, but not wildly.
    assert metrics["var_monte_carlo"] == pytest.approx(metrics["var_parametric"], rel=0.5)
    assert 0 <= metrics["backtest"]["kupiec_p_value"] <= 1
    ten_day = get(auth_client, "risk/metrics/", portfolio=book.pk, confidence=0.95, horizon_days=10)
    assert ten_day["var_historical"] == pytest.approx(metrics["var_historical"] * np.sqrt(10))


def test_linear_book_monte_carlo_var_matches_parametric(auth_client, spy_only):
    metrics = get(auth_client, "risk/metrics/", portfolio=spy_only.pk, confidence=0.99)
    assert metrics["var_monte_carlo"] == pytest.approx(metrics["var_parametric"], rel=0.03)


def test_factor_correlation(auth_client, spy_only):
    body = get(auth_client, "factors/correlation/", lookback=252)
    matrix = np.array(body["matrix"])
    assert body["lambda"] == 0.94 and body["factors"][0] == "Market"
    np.testing.assert_allclose(matrix, matrix.T, atol=1e-12)
    np.testing.assert_allclose(np.diag(matrix), 1.0, atol=1e-12)


def test_a_lookback_reaching_before_the_calendar_is_422_not_500(auth_client, spy_only):
    # Found by the fuzz run: 274 sessions before 1990-08-26 begin before 1990 (the calendar's
    # first year); there is simply too little history.
    response = auth_client.get("/api/v1/factors/correlation/?as_of=1990-08-26&lookback=274")
    assert_envelope(response, 422, "insufficient_history")


def test_too_little_history_is_422(auth_client, user):
    portfolio = PortfolioFactory(owner=user, name="New listing")
    stock(portfolio, "NEWCO", "10")
    load_prices([], sessions=300)
    prices_fetch_and_cache(
        symbols=["NEWCO"],
        start=sessions_back(AS_OF, 30)[0],
        end=AS_OF,
        providers=[SyntheticProvider()],
    )
    error = assert_envelope(
        auth_client.get(
            f"{API}/risk/factors/",
            {"portfolio": portfolio.pk, "as_of": AS_OF.isoformat()},
        ),
        422,
        "insufficient_history",
    )
    assert error["fields"]["required"] == 60
    assert not PortfolioFactorExposure.objects.filter(portfolio=portfolio, beta__gt=0.5).exists()


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("risk/scenarios/market/", {"moves": "up"}, "moves"),
        ("risk/scenarios/market/", {"moves": "0.9"}, "moves"),
        ("risk/metrics/", {"confidence": "2"}, "confidence"),
        ("risk/metrics/", {"horizon_days": "0"}, "horizon_days"),
        ("factors/exposures/", {"level": "galaxy"}, "level"),
    ],
)
def test_validation(auth_client, spy_only, path, params, field):
    error = assert_envelope(
        auth_client.get(f"{API}/{path}", {"portfolio": spy_only.pk, **params}), 400
    )
    assert field in error["fields"]


def test_second_user_gets_404(other_client, other_user, spy_only):
    for path in [
        "risk/factors/",
        "risk/metrics/",
        "risk/scenarios/market/",
        "risk/scenarios/rates/",
        "risk/scenarios/accuracy/",
        "factors/exposures/",
    ]:
        assert_envelope(
            other_client.get(f"{API}/{path}", {"portfolio": spy_only.pk}), 404, "not_found"
        )
    assert_envelope(
        other_client.post(f"{API}/risk/scenarios/calculate/", {"portfolio": spy_only.pk}), 404
    )


def test_statsmodels_diagnostics_agree_with_the_batched_betas(auth_client, book):
    from analytics.models import PositionFactorExposure

    get(auth_client, "risk/factors/", portfolio=book.pk)
    position = book.positions.get(symbol="JPM")
    body = get(auth_client, f"factors/diagnostics/{position.pk}/")
    stored = dict(
        PositionFactorExposure.objects.filter(
            position=position, date=AS_OF, factor__factor_type="style"
        ).values_list("factor__name", "raw_beta")
    )
    for name, beta in stored.items():
        assert body["params"][name] == pytest.approx(beta, abs=1e-9)
    assert body["observations"] >= 60 and 0 <= body["p_values"]["Market"] <= 1
    assert 0 < body["durbin_watson"] < 4


def test_diagnostics_of_another_users_position_is_404(other_client, book):
    position = book.positions.first()
    assert_envelope(other_client.get(f"{API}/factors/diagnostics/{position.pk}/"), 404, "not_found")
