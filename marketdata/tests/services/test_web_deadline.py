"""A provider that answers late never holds a web request past its deadline: the real Polygon
client against the loopback replay server answering after the request gave up (the background
fetch stores the prices; asking again finds them without a provider call), and in time (the
request stores them). The what-if trade endpoint with a provider that hangs: modeling/tests/
test_api.py."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future
from datetime import date
from decimal import Decimal

import pytest

from marketdata import fetch
from marketdata.models import DailyPrice
from marketdata.providers import registry
from marketdata.providers.polygon import PolygonProvider
from marketdata.services import MarketDataPending, prices_fetch_within
from marketdata.tests.replay import ReplayServer, Reply, Slow, recording

DEADLINE_S = 0.5


@pytest.fixture
def polygon_at(monkeypatch):
    """Make the provider chain the real Polygon client against `server`."""

    def point(server: ReplayServer, read_timeout: float = 5.0) -> None:
        provider = PolygonProvider(
            "test-key",
            tier="advanced",
            base_url=server.url,
            connect_timeout=1,
            read_timeout=read_timeout,
            max_retries=0,
        )
        monkeypatch.setattr(registry, "chain", lambda: [provider])

    return point


@pytest.mark.django_db(transaction=True)
def test_a_late_answer_is_stored_in_the_background_and_found_next_time(polygon_at):
    start, end = date(2020, 1, 2), date(2020, 1, 3)  # the recording's two sessions
    with ReplayServer() as server:
        server.route(
            "/v2/aggs/ticker/MSFT/*", Slow(1.0, Reply(body=recording("polygon", "aggs_MSFT.json")))
        )
        polygon_at(server)
        started = time.monotonic()
        with pytest.raises(MarketDataPending) as raised:
            prices_fetch_within(symbols=["MSFT"], start=start, end=end, deadline_s=DEADLINE_S)
        assert time.monotonic() - started < DEADLINE_S + 0.5
        assert raised.value.status_code == 503 and raised.value.fields == {"symbols": ["MSFT"]}
        # Asked again while the fetch is in flight: waits on it, no second provider call.
        report = prices_fetch_within(symbols=["MSFT"], start=start, end=end, deadline_s=5)
        assert len(server.requests) == 1
        deadline = time.monotonic() + 10
        while DailyPrice.objects.filter(security__symbol="MSFT").count() < 2:
            assert time.monotonic() < deadline, "the background fetch never stored its prices"
            time.sleep(0.05)
        # Cached now: answered at once, without asking the provider.
        report = prices_fetch_within(symbols=["MSFT"], start=start, end=end, deadline_s=DEADLINE_S)
        assert report.provider_calls == 0 and len(server.requests) == 1
    closes = dict(DailyPrice.objects.filter(security__symbol="MSFT").values_list("date", "close"))
    payload = recording("polygon", "aggs_MSFT.json")["results"]
    assert list(closes.values()) == [
        Decimal(str(bar["c"])).quantize(Decimal("0.000001")) for bar in payload
    ]
    assert all(row == "polygon" for row in DailyPrice.objects.values_list("source", flat=True))


@pytest.mark.django_db
def test_a_provider_in_time_is_waited_for_and_stored_by_the_request(polygon_at):
    with ReplayServer() as server:
        server.route("/v2/aggs/ticker/MSFT/*", Reply(body=recording("polygon", "aggs_MSFT.json")))
        polygon_at(server)
        report = prices_fetch_within(
            symbols=["MSFT"], start=date(2020, 1, 2), end=date(2020, 1, 3), deadline_s=5
        )
    assert report.rows_written == 2 == DailyPrice.objects.count()
    assert report.rows_by_source == {"polygon": 2}


class _Immediate:
    """A pool whose fetch is done before `submit` returns (a provider faster than the request
    registering its callback: the race that deadlocked the request on the in-flight lock)."""

    def submit(self, fn, *args):
        done: Future = Future()
        done.set_result(fn(*args))
        return done


@pytest.mark.django_db(transaction=True)
def test_a_fetch_done_before_the_request_registers_its_callback_does_not_deadlock(
    polygon_at, monkeypatch
):
    monkeypatch.setattr(fetch, "_WEB_FETCHES", _Immediate())
    outcome: list = []
    with ReplayServer() as server:
        server.route("/v2/aggs/ticker/MSFT/*", Reply(body=recording("polygon", "aggs_MSFT.json")))
        polygon_at(server)
        request = threading.Thread(
            target=lambda: outcome.append(
                prices_fetch_within(
                    symbols=["MSFT"], start=date(2020, 1, 2), end=date(2020, 1, 3), deadline_s=5
                )
            ),
            daemon=True,
        )
        request.start()
        request.join(timeout=20)
    assert not request.is_alive(), "the request deadlocked on the in-flight lock"
    assert outcome and outcome[0].rows_written == 2
    assert not fetch._in_flight  # forgotten once done
