"""Where prices come from: the synthetic market fills only series it owns, the csv source fetches
nothing, and a fetch reports what is still missing (gaps) and why (errors).

Real parts throughout: the S&P 500 history from `arch` imported with `manage.py import_prices`,
the synthetic provider, and the real Polygon client against the loopback replay server."""

from __future__ import annotations

import io
from datetime import date

import pandas as pd
import pytest
from django.core.management import call_command
from django.utils import timezone

from marketdata import calendar
from marketdata.models import DailyPrice
from marketdata.providers import registry
from marketdata.providers.polygon import PolygonProvider
from marketdata.providers.synthetic import SyntheticProvider
from marketdata.providers.yahoo import YahooProvider
from marketdata.services import (
    option_chain_fetch_and_cache,
    prices_fetch_and_cache,
    prices_fetch_within,
    sectors_fetch_and_cache,
    securities_ensure,
)
from marketdata.tests.helpers import CountingSynthetic, FailsOnSecondCall
from marketdata.tests.replay import HANG, ReplayServer, Reply, recording
from marketdata.tests.sp500 import sp500_csv
from marketdata.writes import prices_upsert

pytestmark = pytest.mark.django_db

FIRST, LAST = date(2018, 3, 1), date(2018, 3, 29)
HOLE = [date(2018, 3, 13), date(2018, 3, 14)]
POLYGON_DAYS = [date(2020, 1, 2), date(2020, 1, 3)]  # the sessions of the MSFT recording


@pytest.fixture
def spx(tmp_path):
    """The real S&P 500 closes of March 2018 imported as SPX, two sessions short."""
    path = sp500_csv(tmp_path / "spx.csv", FIRST, LAST, drop=HOLE)
    call_command("import_prices", str(path), stdout=io.StringIO())


def polygon(server: ReplayServer, read_timeout: float = 5.0) -> PolygonProvider:
    return PolygonProvider(
        "test-key",
        tier="advanced",
        base_url=server.url,
        connect_timeout=1,
        read_timeout=read_timeout,
        max_retries=0,
    )


def test_fetch_never_fills_a_real_series_with_synthetic_prices(spx):
    provider = CountingSynthetic()
    report = prices_fetch_and_cache(
        symbols=["SPX", "AAPL"], start=FIRST, end=LAST, providers=[provider]
    )
    assert [call[0] for call in provider.calls] == [("AAPL",)]
    sessions = calendar.trading_days(FIRST, LAST)
    spx_rows = DailyPrice.objects.filter(security__symbol="SPX")
    assert set(spx_rows.values_list("source", flat=True)) == {"csv"}
    assert sorted(spx_rows.values_list("date", flat=True)) == [d for d in sessions if d not in HOLE]
    aapl_rows = DailyPrice.objects.filter(security__symbol="AAPL")
    assert set(aapl_rows.values_list("source", flat=True)) == {"synthetic"}
    assert aapl_rows.count() == len(sessions)
    assert report.rows_by_source == {"synthetic": len(sessions)}
    assert report.gaps == {"SPX": HOLE}
    assert report.missing == ["SPX"]
    assert report.errors == {}


def test_fetch_counts_no_gap_before_a_real_series_begins(spx):
    """Asked from February: SPX lacks only its hole (its history starts in March); a symbol with
    no prices at all lacks every session."""
    start = date(2018, 2, 1)
    report = prices_fetch_and_cache(symbols=["SPX", "KO"], start=start, end=LAST, providers=[])
    assert report.gaps == {"KO": calendar.trading_days(start, LAST), "SPX": HOLE}
    assert report.missing == ["KO", "SPX"]
    assert report.provider_calls == 0


def test_fetch_lets_a_real_provider_extend_a_real_series(tmp_path):
    """MSFT imported from 2020-01-06 and asked from 2020-01-02: Polygon (real) fills the two
    sessions before; the synthetic market behind it is never asked."""
    path = tmp_path / "msft.csv"
    path.write_text(
        "symbol,date,open,high,low,close,volume\nMSFT,2020-01-06,157.1,159.1,156.5,159.0,1000\n"
    )
    call_command("import_prices", str(path), stdout=io.StringIO())
    synthetic = CountingSynthetic()
    with ReplayServer() as server:
        server.route("/v2/aggs/ticker/MSFT/*", Reply(body=recording("polygon", "aggs_MSFT.json")))
        report = prices_fetch_and_cache(
            symbols=["MSFT"],
            start=POLYGON_DAYS[0],
            end=date(2020, 1, 6),
            providers=[polygon(server), synthetic],
        )
    assert synthetic.calls == []
    assert report.rows_by_source == {"polygon": 2}
    assert report.gaps == {} and report.missing == []
    sources = dict(DailyPrice.objects.values_list("date", "source"))
    assert sources == {**dict.fromkeys(POLYGON_DAYS, "polygon"), date(2020, 1, 6): "csv"}


def test_fetch_keeps_the_synthetic_series_of_symbols_it_owns():
    """A symbol whose rows are all synthetic is still filled by the synthetic market."""
    provider = CountingSynthetic()
    prices_fetch_and_cache(
        symbols=["AAPL"], start=FIRST, end=date(2018, 3, 15), providers=[provider]
    )
    report = prices_fetch_and_cache(symbols=["AAPL"], start=FIRST, end=LAST, providers=[provider])
    assert provider.calls[-1] == (("AAPL",), date(2018, 3, 16), LAST)
    assert report.gaps == {} and report.missing == []


def test_option_chain_leaves_contracts_with_real_prices_alone():
    """A contract Polygon priced earlier (stored through the providers' write path) is not
    repriced by the synthetic chain; the contracts it owns are."""
    provider = SyntheticProvider()
    as_of = date(2026, 11, 20)
    chain = provider.option_chain("MSFT", None, as_of)
    real = chain["symbol"].iloc[0]
    ids = securities_ensure([real])
    polygon_row = pd.DataFrame(
        {"security_id": [ids[real]], "date": [as_of], "close": [5.25], "adjusted_close": [5.25]}
    )
    prices_upsert(polygon_row, source="polygon", fetched_at=timezone.now())
    report = option_chain_fetch_and_cache(underlying="MSFT", as_of=as_of, providers=[provider])
    assert report.rows_written == len(chain) - 1
    row = DailyPrice.objects.get(security__symbol=real)
    assert (row.source, float(row.close)) == ("polygon", 5.25)


def test_csv_source_calls_no_provider_and_reports_every_missing_symbol(spx, settings, monkeypatch):
    settings.SIGMASIGHT_MARKET_DATA_SOURCE = "csv"
    settings.POLYGON_API_KEY = "k"

    def called(*args, **kwargs):
        raise AssertionError("the csv source asked a provider")

    for provider in (SyntheticProvider, PolygonProvider, YahooProvider):
        for method in ("daily_bars", "rate_series", "option_chain", "sector_industry"):
            monkeypatch.setattr(provider, method, called)
    assert registry.chain() == [] and registry.current_source() == "csv"
    report = prices_fetch_and_cache(symbols=["SPX", "AAPL", "US10Y"], start=FIRST, end=LAST)
    sessions = calendar.trading_days(FIRST, LAST)
    assert report.provider_calls == 0 and report.rows_written == 0
    assert report.missing == ["AAPL", "SPX", "US10Y"]
    assert report.gaps == {"AAPL": sessions, "SPX": HOLE, "US10Y": sessions}
    assert report.errors == {}
    web = prices_fetch_within(symbols=["AAPL"], start=FIRST, end=LAST, deadline_s=1)
    assert web.missing == ["AAPL"] and web.provider_calls == 0
    assert sectors_fetch_and_cache(symbols=["AAPL"]) == 0
    assert option_chain_fetch_and_cache(underlying="AAPL", as_of=LAST).missing == ["AAPL"]
    assert DailyPrice.objects.exclude(source="csv").count() == 0


def test_fetch_report_errors_name_a_provider_raising_not_one_without_the_symbol():
    """Polygon's payload for AAPL is malformed (an error: AAPL is asked alone, then left
    missing with the reason); ZZZZ it does not have (missing, no error); MSFT arrives."""
    with ReplayServer() as server:
        server.route(
            "/v2/aggs/ticker/AAPL/*",
            Reply(body=recording("polygon", "aggs_MSFT_missing_close.json")),
        )
        server.route("/v2/aggs/ticker/MSFT/*", Reply(body=recording("polygon", "aggs_MSFT.json")))
        server.route(
            "/v2/aggs/ticker/ZZZZ/*", Reply(body=recording("polygon", "aggs_ZZZZ_no_results.json"))
        )
        report = prices_fetch_and_cache(
            symbols=["AAPL", "MSFT", "ZZZZ"],
            start=POLYGON_DAYS[0],
            end=POLYGON_DAYS[1],
            providers=[polygon(server)],
        )
    assert report.rows_by_source == {"polygon": 2}
    assert report.missing == ["AAPL", "ZZZZ"]
    assert report.gaps == {"AAPL": POLYGON_DAYS, "ZZZZ": POLYGON_DAYS}
    assert list(report.errors) == ["AAPL"]
    assert "daily bars for AAPL" in report.errors["AAPL"] and "close" in report.errors["AAPL"]
    assert report.transient == {}


def test_a_hanging_provider_costs_only_its_own_group(tmp_path):
    """Two groups (XOM has 2020-01-02 cached, MSFT nothing): Polygon answers MSFT and hangs on
    XOM. MSFT's rows are stored; XOM is missing with the timeout as its error."""
    path = tmp_path / "xom.csv"
    path.write_text(
        "symbol,date,open,high,low,close,volume\nXOM,2020-01-02,70.2,71.0,70.0,70.9,1\n"
    )
    call_command("import_prices", str(path), stdout=io.StringIO())
    with ReplayServer() as server:
        server.route("/v2/aggs/ticker/MSFT/*", Reply(body=recording("polygon", "aggs_MSFT.json")))
        server.route("/v2/aggs/ticker/XOM/*", HANG)
        report = prices_fetch_and_cache(
            symbols=["MSFT", "XOM"],
            start=POLYGON_DAYS[0],
            end=POLYGON_DAYS[1],
            providers=[polygon(server, read_timeout=0.3)],
        )
    assert report.rows_by_source == {"polygon": 2}
    assert DailyPrice.objects.filter(security__symbol="MSFT").count() == 2
    assert report.gaps == {"XOM": [POLYGON_DAYS[1]]} and report.missing == ["XOM"]
    assert "polygon" in report.transient and list(report.errors) == ["XOM"]


def test_fetch_keeps_the_groups_stored_before_a_crash():
    prices_fetch_and_cache(
        symbols=["MSFT"], start=FIRST, end=date(2018, 3, 15), providers=[SyntheticProvider()]
    )
    with pytest.raises(RuntimeError, match="provider bug"):
        prices_fetch_and_cache(
            symbols=["AAPL", "MSFT"], start=FIRST, end=LAST, providers=[FailsOnSecondCall()]
        )
    sessions = calendar.trading_days(FIRST, LAST)
    assert DailyPrice.objects.filter(security__symbol="AAPL").count() == len(sessions)
    assert (
        DailyPrice.objects.filter(security__symbol="MSFT", date__gt=date(2018, 3, 15)).count() == 0
    )
