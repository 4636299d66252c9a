from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from marketdata import calendar
from marketdata.models import BackfillProgress, DailyPrice, Security
from marketdata.providers.base import RATE_10Y
from marketdata.providers.polygon import PolygonProvider
from marketdata.providers.synthetic import SyntheticProvider
from marketdata.services import (
    backfill_prices,
    current_prices,
    option_chain_fetch_and_cache,
    prices_fetch_and_cache,
    sectors_fetch_and_cache,
)
from marketdata.tests.helpers import CountingSynthetic
from marketdata.tests.replay import ReplayServer, Reply
from sigmasight.exceptions import ValidationFailed

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 20, 22, 0, tzinfo=UTC)  # Friday, after the close
LAST = date(2026, 11, 20)
START = date(2026, 11, 2)


@pytest.fixture
def failing_polygon():
    """The real Polygon client against a server that only answers 503."""
    with ReplayServer() as server:
        server.route("/v2/aggs/*", Reply(503, {"status": "ERROR", "error": "down"}))
        yield PolygonProvider(
            "test-key",
            tier="advanced",
            base_url=server.url,
            max_retries=1,
            backoff_base=0.001,
            backoff_cap=0.01,
            read_timeout=2,
        )


def test_fetch_writes_every_session_once_with_its_source():
    provider = CountingSynthetic()
    report = prices_fetch_and_cache(
        symbols=["aapl", "SPY"], start=START, end=LAST, providers=[provider], now=NOW
    )
    sessions = calendar.trading_days(START, LAST)
    assert report.rows_written == 2 * len(sessions) == DailyPrice.objects.count()
    assert report.rows_by_source == {"synthetic": 2 * len(sessions)}
    assert set(DailyPrice.objects.values_list("source", flat=True)) == {"synthetic"}
    assert set(DailyPrice.objects.values_list("date", flat=True)) == set(sessions)
    aapl = Security.objects.get(symbol="AAPL")
    assert aapl.asset_type == "stock"
    assert Security.objects.get(symbol="SPY").asset_type == "etf"
    expected = provider.daily_bars(["AAPL"], LAST, LAST)["close"].iloc[0]
    stored = DailyPrice.objects.get(security=aapl, date=LAST).close
    assert stored == Decimal(str(expected)).quantize(Decimal("0.000001"))


def test_second_fetch_of_the_same_range_makes_no_provider_call():
    provider = CountingSynthetic()
    prices_fetch_and_cache(
        symbols=["AAPL", "MSFT"], start=START, end=LAST, providers=[provider], now=NOW
    )
    assert len(provider.calls) == 1
    report = prices_fetch_and_cache(
        symbols=["AAPL", "MSFT"], start=START, end=LAST, providers=[provider], now=NOW
    )
    assert len(provider.calls) == 1
    assert report.rows_written == 0
    assert report.provider_calls == 0


def test_fetch_asks_only_for_the_missing_sessions():
    provider = CountingSynthetic()
    prices_fetch_and_cache(
        symbols=["AAPL"], start=START, end=date(2026, 11, 13), providers=[provider], now=NOW
    )
    prices_fetch_and_cache(symbols=["AAPL"], start=START, end=LAST, providers=[provider], now=NOW)
    assert provider.calls[-1] == (("AAPL",), date(2026, 11, 16), LAST)
    assert DailyPrice.objects.count() == len(calendar.trading_days(START, LAST))


def test_a_gap_inside_the_cached_history_is_found_and_filled():
    """Both paths of the missing-session search: MSFT's history is contiguous (only its edge is
    missing), AAPL's has a hole in the middle; each is asked for exactly what it lacks."""
    provider = CountingSynthetic()
    prices_fetch_and_cache(
        symbols=["AAPL", "MSFT"],
        start=START,
        end=date(2026, 11, 19),
        providers=[provider],
        now=NOW,
    )
    DailyPrice.objects.filter(security__symbol="AAPL", date=date(2026, 11, 10)).delete()
    report = prices_fetch_and_cache(
        symbols=["AAPL", "MSFT"], start=START, end=LAST, providers=[provider], now=NOW
    )
    assert report.rows_written == 3  # AAPL: the hole and the last session; MSFT: the last
    assert DailyPrice.objects.count() == 2 * len(calendar.trading_days(START, LAST))


def test_fetch_never_asks_past_the_last_completed_session():
    provider = CountingSynthetic()
    before_close = datetime(2026, 11, 20, 20, 0, tzinfo=UTC)  # 15:00 New York
    prices_fetch_and_cache(
        symbols=["AAPL"],
        start=START,
        end=date(2026, 12, 31),
        providers=[provider],
        now=before_close,
    )
    assert provider.calls[0][2] == date(2026, 11, 19)
    assert DailyPrice.objects.filter(date__gt=date(2026, 11, 19)).count() == 0


def test_failed_provider_falls_back_to_the_next(failing_polygon):
    report = prices_fetch_and_cache(
        symbols=["AAPL"],
        start=START,
        end=LAST,
        providers=[failing_polygon, SyntheticProvider()],
        now=NOW,
    )
    assert "polygon" in report.failures
    assert report.rows_by_source == {"synthetic": len(calendar.trading_days(START, LAST))}
    assert report.missing == []


def test_every_provider_failing_leaves_cache_served_stale(failing_polygon):
    prices_fetch_and_cache(
        symbols=["AAPL"],
        start=START,
        end=date(2026, 11, 13),
        providers=[SyntheticProvider()],
        now=NOW,
    )
    report = prices_fetch_and_cache(
        symbols=["AAPL"], start=START, end=LAST, providers=[failing_polygon], now=NOW
    )
    assert report.missing == ["AAPL"]
    assert report.rows_written == 0
    quote = current_prices(["AAPL"], now=NOW)["AAPL"]
    assert quote.date == date(2026, 11, 13)
    assert quote.stale is True
    assert quote.source == "synthetic"


def test_rates_are_stored_as_decimal_yields():
    prices_fetch_and_cache(
        symbols=[RATE_10Y], start=START, end=LAST, providers=[SyntheticProvider()], now=NOW
    )
    security = Security.objects.get(symbol=RATE_10Y)
    assert security.asset_type == "rate"
    closes = list(DailyPrice.objects.filter(security=security).values_list("close", flat=True))
    assert len(closes) == len(calendar.trading_days(START, LAST))
    assert all(Decimal("0") < c < Decimal("0.1") for c in closes)


def test_option_history_ends_at_expiration():
    symbol = "AAPL261120C00300000"
    prices_fetch_and_cache(
        symbols=[symbol], start=START, end=LAST, providers=[SyntheticProvider()], now=NOW
    )
    option = Security.objects.get(symbol=symbol)
    assert (option.asset_type, option.underlying, option.multiplier) == ("option", "AAPL", 100)
    assert DailyPrice.objects.filter(security=option).latest("date").date == LAST


def test_current_prices_latest_on_or_before_as_of_in_one_query(django_assert_num_queries):
    prices_fetch_and_cache(
        symbols=["AAPL", "SPY"], start=START, end=LAST, providers=[SyntheticProvider()], now=NOW
    )
    with django_assert_num_queries(1):
        quotes = current_prices(["AAPL", "SPY"], now=NOW)
    assert set(quotes) == {"AAPL", "SPY"}
    with django_assert_num_queries(2):  # a symbol with no recent close: one look further back
        assert set(current_prices(["AAPL", "SPY", "NOPE"], now=NOW)) == {"AAPL", "SPY"}
    assert quotes["AAPL"].date == LAST and quotes["AAPL"].stale is False
    earlier = current_prices(["AAPL"], as_of=date(2026, 11, 15), now=NOW)["AAPL"]  # a Sunday
    assert earlier.date == date(2026, 11, 13)
    assert earlier.stale is False


def test_invalid_symbols_are_rejected_with_reasons():
    with pytest.raises(ValidationFailed) as caught:
        prices_fetch_and_cache(
            symbols=["AAPL", "NOT A TICKER", "AAPL250230C00100000"], start=START, end=LAST
        )
    assert len(caught.value.fields["symbols"]) == 2
    assert Security.objects.count() == 0


def test_sectors_filled_once_from_the_provider():
    assert sectors_fetch_and_cache(symbols=["AAPL", "JPM"], providers=[SyntheticProvider()]) == 2
    assert Security.objects.get(symbol="JPM").sector == "Financial Services"
    assert Security.objects.get(symbol="AAPL").name == "Apple Inc."
    assert sectors_fetch_and_cache(symbols=["AAPL", "JPM"], providers=[SyntheticProvider()]) == 0


def test_option_chain_cached_with_implied_vol():
    report = option_chain_fetch_and_cache(
        underlying="MSFT", as_of=LAST, providers=[SyntheticProvider()]
    )
    options = Security.objects.filter(asset_type="option", underlying="MSFT")
    assert report.rows_written == options.count() > 50
    row = DailyPrice.objects.filter(security__underlying="MSFT").first()
    assert row is not None and row.implied_volatility is not None
    assert row.source == "synthetic" and 0.05 <= row.implied_volatility <= 3.0
    assert set(options.values_list("multiplier", flat=True)) == {100}


def test_backfill_resumes_after_an_interruption():
    symbols = ["AAPL", "MSFT", "JPM", "XOM", "KO"]
    provider = CountingSynthetic()

    class Interrupted(Exception):
        pass

    def stop_after_first_chunk(count: int) -> None:
        raise Interrupted

    with pytest.raises(Interrupted):
        backfill_prices(
            symbols=symbols,
            days=20,
            end=LAST,
            providers=[provider],
            chunk=2,
            on_progress=stop_after_first_chunk,
        )
    assert set(BackfillProgress.objects.filter(status="done").values_list("symbol", flat=True)) == {
        "AAPL",
        "MSFT",
    }
    provider.calls.clear()
    report = backfill_prices(symbols=symbols, days=20, end=LAST, providers=[provider], chunk=2)
    asked = {symbol for call in provider.calls for symbol in call[0]}
    assert asked == {"JPM", "XOM", "KO"}
    assert report.rows_written == 3 * 20
    assert DailyPrice.objects.count() == 5 * 20
    assert BackfillProgress.objects.filter(status="done").count() == 5


class OneBadSymbol(CountingSynthetic):
    """The real synthetic market, except one symbol's payload is broken or the feed times out."""

    def __init__(self, error: type) -> None:
        super().__init__()
        self.error = error

    def daily_bars(self, symbols, start, end):
        self.calls.append((tuple(symbols), start, end))
        if "KO" in symbols:
            raise self.error(self.name, "KO is broken")
        return SyntheticProvider.daily_bars(self, symbols, start, end)


def test_a_malformed_symbol_does_not_cost_the_others_their_prices():
    from marketdata.providers.base import MalformedPayload

    provider = OneBadSymbol(MalformedPayload)
    report = prices_fetch_and_cache(
        symbols=["AAPL", "KO", "MSFT"], start=START, end=LAST, providers=[provider], now=NOW
    )
    assert report.missing == ["KO"]
    assert set(DailyPrice.objects.values_list("security__symbol", flat=True)) == {"AAPL", "MSFT"}
    assert [c[0] for c in provider.calls] == [("AAPL", "KO", "MSFT"), ("AAPL",), ("KO",), ("MSFT",)]


def test_a_timing_out_provider_is_not_asked_symbol_by_symbol():
    from marketdata.providers.base import ProviderTimeout

    provider = OneBadSymbol(ProviderTimeout)
    report = prices_fetch_and_cache(
        symbols=["AAPL", "KO", "MSFT"], start=START, end=LAST, providers=[provider], now=NOW
    )
    assert len(provider.calls) == 1
    assert report.missing == ["AAPL", "KO", "MSFT"]


def test_current_prices_finds_a_close_older_than_the_recent_window():
    """A symbol whose feed stopped months ago still has its last close, marked stale."""
    prices_fetch_and_cache(
        symbols=["KO"],
        start=date(2026, 6, 1),
        end=date(2026, 6, 30),
        providers=[SyntheticProvider()],
        now=NOW,
    )
    quote = current_prices(["KO"], now=NOW)["KO"]
    assert quote.date == date(2026, 6, 30) and quote.stale is True
