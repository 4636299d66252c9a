from __future__ import annotations

from datetime import date
from decimal import Decimal

import numpy as np
import pytest
from django.core.management import call_command

from analytics.services import greeks_compute, positions_value
from analytics.tests.helpers import SERIES
from marketdata.calendar import sessions_back
from marketdata.providers.synthetic import SyntheticProvider
from marketdata.services import prices_fetch_and_cache
from portfolios.tests.factories import PortfolioFactory, option, stock
from sigmasight.tests.helpers import assert_envelope
from stress.models import StressScenario, StressTestResult
from stress.services import stress_run

pytestmark = pytest.mark.django_db

API = "/api/v1"
AS_OF = date(2026, 11, 20)


def load(symbols: list[str]) -> None:
    start = sessions_back(AS_OF, 300)[0]
    prices_fetch_and_cache(
        symbols=sorted(set(symbols) | set(SERIES)),
        start=start,
        end=AS_OF,
        providers=[SyntheticProvider()],
    )


@pytest.fixture
def library(db):
    call_command("load_stress_scenarios", stdout=open("/dev/null", "w"))  # noqa: SIM115
    return StressScenario.objects.filter(owner__isnull=True)


@pytest.fixture
def spy_book(user):
    portfolio = PortfolioFactory(owner=user, cash=Decimal("0.00"))
    stock(portfolio, "SPY", "500")
    load(["SPY"])
    positions_value(as_of=AS_OF, portfolio_ids=[portfolio.pk])
    return portfolio


@pytest.fixture
def demo_book(user):
    portfolio = PortfolioFactory(owner=user, cash=Decimal("200000.00"), name="Demo")
    for symbol, qty in [
        ("AAPL", "300"),
        ("JPM", "-200"),
        ("XOM", "400"),
        ("DAL", "500"),
        ("TLT", "200"),
        ("GLD", "100"),
    ]:
        stock(portfolio, symbol, qty)
    option(portfolio, "AAPL", date(2027, 1, 15), "P", "450", "5")
    option(portfolio, "SPY", date(2027, 1, 15), "C", "450", "-3")
    load(["AAPL", "JPM", "XOM", "DAL", "TLT", "GLD", "AAPL270115P00450000", "SPY270115C00450000"])
    positions_value(as_of=AS_OF, portfolio_ids=[portfolio.pk])
    greeks_compute(as_of=AS_OF, portfolio_ids=[portfolio.pk])
    return portfolio


def test_spy_only_book_under_market_down_10_loses_exposure_times_beta(spy_book):
    scenario = StressScenario.objects.create(
        name="down 10", category="market", shocks={"Market": -0.10}
    )
    result = stress_run(as_of=AS_OF, portfolio_ids=[spy_book.pk], scenarios=[scenario])[0]
    exposure = float(spy_book.positions.get().exposure)
    assert result.direct_pnl == pytest.approx(-0.10 * exposure * 1.0, rel=1e-9)
    # SPY is the market: its betas to the (orthogonal) residual factors are zero in sample.
    assert result.correlated_pnl == pytest.approx(result.direct_pnl, rel=1e-6)
    assert result.pnl_pct == pytest.approx(-0.10, rel=1e-6)


def test_every_library_scenario_runs_on_a_demo_book(demo_book, library):
    results = stress_run(as_of=AS_OF, portfolio_ids=[demo_book.pk])
    assert len(results) == library.filter(is_active=True).count() >= 25
    for r in results:
        assert np.isfinite([r.direct_pnl, r.correlated_pnl, r.total_pnl, r.pnl_pct]).all(), (
            r.scenario.name
        )
        assert len(r.breakdown["worst_positions"]) == 5
        assert sum(r.breakdown["by_position"].values()) == pytest.approx(
            r.correlated_pnl, rel=1e-9, abs=1e-6
        )
    crash = next(r for r in results if r.scenario.shocks.get("Market", 0) <= -0.3)
    assert crash.correlated_pnl < 0
    again = stress_run(as_of=AS_OF, portfolio_ids=[demo_book.pk])
    assert StressTestResult.objects.filter(portfolio=demo_book).count() == len(results)
    assert [r.correlated_pnl for r in again] == pytest.approx(
        [r.correlated_pnl for r in results], rel=1e-12
    )


def test_api_scenarios_library_and_own(auth_client, other_client, library):
    created = auth_client.post(
        f"{API}/stress/scenarios/",
        {"name": "Mine", "category": "market", "shocks": {"spy": -0.2, "Oil": 0.1}},
    )
    assert created.status_code == 201, created.content
    assert created.json()["shocks"] == {"Market": -0.2, "Oil": 0.1}
    mine = created.json()["id"]
    names = {
        s["name"]
        for s in auth_client.get(f"{API}/stress/scenarios/", {"page_size": 500}).json()["results"]
    }
    assert "Mine" in names and len(names) >= 26
    theirs = {
        s["name"]
        for s in other_client.get(f"{API}/stress/scenarios/", {"page_size": 500}).json()["results"]
    }
    assert "Mine" not in theirs
    assert_envelope(other_client.get(f"{API}/stress/scenarios/{mine}/"), 404, "not_found")
    library_id = library.first().pk
    assert_envelope(auth_client.patch(f"{API}/stress/scenarios/{library_id}/", {"name": "x"}), 403)
    assert auth_client.delete(f"{API}/stress/scenarios/{mine}/").status_code == 204


@pytest.mark.parametrize(
    "shocks", [{"Unobtainium": -0.1}, {"Market": -1.5}, {"Rates": 2.0}, {}, {"Market": "a lot"}]
)
def test_api_scenario_validation(auth_client, library, shocks):
    error = assert_envelope(
        auth_client.post(
            f"{API}/stress/scenarios/",
            {"name": "Bad", "category": "market", "shocks": shocks},
            format="json",
        ),
        400,
    )
    assert "shocks" in error["fields"]
    assert not StressScenario.objects.filter(name="Bad").exists()


def test_api_stress_test_results_correlations_and_replay(auth_client, demo_book, library):
    ids = list(library.filter(category="market").values_list("id", flat=True)[:3])
    body = auth_client.post(
        f"{API}/stress/test/{demo_book.pk}/", {"scenario_ids": ids, "as_of": AS_OF.isoformat()}
    ).json()
    assert body["as_of"] == AS_OF.isoformat() and len(body["results"]) == 3
    assert set(body["results"][0]) >= {
        "scenario",
        "direct_pnl",
        "correlated_pnl",
        "total_pnl",
        "pnl_pct",
        "by_factor",
        "worst_positions",
    }
    stored = auth_client.get(
        f"{API}/stress/results/{demo_book.pk}/", {"start": AS_OF.isoformat()}
    ).json()
    assert len(stored) == 3
    corr = auth_client.get(f"{API}/stress/correlations/", {"as_of": AS_OF.isoformat()}).json()
    matrix = np.array(corr["matrix"])
    np.testing.assert_allclose(matrix, matrix.T, atol=1e-12)
    np.testing.assert_allclose(np.diag(matrix), 1.0, atol=1e-9)
    assert np.linalg.eigvalsh(matrix).min() >= -1e-9
    assert {"Market", "Rates", "Oil"} <= set(corr["factors"])
    for crisis in ("2008", "covid", "dotcom"):
        replay = auth_client.get(f"{API}/stress/historical/{crisis}/", {"portfolio": demo_book.pk})
        assert replay.status_code == 200, replay.content
        assert replay.json()["scenario"]["is_historical"] is True
        assert np.isfinite(replay.json()["result"]["total_pnl"])
    assert_envelope(auth_client.get(f"{API}/stress/historical/1929/"), 404)


def test_api_stress_second_user_gets_404(other_client, demo_book, library):
    assert_envelope(other_client.post(f"{API}/stress/test/{demo_book.pk}/", {}), 404, "not_found")
    assert_envelope(other_client.get(f"{API}/stress/results/{demo_book.pk}/"), 404, "not_found")
    assert_envelope(
        other_client.get(f"{API}/stress/historical/2008/", {"portfolio": demo_book.pk}), 404
    )


def test_api_stress_test_rejects_unknown_or_foreign_scenarios(
    auth_client, other_user, demo_book, library
):
    theirs = StressScenario.objects.create(
        owner=other_user, name="secret", category="market", shocks={"Market": -0.5}
    )
    error = assert_envelope(
        auth_client.post(
            f"{API}/stress/test/{demo_book.pk}/", {"scenario_ids": [theirs.pk, 999999]}
        ),
        400,
    )
    assert len(error["fields"]["scenario_ids"]) == 2
