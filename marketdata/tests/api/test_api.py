from __future__ import annotations

from datetime import date, timedelta

import pytest

from marketdata.calendar import last_completed_session, sessions_back
from marketdata.models import DailyPrice, Security
from marketdata.providers.base import MarketDataProvider
from marketdata.providers.synthetic import SyntheticProvider
from marketdata.services import (
    option_chain_fetch_and_cache,
    prices_fetch_and_cache,
    sectors_fetch_and_cache,
)
from sigmasight.tests.helpers import assert_envelope

pytestmark = pytest.mark.django_db

BASE = "/api/v1/market-data"


@pytest.fixture
def cached():
    last = last_completed_session()
    start = sessions_back(last, 30)[0]
    synthetic: list[MarketDataProvider] = [SyntheticProvider()]
    prices_fetch_and_cache(
        symbols=["AAPL", "SPY", "US10Y"], start=start, end=last, providers=synthetic
    )
    sectors_fetch_and_cache(symbols=["AAPL", "SPY"], providers=synthetic)
    option_chain_fetch_and_cache(underlying="AAPL", as_of=last, providers=synthetic)
    return {"last": last, "start": start}


def test_price_history_ordered_with_source(auth_client, cached):
    response = auth_client.get(f"{BASE}/prices/aapl/")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["count"] == 30
    rows = body["results"]
    assert [r["date"] for r in rows] == sorted(r["date"] for r in rows)
    assert set(rows[0]) == {"date", "open", "high", "low", "close", "volume", "source"}
    assert rows[0]["source"] == "synthetic"
    assert isinstance(rows[0]["close"], str)


def test_price_history_date_filters(auth_client, cached):
    start = (cached["last"] - timedelta(days=7)).isoformat()
    rows = auth_client.get(f"{BASE}/prices/AAPL/", {"start": start}).json()["results"]
    assert rows and all(r["date"] >= start for r in rows)
    end = cached["start"].isoformat()
    assert [
        r["date"] for r in auth_client.get(f"{BASE}/prices/AAPL/", {"end": end}).json()["results"]
    ] == [end]


def test_price_history_query_count_does_not_grow(
    auth_client, cached, django_assert_max_num_queries
):
    with django_assert_max_num_queries(4):  # user, security, count, page
        auth_client.get(f"{BASE}/prices/AAPL/")


@pytest.mark.parametrize(
    ("query", "field"),
    [({"start": "2024-02-30"}, "start"), ({"start": "2026-01-10", "end": "2026-01-01"}, "start")],
)
def test_price_history_bad_dates_400(auth_client, cached, query, field):
    error = assert_envelope(auth_client.get(f"{BASE}/prices/AAPL/", query), 400, "validation_error")
    assert field in error["fields"]


def test_price_history_unknown_symbol_404(auth_client, cached):
    assert_envelope(auth_client.get(f"{BASE}/prices/NOPE/"), 404, "not_found")
    assert_envelope(auth_client.get(f"{BASE}/prices/not%20a%20ticker/"), 404)


def test_market_data_is_shared_reference_data_for_every_user(auth_client, other_client, cached):
    # Prices are not user data: a second user reads exactly the same series.
    assert (
        auth_client.get(f"{BASE}/prices/AAPL/").json()
        == other_client.get(f"{BASE}/prices/AAPL/").json()
    )


def test_current_prices_with_staleness_and_unknowns(auth_client, cached):
    body = auth_client.get(f"{BASE}/prices/current/", {"symbols": "AAPL,spy,NOPE,US10Y"}).json()
    assert list(body) == ["AAPL", "SPY", "NOPE", "US10Y"]
    assert body["NOPE"] is None
    assert body["AAPL"]["date"] == cached["last"].isoformat()
    assert body["AAPL"]["stale"] is False
    assert body["AAPL"]["source"] == "synthetic"
    assert 0 < float(body["US10Y"]["price"]) < 0.1


def test_current_prices_as_of_marks_nothing_stale_for_that_day(auth_client, cached):
    as_of = cached["start"]
    body = auth_client.get(
        f"{BASE}/prices/current/", {"symbols": "AAPL", "as_of": as_of.isoformat()}
    ).json()
    assert body["AAPL"]["date"] == as_of.isoformat()
    assert body["AAPL"]["stale"] is False


def test_current_prices_stale_when_cache_lags(auth_client, cached):
    DailyPrice.objects.filter(security__symbol="SPY", date=cached["last"]).delete()
    assert (
        auth_client.get(f"{BASE}/prices/current/", {"symbols": "SPY"}).json()["SPY"]["stale"]
        is True
    )


@pytest.mark.parametrize(
    "query",
    [{}, {"symbols": ""}, {"symbols": "AAPL,NOT A TICKER"}, {"symbols": ",".join(["A"] * 501)}],
)
def test_current_prices_bad_query_400(auth_client, query):
    error = assert_envelope(
        auth_client.get(f"{BASE}/prices/current/", query), 400, "validation_error"
    )
    assert "symbols" in error["fields"]


def test_sectors(auth_client, cached):
    body = auth_client.get(f"{BASE}/sectors/", {"symbols": "AAPL,SPY,ZZZZ"}).json()
    assert body["AAPL"] == {"sector": "Technology", "industry": "Consumer Electronics"}
    assert body["SPY"]["sector"] == "ETF"
    assert body["ZZZZ"] is None


def test_option_chain_by_expiration(auth_client, cached):
    everything = auth_client.get(f"{BASE}/options/AAPL/").json()
    assert everything["count"] == Security.objects.filter(underlying="AAPL").count()
    first = everything["results"][0]
    assert set(first) == {
        "symbol",
        "expiration",
        "strike",
        "option_type",
        "date",
        "close",
        "implied_volatility",
        "source",
    }
    expiration = first["expiration"]
    one = auth_client.get(f"{BASE}/options/AAPL/", {"expiration": expiration}).json()["results"]
    assert one and {r["expiration"] for r in one} == {expiration}
    assert {r["option_type"] for r in one} == {"C", "P"}
    assert auth_client.get(f"{BASE}/options/MSFT/").json()["count"] == 0
    assert_envelope(auth_client.get(f"{BASE}/options/AAPL/", {"expiration": "soon"}), 400)


def test_refresh_is_staff_only(api_client, auth_client):
    assert_envelope(api_client.post(f"{BASE}/refresh/", {}, format="json"), 401)
    assert_envelope(
        auth_client.post(f"{BASE}/refresh/", {}, format="json"), 403, "permission_denied"
    )


def test_refresh_queues_a_job_that_fills_the_cache(
    staff_client, django_capture_on_commit_callbacks, eager_celery
):
    end = last_completed_session()
    start = sessions_back(end, 5)[0]
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(
            f"{BASE}/refresh/",
            {"symbols": ["KO", "pep"], "start": start.isoformat(), "end": end.isoformat()},
            format="json",
        )
    assert response.status_code == 202, response.content
    assert len(response.json()["job_id"]) == 36
    assert DailyPrice.objects.filter(security__symbol__in=["KO", "PEP"]).count() == 10
    assert Security.objects.get(symbol="KO").sector == "Consumer Defensive"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"symbols": ["NOT A TICKER"]}, "symbols"),
        ({"symbols": []}, "symbols"),
        ({"start": "2026-01-10", "end": "2026-01-01"}, "start"),
        ({"end": (date.today() + timedelta(days=3)).isoformat()}, "end"),
        ({"start": "2015-01-02", "end": "2024-01-02"}, "start"),
    ],
)
def test_refresh_validates_and_queues_nothing(
    staff_client, django_capture_on_commit_callbacks, body, field
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        error = assert_envelope(staff_client.post(f"{BASE}/refresh/", body, format="json"), 400)
    assert field in error["fields"]
    assert callbacks == []
    assert DailyPrice.objects.count() == 0
