"""Splits and dividends from each source: Polygon's reference endpoints and Yahoo's chart events
through the real client libraries against the loopback replay server; the synthetic market has
none."""

# The Yahoo fixtures are imported from its provider tests: their names are parameters here.
# ruff: noqa: F811

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from decimal import Decimal

import pytest

from marketdata.providers.base import (
    ACTION_COLUMNS,
    MalformedPayload,
    MarketDataProvider,
    NotSupported,
)
from marketdata.providers.synthetic import SyntheticProvider
from marketdata.providers.yahoo import YahooProvider
from marketdata.tests.helpers import polygon, provider_for
from marketdata.tests.providers.test_yahoo_provider import (  # noqa: F401 (fixtures)
    CHART_AAPL,
    _fresh_yfinance,
    _replay,
    provider,
    server,
    session,
    yahoo,
)
from marketdata.tests.replay import ReplayServer, Reply

SPLITS = "/v3/reference/splits"
DIVIDENDS = "/v3/reference/dividends"


@pytest.fixture(scope="module")
def polygon_replay() -> Iterator[ReplayServer]:
    with ReplayServer() as replay:
        yield replay


@pytest.fixture
def poly(polygon_replay: ReplayServer) -> ReplayServer:
    polygon_replay.routes.clear()
    polygon_replay.requests.clear()
    return polygon_replay


def test_polygon_splits_reads_ratio_and_sends_range(poly: ReplayServer) -> None:
    poly.route(SPLITS, Reply(body=polygon("splits_AAPL.json")))

    frame = provider_for(poly, []).splits(["AAPL"], date(2020, 8, 1), date(2020, 9, 30))

    assert list(frame.columns) == ACTION_COLUMNS
    (row,) = frame.to_dict("records")
    assert row["symbol"] == "AAPL"
    assert row["kind"] == "split"
    assert row["ex_date"] == date(2020, 8, 31)
    assert (row["split_to"], row["split_from"]) == (Decimal(4), Decimal(1))
    (request,) = poly.requests
    assert request.query == {
        "ticker": ["AAPL"],
        "execution_date.gte": ["2020-08-01"],
        "execution_date.lte": ["2020-09-30"],
        "limit": ["1000"],
    }


def test_polygon_dividends_keep_cash_dividends_only(poly: ReplayServer) -> None:
    poly.route(DIVIDENDS, Reply(body=polygon("dividends_AAPL.json")))

    frame = provider_for(poly, []).dividends(["AAPL"], date(2020, 5, 1), date(2020, 8, 31))

    (row,) = frame.to_dict("records")
    assert row["kind"] == "cash_dividend"
    assert row["ex_date"] == date(2020, 8, 7)
    assert row["pay_date"] == date(2020, 8, 13)
    assert row["cash_amount"] == Decimal("0.205")
    assert poly.requests[0].query["ex_dividend_date.gte"] == ["2020-05-01"]


def test_polygon_corporate_actions_combines_both_endpoints(poly: ReplayServer) -> None:
    poly.route(SPLITS, Reply(body=polygon("splits_AAPL.json")))
    poly.route(DIVIDENDS, Reply(body=polygon("dividends_AAPL.json")))

    frame = provider_for(poly, []).corporate_actions(["AAPL"], date(2020, 1, 1), date(2020, 12, 31))

    assert sorted(frame["kind"]) == ["cash_dividend", "split"]


def test_polygon_split_without_ratio_is_malformed(poly: ReplayServer) -> None:
    poly.route(
        SPLITS,
        Reply(
            body={"status": "OK", "results": [{"execution_date": "2020-08-31", "ticker": "AAPL"}]}
        ),
    )

    with pytest.raises(MalformedPayload, match="split_to"):
        provider_for(poly, []).splits(["AAPL"], date(2020, 8, 1), date(2020, 9, 30))


def test_polygon_no_actions_is_an_empty_frame(poly: ReplayServer) -> None:
    poly.route(SPLITS, Reply(body={"status": "OK", "results": []}))
    poly.route(DIVIDENDS, Reply(body={"status": "OK", "results": []}))

    frame = provider_for(poly, []).corporate_actions(["AAPL"], date(2020, 1, 1), date(2020, 2, 1))

    assert frame.empty
    assert list(frame.columns) == ACTION_COLUMNS


def test_yahoo_actions_read_chart_events(server: ReplayServer, provider: YahooProvider) -> None:
    server.route(CHART_AAPL, Reply(200, yahoo("chart_AAPL_actions.json")))

    frame = provider.corporate_actions(["AAPL"], date(2024, 1, 2), date(2024, 1, 5))

    rows = {r["kind"]: r for r in frame.to_dict("records")}
    assert rows["cash_dividend"]["ex_date"] == date(2024, 1, 3)
    assert rows["cash_dividend"]["cash_amount"] == Decimal("0.240000")
    assert rows["split"]["ex_date"] == date(2024, 1, 4)
    assert (rows["split"]["split_to"], rows["split"]["split_from"]) == (Decimal(3), Decimal(2))
    request = next(r for r in server.hits(CHART_AAPL) if "period1" in r.query)
    assert "div" in request.query["events"][0]


def test_yahoo_actions_without_events_are_empty(
    server: ReplayServer,
    provider: YahooProvider,
) -> None:
    server.route(CHART_AAPL, Reply(200, yahoo("chart_AAPL.json")))

    frame = provider.corporate_actions(["AAPL"], date(2024, 1, 2), date(2024, 1, 5))

    assert frame.empty


def test_synthetic_market_has_no_actions() -> None:
    frame = SyntheticProvider().corporate_actions(["AAPL"], date(2024, 1, 2), date(2024, 1, 5))

    assert frame.empty
    assert list(frame.columns) == ACTION_COLUMNS


def test_a_source_without_actions_says_not_supported() -> None:
    with pytest.raises(NotSupported):
        MarketDataProvider.corporate_actions(
            SyntheticProvider(), ["AAPL"], date(2024, 1, 2), date(2024, 1, 5)
        )
