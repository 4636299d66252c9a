"""GET /api/v1/risk/attribution/: the stored attribution of a range of sessions, split by
factor, position, underlying or greek; parts that sum to each day's P&L; a second user's 404;
bad parameters' 400s; a fixed number of queries."""

from __future__ import annotations

from datetime import date

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import Resolver404, resolve
from django.utils import timezone

from analytics.api.attribution_views import RiskAttributionView
from analytics.models import PortfolioAttribution, PositionAttribution
from marketdata.calendar import sessions_back
from portfolios.tests.factories import PortfolioFactory, option, stock
from sigmasight.tests.helpers import assert_envelope

URL = "/api/v1/risk/attribution/"
DAYS = [date(2026, 11, 18), date(2026, 11, 19), date(2026, 11, 20)]
EXP = date(2027, 1, 15)


def _routed() -> bool:
    """Whether the URL reaches the view (not the catch-all 404 under /api/)."""
    try:
        match = resolve(URL)
    except Resolver404:
        return False
    return getattr(match.func, "view_class", None) is RiskAttributionView


pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(not _routed(), reason=f"{URL} is not in analytics/api/urls.py yet"),
]


def store(portfolio, positions: dict, day: date, scale: float, basis: str = "stored") -> None:
    """A day of rows: each position's P&L `scale` x its base, Market 40% of it, the call's
    explain with a residual; the portfolio row their sums."""
    base = {"aapl": 100.0, "aapl2": -30.0, "ko": -50.0, "call": 20.0}
    totals = {"total": 0.0, "Market": 0.0}
    greeks = dict.fromkeys(["delta", "gamma", "vega", "theta", "rho", "residual"], 0.0)
    for key, position in positions.items():
        total = base[key] * scale
        parts = (
            {"delta": 0.8 * total, "gamma": 1.0, "vega": 0.5, "theta": -2.0, "rho": 0.1}
            if key == "call"
            else {}
        )
        if parts:
            parts["residual"] = total - sum(parts.values())
            for name, value in parts.items():
                greeks[name] += value
        PositionAttribution.objects.create(
            position=position,
            date=day,
            total_pnl=total,
            factor_pnl=0.4 * total,
            specific_pnl=0.6 * total,
            by_factor={"Market": 0.4 * total},
            **{f"{name}_pnl": value for name, value in parts.items()},
        )
        totals["total"] += total
        totals["Market"] += 0.4 * total
    PortfolioAttribution.objects.create(
        portfolio=portfolio,
        date=day,
        total_pnl=totals["total"],
        factor_pnl=totals["Market"],
        specific_pnl=totals["total"] - totals["Market"],
        by_factor={"Market": totals["Market"]},
        greeks=greeks,
        basis=basis,
        computed_at=timezone.now(),
    )


@pytest.fixture
def stored(user):
    portfolio = PortfolioFactory(owner=user, name="Attributed")
    positions = {
        "aapl": stock(portfolio, "AAPL", "100"),
        "aapl2": stock(portfolio, "AAPL", "20", entry_date=date(2025, 3, 3)),
        "ko": stock(portfolio, "KO", "-200"),
        "call": option(portfolio, "AAPL", EXP, "C", "500", "1"),
    }
    for i, day in enumerate(DAYS):
        store(portfolio, positions, day, float(i + 1), "pro_forma" if i == 0 else "stored")
    return portfolio, positions


def test_by_factor_default_range_and_parts_that_sum(auth_client, stored):
    portfolio, _ = stored
    body = auth_client.get(URL, {"portfolio": portfolio.pk}).json()
    assert body["by"] == "factor" and body["portfolio"] == portfolio.pk
    assert body["end"] == "2026-11-20"
    assert body["start"] == sessions_back(DAYS[-1], 90)[0].isoformat()
    assert [d["date"] for d in body["series"]] == [d.isoformat() for d in DAYS]
    assert [d["basis"] for d in body["series"]] == ["pro_forma", "stored", "stored"]
    first = body["series"][0]
    assert first["total_pnl"] == pytest.approx(40.0)
    assert first["parts"] == pytest.approx({"Market": 16.0, "specific": 24.0})
    for day in body["series"]:
        assert sum(day["parts"].values()) == pytest.approx(day["total_pnl"], abs=1e-9)
    assert body["totals"] == pytest.approx({"Market": 96.0, "specific": 144.0})
    assert (body["total_pnl"], body["factor_pnl"], body["specific_pnl"]) == pytest.approx(
        (240.0, 96.0, 144.0)
    )


def test_by_position_underlying_and_greek(auth_client, stored):
    portfolio, positions = stored
    query = {"portfolio": portfolio.pk, "start": "2026-11-19", "end": "2026-11-19"}
    by_position = auth_client.get(URL, {**query, "by": "position"}).json()
    [day] = by_position["series"]
    lots = {f"AAPL #{positions['aapl'].pk}": 200.0, f"AAPL #{positions['aapl2'].pk}": -60.0}
    assert day["parts"] == pytest.approx({**lots, "KO": -100.0, positions["call"].symbol: 40.0})
    by_underlying = auth_client.get(URL, {**query, "by": "underlying"}).json()
    assert by_underlying["series"][0]["parts"] == pytest.approx({"AAPL": 180.0, "KO": -100.0})
    greek = auth_client.get(URL, {**query, "by": "greek"}).json()["series"][0]["parts"]
    assert greek == pytest.approx(
        {
            "delta": 32.0,
            "gamma": 1.0,
            "vega": 0.5,
            "theta": -2.0,
            "rho": 0.1,
            "residual": 40.0 - 31.6,
            "other": 40.0,  # the stocks: 200 - 60 - 100
        }
    )
    assert by_position["totals"] == pytest.approx(day["parts"])
    # Any range is read (the job keeps the snapshots' year of rows).
    long = auth_client.get(URL, {"portfolio": portfolio.pk, "start": "2020-01-02"}).json()
    assert len(long["series"]) == 3


def test_default_portfolio_and_nothing_stored(auth_client, user, stored):
    portfolio, _ = stored
    assert auth_client.get(URL).json()["portfolio"] == portfolio.pk
    empty = PortfolioFactory(owner=user, name="Nothing yet")
    body = auth_client.get(URL, {"portfolio": empty.pk}).json()
    assert body["series"] == [] and body["totals"] == {}
    assert body["start"] is None and body["end"] is None


def test_another_users_portfolio_is_404(other_client, stored):
    portfolio, _ = stored
    assert_envelope(other_client.get(URL, {"portfolio": portfolio.pk}), 404)
    assert_envelope(other_client.get(URL, {"portfolio": portfolio.pk, "by": "greek"}), 404)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"by": "sector"}, "by"),
        ({"by": ""}, "by"),
        ({"start": ""}, "start"),
        ({"start": "2026-13-01"}, "start"),
        ({"start": "2026-11-20", "end": "2026-11-19"}, "start"),
        ({"portfolio": "abc"}, "portfolio"),
    ],
)
def test_bad_parameters_are_400_naming_the_field(auth_client, stored, query, field):
    error = assert_envelope(auth_client.get(URL, query), 400)
    assert field in error["fields"]


def test_a_fixed_number_of_queries_whatever_the_range_and_book(auth_client, user, settings):
    settings.SIGMASIGHT_API_CACHE_TTL_S = 0
    small = PortfolioFactory(owner=user, name="Small")
    small_positions = {"aapl": stock(small, "AAPL", "1")}
    store(small, small_positions, DAYS[0], 1.0)
    large = PortfolioFactory(owner=user, name="Large")
    large_positions = {
        "aapl": stock(large, "AAPL", "100"),
        "aapl2": stock(large, "AAPL", "20", entry_date=date(2025, 3, 3)),
        "ko": stock(large, "KO", "-200"),
        "call": option(large, "AAPL", EXP, "C", "500", "1"),
    }
    for i, day in enumerate(DAYS):
        store(large, large_positions, day, float(i + 1))
    for by in ("factor", "position", "underlying", "greek"):
        counts = []
        for portfolio in (small, large):
            with CaptureQueriesContext(connection) as queries:
                response = auth_client.get(URL, {"portfolio": portfolio.pk, "by": by})
            assert response.status_code == 200, response.content
            counts.append(len(queries))
        assert counts[0] == counts[1], (by, counts)
