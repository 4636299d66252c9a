"""GET /api/v1/risk/contributions/: the stored risk contributions of the batch tests' books
(first: AAPL 100 and a short AAPL call; second, another user's: JPM short, KO long), by
position and grouped, every method and measure; the errors in the envelope."""

from __future__ import annotations

import math
from datetime import date
from decimal import Decimal

import pytest
from drf_spectacular.generators import SchemaGenerator

from analytics import risk_metrics as rm
from analytics.calculations import risk
from analytics.models import PortfolioRiskContribution, RiskMetricSnapshot
from analytics.risk_services import factors_compute
from analytics.services import greeks_compute, positions_value
from analytics.tests.helpers import SERIES
from marketdata.calendar import sessions_back
from marketdata.models import Security
from marketdata.providers.synthetic import SyntheticProvider
from marketdata.services import prices_fetch_and_cache
from portfolios.models import Portfolio, Strategy, Tag
from portfolios.tests.factories import PortfolioFactory, stock
from sigmasight.tests.helpers import assert_envelope

pytestmark = pytest.mark.django_db

URL = "/api/v1/risk/contributions/"
AS_OF = date(2026, 11, 20)
METHODS = ("parametric", "historical", "monte_carlo")
MEASURES = ("volatility", "var", "es")


def prices(symbols: list[str], sessions: int = 270) -> None:
    prices_fetch_and_cache(
        symbols=symbols,
        start=sessions_back(AS_OF, sessions)[0],
        end=AS_OF,
        providers=[SyntheticProvider()],
    )


def measure(*portfolios: Portfolio) -> None:
    ids = [p.pk for p in portfolios]
    for job in (positions_value, greeks_compute, factors_compute):
        job(as_of=AS_OF, portfolio_ids=ids)
    rm.risk_metrics_compute(as_of=AS_OF, portfolio_ids=ids)


@pytest.fixture
def book(books, user, settings):
    """The first book with a third position (MSFT), tagged: AAPL `core` and `tech`, MSFT
    `tech`, the call none; a strategy holds AAPL and the call; sectors stored for AAPL only.
    Measured (contributions stored) with the second book, the API cache off."""
    first, second = books
    msft = stock(first, "MSFT", "-20")
    prices(["MSFT", *[p.symbol for p in first.positions.exclude(option_type="")]])
    aapl = first.positions.get(symbol="AAPL")
    core, tech = (Tag.objects.create(owner=user, name=n) for n in ("core", "tech"))
    aapl.tags.add(core, tech)
    msft.tags.add(tech)
    covered = Strategy.objects.create(portfolio=first, name="Covered call", kind="covered_call")
    covered.positions.add(aapl, first.positions.get(option_type="C"))
    Security.objects.filter(symbol="AAPL").update(sector="Technology", industry="Hardware")
    measure(first, second)
    settings.SIGMASIGHT_API_CACHE_TTL_S = 0
    return first


def get(client, portfolio: Portfolio, **params: object):
    return client.get(URL, {"portfolio": portfolio.pk, **params})


def assert_adds_up(body: dict) -> None:
    components = [row["component"] for row in body["contributions"]]
    assert math.fsum(components) == pytest.approx(body["total"], rel=1e-9)
    for row in body["contributions"]:
        assert row["percent"] == pytest.approx(row["component"] / body["total"], rel=1e-12)
        if row["exposure"]:
            assert row["marginal"] == pytest.approx(row["component"] / row["exposure"], rel=1e-12)
        else:
            assert row["marginal"] is None


def test_contributions_default_to_historical_var_by_position(book, auth_client):
    response = get(auth_client, book)
    assert response.status_code == 200, response.content
    body = response.json()
    stored = RiskMetricSnapshot.objects.get(portfolio=book, date=AS_OF, confidence=0.95)
    assert body["total"] == stored.var_historical
    assert {k: body[k] for k in ("portfolio", "as_of", "measure", "method", "by")} == {
        "portfolio": book.pk,
        "as_of": AS_OF.isoformat(),
        "measure": "var",
        "method": "historical",
        "by": "position",
    }
    assert (body["confidence"], body["horizon_days"]) == (0.95, 1)
    assert body["observations"] == stored.observations
    assert body["systematic"] is None and body["specific"] is None and body["unavailable"] is None
    ids = {p.pk: p.symbol for p in book.positions.all()}
    assert {row["position"]: row["key"] for row in body["contributions"]} == ids
    assert all(row["positions"] == 1 for row in body["contributions"])
    components = [row["component"] for row in body["contributions"]]
    assert components == sorted(components, reverse=True)
    assert_adds_up(body)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("measure", MEASURES)
def test_contributions_of_every_method_and_measure_add_up(book, auth_client, method, measure):
    body = get(auth_client, book, method=method, measure=measure, confidence=0.99).json()
    row = PortfolioRiskContribution.objects.get(portfolio=book, confidence=0.99)
    assert body["total"] == getattr(row, f"{method}_{measure}") and body["total"] > 0
    assert_adds_up(body)
    if method == "parametric":
        assert body["systematic"] + body["specific"] == pytest.approx(body["total"], rel=1e-9)
    else:
        assert body["systematic"] is None and body["specific"] is None


def test_contributions_by_factor_are_the_factors_and_specific(book, auth_client):
    body = get(auth_client, book, method="parametric", by="factor").json()
    assert_adds_up(body)
    keys = {row["key"] for row in body["contributions"]}
    assert "Market" in keys and "specific" in keys
    specific = next(row for row in body["contributions"] if row["key"] == "specific")
    assert specific["component"] == pytest.approx(body["specific"], rel=1e-12)
    assert specific["exposure"] is None and specific["marginal"] is None
    market = next(row for row in body["contributions"] if row["key"] == "Market")
    assert market["exposure"] == pytest.approx(
        float(book.factor_exposures.get(date=AS_OF, factor__name="Market").dollar_exposure)
    )


@pytest.mark.parametrize("by", ["underlying", "sector", "industry"])
def test_contributions_by_a_partition_add_up(book, auth_client, by):
    body = get(auth_client, book, by=by, method="monte_carlo", measure="es").json()
    assert_adds_up(body)
    keys = {row["key"]: row["positions"] for row in body["contributions"]}
    expected = {
        "underlying": {"AAPL": 2, "MSFT": 1},
        "sector": {"Technology": 2, "Unclassified": 1},
        "industry": {"Hardware": 2, "Unclassified": 1},
    }
    assert keys == expected[by]


def test_contributions_by_tag_count_a_position_in_each_of_its_tags(book, auth_client):
    by_position = {
        row["key"]: row
        for row in get(auth_client, book, method="parametric").json()["contributions"]
    }
    body = get(auth_client, book, by="tag", method="parametric").json()
    rows = {row["key"]: row for row in body["contributions"]}
    assert {k: r["positions"] for k, r in rows.items()} == {"core": 1, "tech": 2, "untagged": 1}
    aapl, msft = by_position["AAPL"], by_position["MSFT"]
    assert rows["tech"]["component"] == pytest.approx(aapl["component"] + msft["component"])
    assert rows["core"]["component"] == pytest.approx(aapl["component"])
    assert rows["tech"]["exposure"] == pytest.approx(aapl["exposure"] + msft["exposure"])
    # AAPL counts twice: the tags add up to the total plus AAPL's component.
    assert math.fsum(r["component"] for r in rows.values()) == pytest.approx(
        body["total"] + aapl["component"], rel=1e-9
    )


def test_contributions_by_strategy_put_the_others_in_none(book, auth_client):
    body = get(auth_client, book, by="strategy").json()
    assert {r["key"]: r["positions"] for r in body["contributions"]} == {
        "Covered call": 2,
        "none": 1,
    }
    assert_adds_up(body)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"measure": "sharpe"}, "measure"),
        ({"method": "bootstrap"}, "method"),
        ({"by": "country"}, "by"),
        ({"by": "factor"}, "by"),
        ({"by": "factor", "method": "monte_carlo"}, "by"),
        ({"confidence": "high"}, "confidence"),
        ({"confidence": "1.5"}, "confidence"),
        ({"confidence": ""}, "confidence"),
        ({"as_of": "yesterday"}, "as_of"),
    ],
)
def test_contributions_bad_query_is_400_naming_the_field(book, auth_client, params, field):
    error = assert_envelope(get(auth_client, book, **params), 400, "validation_error")
    assert set(error["fields"]) == {field}


def test_contributions_at_an_unstored_confidence_are_400_listing_the_stored(book, auth_client):
    error = assert_envelope(get(auth_client, book, confidence=0.9), 400, "validation_error")
    assert error["fields"] == {"confidence": ["One of the stored confidences: 0.95, 0.99."]}


def test_contributions_of_another_user_are_404(book, other_client, books):
    assert_envelope(get(other_client, book), 404)
    _, second = books
    assert get(other_client, second).status_code == 200


def test_contributions_serve_the_latest_session_on_or_before_as_of(book, auth_client):
    later = get(auth_client, book, as_of="2026-11-24").json()
    assert later["as_of"] == AS_OF.isoformat()
    assert later == get(auth_client, book).json()


def test_contributions_not_stored_are_computed_on_the_first_read(
    book, auth_client, django_assert_num_queries
):
    earlier = date(2026, 11, 19)
    assert not PortfolioRiskContribution.objects.filter(portfolio=book, date=earlier).exists()
    body = get(auth_client, book, as_of=earlier.isoformat()).json()
    stored = RiskMetricSnapshot.objects.get(portfolio=book, date=earlier, confidence=0.95)
    assert body["as_of"] == earlier.isoformat() and body["total"] == stored.var_historical
    assert_adds_up(body)
    with django_assert_num_queries(6):  # read again: stored, nothing computed or written
        assert get(auth_client, book, as_of=earlier.isoformat(), by="tag").status_code == 200


def test_contributions_of_a_book_with_too_little_history_give_the_reason(user, auth_client):
    portfolio = PortfolioFactory(owner=user)
    stock(portfolio, "NEWCO", "10")
    prices(SERIES)
    prices(["NEWCO"], sessions=30)
    measure(portfolio)
    response = get(auth_client, portfolio)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["total"] is None and body["contributions"] == []
    assert "NEWCO has 30" in body["unavailable"]
    assert not PortfolioRiskContribution.objects.exists()


def test_contributions_of_an_empty_book_are_zero(user, auth_client):
    portfolio = PortfolioFactory(owner=user, cash=Decimal("1000"))
    prices(SERIES)
    measure(portfolio)
    for params in ({}, {"method": "parametric", "by": "factor"}):
        body = get(auth_client, portfolio, **params).json()
        assert body["total"] == 0.0
        assert body["contributions"] == (
            []
            if not params
            else [
                {
                    "key": "specific",
                    "position": None,
                    "positions": 0,
                    "exposure": None,
                    "component": 0.0,
                    "marginal": None,
                    "percent": None,
                }
            ]
        )


def test_contributions_of_an_unavailable_method_are_null_with_the_reason(
    books, auth_client, monkeypatch
):
    first, _ = books
    prices([p.symbol for p in first.positions.exclude(option_type="")])

    def singular(*args, **kwargs):
        raise ValueError("returns contain NaN or infinite values")

    monkeypatch.setattr(risk, "ewma_covariance", singular)
    measure(first)
    body = get(auth_client, first, method="monte_carlo").json()
    assert body["total"] is None and body["unavailable"].startswith("factor covariance:")
    assert all(row["component"] is None for row in body["contributions"])
    assert all(row["exposure"] is not None for row in body["contributions"])
    assert get(auth_client, first).json()["total"] > 0  # historical still is


def test_schema_documents_the_query_and_every_field():
    openapi = SchemaGenerator().get_schema(public=True)
    operation = openapi["paths"]["/api/v1/risk/contributions/"]["get"]
    names = {p["name"] for p in operation["parameters"]}
    assert {"portfolio", "as_of", "measure", "method", "by", "confidence"} <= names
    assert all(p.get("description") for p in operation["parameters"])
    schemas = openapi["components"]["schemas"]
    for name in ("Contributions", "Contribution"):
        for field, spec in schemas[name]["properties"].items():
            assert spec.get("description"), (name, field)
