"""PolygonProvider through the real polygon-api-client, against the loopback replay server.

Payloads under recordings/polygon/ are hand-made in Polygon's documented format (see the README
there); nothing here reaches Polygon.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Iterator
from datetime import date
from typing import Any

import pandas as pd
import pytest

from marketdata.providers.base import (
    BAR_COLUMNS,
    CHAIN_COLUMNS,
    MalformedPayload,
    NotSupported,
    ProviderError,
    ProviderTimeout,
    RateLimited,
)
from marketdata.providers.polygon import PolygonProvider
from marketdata.providers.ratelimit import (
    POLYGON_TIERS,
    TokenBucket,
    backoff_delay,
    parse_retry_after,
)
from marketdata.tests.helpers import (
    AAPL_PAGE2_PATH,
    AAPL_PATH,
    CHAIN_PATH,
    END,
    MSFT_PATH,
    START,
    ZZZZ_PATH,
    polygon,
    provider_for,
)
from marketdata.tests.replay import HANG, ReplayServer, Reply


@pytest.fixture(scope="module")
def replay_server() -> Iterator[ReplayServer]:
    # One server for the module: stopping one costs up to its 0.5 s poll interval.
    with ReplayServer() as replay:
        yield replay


@pytest.fixture
def server(replay_server: ReplayServer) -> ReplayServer:
    replay_server.routes.clear()
    replay_server.requests.clear()
    return replay_server


@pytest.fixture
def sleeps() -> list[float]:
    """A fake `sleep` that records the waits instead of taking them."""
    return []


def page1_on(server: ReplayServer) -> dict[str, Any]:
    page = polygon("aggs_AAPL_page1.json")
    page["next_url"] = page["next_url"].replace("https://api.polygon.io", server.url)
    return page


def test_daily_bars_follows_pagination_in_order(server: ReplayServer, sleeps: list[float]) -> None:
    server.route(AAPL_PATH, Reply(body=page1_on(server)))
    server.route(AAPL_PAGE2_PATH, Reply(body=polygon("aggs_AAPL_page2.json")))

    bars = provider_for(server, sleeps).daily_bars(["AAPL"], START, END)

    assert list(bars.columns) == BAR_COLUMNS
    assert list(bars["date"]) == [
        date(2020, 1, 2),
        date(2020, 1, 3),
        date(2020, 1, 6),
        date(2020, 1, 7),
        date(2020, 1, 8),
    ]
    assert list(bars["close"]) == [75.0875, 74.3575, 74.95, 74.5975, 75.7975]
    assert list(bars["adjusted_close"]) == list(bars["close"])
    assert bars["volume"].iloc[0] == 135647456
    assert set(bars["symbol"]) == {"AAPL"}
    assert [r.path for r in server.requests] == [AAPL_PATH, AAPL_PAGE2_PATH]
    # The cursor URL carries its own query; the client adds nothing to it.
    assert server.requests[1].query == {"cursor": ["bGltaXQ9MiZzb3J0PWFzYw"]}


def test_daily_bars_pagination_stays_on_base_url(server: ReplayServer, sleeps: list[float]) -> None:
    # next_url names api.polygon.io; the client keeps only its path and query, so the second
    # page (and the bearer key) still goes to base_url. The network guard would fail otherwise.
    server.route(AAPL_PATH, Reply(body=polygon("aggs_AAPL_page1.json")))
    server.route(AAPL_PAGE2_PATH, Reply(body=polygon("aggs_AAPL_page2.json")))

    bars = provider_for(server, sleeps).daily_bars(["AAPL"], START, END)

    assert len(bars) == 5
    assert len(server.requests) == 2


def test_daily_bars_sends_bearer_key_and_documented_query(
    server: ReplayServer, sleeps: list[float]
) -> None:
    server.route(MSFT_PATH, Reply(body=polygon("aggs_MSFT.json")))

    provider_for(server, sleeps).daily_bars(["MSFT"], START, END)

    (request,) = server.requests
    assert request.headers["Authorization"] == "Bearer test-key"
    assert request.query == {"adjusted": ["true"], "sort": ["asc"], "limit": ["50000"]}


def test_daily_bars_unknown_ticker_is_absent(server: ReplayServer, sleeps: list[float]) -> None:
    server.route(MSFT_PATH, Reply(body=polygon("aggs_MSFT.json")))
    server.route(ZZZZ_PATH, Reply(body=polygon("aggs_ZZZZ_no_results.json")))

    bars = provider_for(server, sleeps).daily_bars(["ZZZZ", "MSFT"], START, END)

    assert set(bars["symbol"]) == {"MSFT"}
    assert list(bars["date"]) == [date(2020, 1, 2), date(2020, 1, 3)]
    assert len(server.requests) == 2


def test_daily_bars_all_unknown_returns_empty_frame(
    server: ReplayServer, sleeps: list[float]
) -> None:
    server.route(ZZZZ_PATH, Reply(body=polygon("aggs_ZZZZ_no_results.json")))

    bars = provider_for(server, sleeps).daily_bars(["ZZZZ"], START, END)

    assert bars.empty
    assert list(bars.columns) == BAR_COLUMNS


def test_daily_bars_retries_429_then_succeeds(server: ReplayServer, sleeps: list[float]) -> None:
    server.route(
        MSFT_PATH,
        Reply(429, {"status": "ERROR", "error": "too many requests"}, {"Retry-After": "0"}),
        Reply(body=polygon("aggs_MSFT.json")),
    )

    bars = provider_for(server, sleeps).daily_bars(["MSFT"], START, END)

    assert len(bars) == 2
    assert len(server.hits(MSFT_PATH)) == 2
    assert len(sleeps) == 1


def test_daily_bars_persistent_429_raises_rate_limited(
    server: ReplayServer, sleeps: list[float]
) -> None:
    server.route(MSFT_PATH, Reply(429, {"status": "ERROR"}, {"Retry-After": "0"}))

    with pytest.raises(RateLimited, match=r"HTTP 429 after 4 attempts"):
        provider_for(server, sleeps, max_retries=3).daily_bars(["MSFT"], START, END)

    assert len(server.hits(MSFT_PATH)) == 4
    assert len(sleeps) == 3
    assert all(0 <= delay <= 0.01 for delay in sleeps)


def test_daily_bars_long_retry_after_gives_up_at_once(
    server: ReplayServer, sleeps: list[float]
) -> None:
    server.route(MSFT_PATH, Reply(429, {"status": "ERROR"}, {"Retry-After": "3600"}))

    with pytest.raises(RateLimited, match="retry after 3600s"):
        provider_for(server, sleeps).daily_bars(["MSFT"], START, END)

    assert len(server.hits(MSFT_PATH)) == 1
    assert sleeps == []


def test_daily_bars_retries_503_then_succeeds(server: ReplayServer, sleeps: list[float]) -> None:
    server.route(
        MSFT_PATH,
        Reply(503, b"<html>Service Unavailable</html>"),
        Reply(body=polygon("aggs_MSFT.json")),
    )

    bars = provider_for(server, sleeps).daily_bars(["MSFT"], START, END)

    assert list(bars["close"]) == [160.62, 158.62]
    assert len(server.hits(MSFT_PATH)) == 2


def test_daily_bars_persistent_5xx_raises_provider_error(
    server: ReplayServer, sleeps: list[float]
) -> None:
    server.route(MSFT_PATH, Reply(502, b"bad gateway"))

    with pytest.raises(ProviderError, match="HTTP 502 after 2 attempts") as raised:
        provider_for(server, sleeps, max_retries=1).daily_bars(["MSFT"], START, END)

    assert not isinstance(raised.value, RateLimited)


def test_daily_bars_silent_server_times_out(server: ReplayServer, sleeps: list[float]) -> None:
    server.route(MSFT_PATH, HANG)
    provider = provider_for(server, sleeps, read_timeout=1.0)

    started = time.monotonic()
    with pytest.raises(ProviderTimeout, match="no answer within"):
        provider.daily_bars(["MSFT"], START, END)

    assert time.monotonic() - started < 3
    assert len(server.hits(MSFT_PATH)) == 1


def test_daily_bars_invalid_json_raises_malformed(
    server: ReplayServer, sleeps: list[float]
) -> None:
    server.route(MSFT_PATH, Reply(200, '{"results": [{"o": 1.0,'))

    with pytest.raises(MalformedPayload, match="daily bars for MSFT: response is not valid JSON"):
        provider_for(server, sleeps).daily_bars(["MSFT"], START, END)


def test_daily_bars_missing_close_raises_malformed(
    server: ReplayServer, sleeps: list[float]
) -> None:
    server.route(MSFT_PATH, Reply(body=polygon("aggs_MSFT_missing_close.json")))

    with pytest.raises(
        MalformedPayload, match=r"daily bars for MSFT: result 0 lacks a numeric c \(close\)"
    ):
        provider_for(server, sleeps).daily_bars(["MSFT"], START, END)


def test_daily_bars_results_not_objects_raises_malformed(
    server: ReplayServer, sleeps: list[float]
) -> None:
    server.route(MSFT_PATH, Reply(body={"status": "OK", "results": [1, 2]}))

    with pytest.raises(MalformedPayload, match="documented shape"):
        provider_for(server, sleeps).daily_bars(["MSFT"], START, END)


def test_daily_bars_rejected_request_raises_provider_error(
    server: ReplayServer, sleeps: list[float]
) -> None:
    server.route(MSFT_PATH, Reply(403, polygon("error_not_authorized.json")))

    with pytest.raises(ProviderError, match="MSFT: rejected: NOT_AUTHORIZED: You are not entitled"):
        provider_for(server, sleeps).daily_bars(["MSFT"], START, END)


def test_option_chain_maps_snapshot(server: ReplayServer, sleeps: list[float]) -> None:
    server.route(CHAIN_PATH, Reply(body=polygon("snapshot_options_AAPL.json")))
    as_of = date(2022, 4, 29)

    chain = provider_for(server, sleeps).option_chain("AAPL", date(2023, 6, 16), as_of)

    assert list(chain.columns) == CHAIN_COLUMNS
    call, put = chain.to_dict("records")
    assert call["symbol"] == "AAPL230616C00150000"
    assert call["underlying"] == "AAPL"
    assert call["expiration"] == date(2023, 6, 16)
    assert call["strike"] == 150.0
    assert call["option_type"] == "C"
    assert call["date"] == as_of
    assert call["close"] == 29.0
    assert call["implied_volatility"] == pytest.approx(0.3570277203465058)
    assert put["symbol"] == "AAPL230616P00152500"
    assert put["option_type"] == "P"
    assert put["strike"] == 152.5
    assert math.isnan(put["close"])
    assert math.isnan(put["implied_volatility"])
    (request,) = server.requests
    assert request.query == {"expiration_date": ["2023-06-16"], "limit": ["250"]}


def test_option_chain_without_contracts_is_empty(server: ReplayServer, sleeps: list[float]) -> None:
    server.route(CHAIN_PATH, Reply(body={"status": "OK", "request_id": "x", "results": []}))

    chain = provider_for(server, sleeps).option_chain("AAPL", None, date(2022, 4, 29))

    assert chain.empty
    assert list(chain.columns) == CHAIN_COLUMNS
    assert server.requests[0].query == {"limit": ["250"]}


def test_option_chain_unknown_contract_type_raises_malformed(
    server: ReplayServer, sleeps: list[float]
) -> None:
    payload = polygon("snapshot_options_AAPL.json")
    payload["results"][0]["details"]["contract_type"] = "other"
    server.route(CHAIN_PATH, Reply(body=payload))

    with pytest.raises(MalformedPayload, match="AAPL230616C00150000 has contract_type 'other'"):
        provider_for(server, sleeps).option_chain("AAPL", None, date(2022, 4, 29))


def test_polygon_provider_unsupported_kinds_raise(
    server: ReplayServer, sleeps: list[float]
) -> None:
    provider = provider_for(server, sleeps)

    with pytest.raises(NotSupported):
        provider.sector_industry(["AAPL"])
    with pytest.raises(NotSupported):
        provider.rate_series("US10Y", START, END)
    assert server.requests == []


def test_polygon_provider_unknown_tier_raises() -> None:
    with pytest.raises(ValueError, match="unknown Polygon tier 'platinum'"):
        PolygonProvider("test-key", tier="platinum")


def test_polygon_provider_empty_key_raises() -> None:
    with pytest.raises(ProviderError, match="no API key"):
        PolygonProvider("")


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_token_bucket_free_tier_sixth_request_waits_twelve_seconds() -> None:
    clock = FakeClock()
    free = POLYGON_TIERS["free"]
    bucket = TokenBucket(free.requests_per_second, free.burst, clock=clock, sleep=clock.sleep)

    waits = [bucket.acquire() for _ in range(6)]

    assert waits[:5] == [0.0] * 5
    assert waits[5] == pytest.approx(12.0)
    assert clock.now == pytest.approx(12.0)
    assert bucket.acquire() == pytest.approx(12.0)


def test_token_bucket_refills_up_to_capacity() -> None:
    clock = FakeClock()
    bucket = TokenBucket(1.0, 2, clock=clock, sleep=clock.sleep)
    bucket.acquire(2)

    clock.now += 60  # far longer than a refill: the burst is still only 2

    assert [bucket.acquire() for _ in range(3)] == [0.0, 0.0, pytest.approx(1.0)]


def test_token_bucket_rejects_more_than_capacity() -> None:
    with pytest.raises(ValueError):
        TokenBucket(1.0, 2).acquire(3)


def test_backoff_delay_full_jitter_bounds() -> None:
    rng = random.Random(0)
    for attempt in range(8):
        delays = [backoff_delay(attempt, base=0.5, cap=4.0, rng=rng) for _ in range(200)]
        ceiling = min(4.0, 0.5 * 2**attempt)
        assert all(0.0 <= delay <= ceiling for delay in delays)
        # Full jitter spreads over the whole window, not just near its top.
        assert min(delays) < ceiling * 0.1
        assert max(delays) > ceiling * 0.9


def test_backoff_delay_honours_retry_after() -> None:
    rng = random.Random(0)

    delays = [backoff_delay(0, base=0.5, cap=4.0, rng=rng, retry_after=2.5) for _ in range(50)]

    assert all(delay >= 2.5 for delay in delays)
    assert backoff_delay(10_000, base=0.5, cap=4.0, rng=rng) <= 4.0


@pytest.mark.parametrize(
    ("header", "expected"),
    [("0", 0.0), ("7", 7.0), (" 1.5 ", 1.5), (None, None), ("-3", None), ("soon", None)],
)
def test_parse_retry_after_reads_seconds(header: str | None, expected: float | None) -> None:
    assert parse_retry_after(header) == expected


def test_parse_retry_after_ignores_http_date() -> None:
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") is None


def test_daily_bars_frame_types(server: ReplayServer, sleeps: list[float]) -> None:
    server.route(MSFT_PATH, Reply(body=polygon("aggs_MSFT.json")))

    bars = provider_for(server, sleeps).daily_bars(["MSFT"], START, END)

    for column in ("open", "high", "low", "close", "adjusted_close", "volume"):
        assert pd.api.types.is_float_dtype(bars[column]), column
    assert all(type(value) is date for value in bars["date"])
