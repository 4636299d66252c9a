"""Dividend yields: the model's constraints, the dated read, the synthetic market's and Yahoo's
yields stored and labelled, and the CSV import (`manage.py import_dividend_yields`)."""

from __future__ import annotations

import io
import math
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
import requests
import yfinance as yf
from django.core.management import CommandError, call_command
from django.db import IntegrityError, transaction
from django.utils import timezone
from yfinance import cache as yf_cache

from marketdata.models import DailyPrice, DividendYield, Security
from marketdata.providers import universe
from marketdata.providers.base import MalformedPayload, NotSupported
from marketdata.providers.synthetic import SyntheticProvider, model
from marketdata.providers.yahoo import YahooProvider
from marketdata.selectors import dividend_yields
from marketdata.services import dividend_yields_fetch_and_cache, dividend_yields_import_csv
from marketdata.tests.providers.test_yahoo_provider import (
    A3_COOKIE,
    CRUMB,
    ToReplay,
    _forget_yfinance_state,
)
from marketdata.tests.replay import ReplayServer, Reply, recording
from sigmasight.exceptions import ValidationFailed

pytestmark = pytest.mark.django_db

AS_OF = date(2026, 11, 6)


def store(symbol: str, day: date, value: float, source: str = "csv") -> DividendYield:
    security, _ = Security.objects.get_or_create(symbol=symbol)
    return DividendYield.objects.create(
        security=security, date=day, dividend_yield=value, source=source
    )


def stored() -> dict[str, tuple[float, str]]:
    rows = DividendYield.objects.values_list("security__symbol", "dividend_yield", "source")
    return {symbol: (value, source) for symbol, value, source in rows}


# The model ---------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [-0.001, 1.0, 3.1])
def test_dividend_yield_must_be_a_decimal_in_zero_to_one(value):
    with pytest.raises(IntegrityError), transaction.atomic():
        store("KO", AS_OF, value)


def test_dividend_yield_zero_is_allowed_and_one_per_security_and_date():
    store("AMZN", AS_OF, 0.0)
    with pytest.raises(IntegrityError), transaction.atomic():
        store("AMZN", AS_OF, 0.01)
    store("AMZN", date(2026, 11, 9), 0.01)
    assert DividendYield.objects.count() == 2


# The read ----------------------------------------------------------------------------------


def test_dividend_yields_latest_on_or_before_as_of_in_one_query(django_assert_num_queries):
    store("KO", date(2026, 10, 1), 0.028)
    store("KO", date(2026, 11, 2), 0.029)
    store("KO", date(2026, 11, 9), 0.031)  # after as_of: not seen
    store("JNJ", date(2026, 1, 5), 0.03)
    store("XOM", date(2026, 11, 9), 0.034)  # only after as_of: absent
    with django_assert_num_queries(1):
        found = dividend_yields(["KO", "JNJ", "XOM", "AAPL"], AS_OF)
    assert found == {"KO": 0.029, "JNJ": 0.03}
    assert dividend_yields(["KO"], date(2026, 11, 2)) == {"KO": 0.029}


def test_dividend_yields_of_no_symbols_asks_nothing(django_assert_num_queries):
    with django_assert_num_queries(0):
        assert dividend_yields([], AS_OF) == {}


# The synthetic market ----------------------------------------------------------------------


def test_synthetic_yields_are_stored_labelled_synthetic():
    report = dividend_yields_fetch_and_cache(
        symbols=["KO", "jpm", "AMZN", "SPY", "US10Y", "KO261120C00060000"],
        as_of=AS_OF,
        providers=[SyntheticProvider()],
    )
    assert stored() == {
        "KO": (universe.DIVIDEND_YIELDS["KO"], "synthetic"),
        "JPM": (universe.DIVIDEND_YIELDS["JPM"], "synthetic"),
        "AMZN": (0.0, "synthetic"),  # a growth name pays none
        "SPY": (universe.DIVIDEND_YIELDS["SPY"], "synthetic"),
    }
    assert set(DividendYield.objects.values_list("date", flat=True)) == {AS_OF}
    assert report.stored == {"synthetic": 4}
    assert report.missing == []
    assert dividend_yields(["KO", "AMZN"], AS_OF) == {"KO": 0.029, "AMZN": 0.0}


def test_synthetic_yield_of_an_invented_name_is_its_sectors_and_constant():
    m = model("ZQXW")
    typical = universe.SECTOR_DIVIDEND_YIELDS[m.sector]
    assert 0.5 * typical - 1e-4 <= m.dividend_yield <= 1.5 * typical + 1e-4
    provider = SyntheticProvider()
    assert provider.dividend_yields(["ZQXW"], AS_OF) == provider.dividend_yields(
        ["ZQXW"], date(2019, 3, 1)
    )
    assert provider.dividend_yields(["ZQXW"], date(2014, 12, 31)) == {}  # before the market


def test_fetch_asks_only_for_yields_the_cache_lacks():
    class Counting(SyntheticProvider):
        asked: list[list[str]] = []

        def dividend_yields(self, symbols, as_of):
            self.asked.append(list(symbols))
            return super().dividend_yields(symbols, as_of)

    dividend_yields_fetch_and_cache(symbols=["KO"], as_of=AS_OF, providers=[Counting()])
    report = dividend_yields_fetch_and_cache(
        symbols=["KO", "PG"], as_of=AS_OF, providers=[Counting()]
    )
    assert Counting.asked == [["KO"], ["PG"]]
    assert report.stored == {"synthetic": 1}


def test_synthetic_market_never_fills_a_name_with_real_prices_or_yields():
    store("KO", date(2026, 1, 5), 0.03, source="csv")
    pg = Security.objects.create(symbol="PG")
    DailyPrice.objects.create(
        security=pg, date=AS_OF, close=160, source="polygon", fetched_at=timezone.now()
    )
    report = dividend_yields_fetch_and_cache(
        symbols=["KO", "PG", "JNJ"], as_of=AS_OF, providers=[SyntheticProvider()]
    )
    assert stored() == {"KO": (0.03, "csv"), "JNJ": (universe.DIVIDEND_YIELDS["JNJ"], "synthetic")}
    assert report.missing == ["KO", "PG"]  # callers use 0 for them and say so


def test_fetch_falls_back_past_a_source_without_dividends():
    class NoDividends(SyntheticProvider):
        name = "polygon"

        def dividend_yields(self, symbols, as_of):
            raise NotSupported(self.name, "no dividend yields from this source")

    report = dividend_yields_fetch_and_cache(
        symbols=["XOM"], as_of=AS_OF, providers=[NoDividends(), SyntheticProvider()]
    )
    assert stored() == {"XOM": (universe.DIVIDEND_YIELDS["XOM"], "synthetic")}
    assert "no dividend yields" in report.failures["polygon"]


def test_fetch_walks_the_configured_chain(settings):
    settings.SIGMASIGHT_MARKET_DATA_SOURCE = "synthetic"
    dividend_yields_fetch_and_cache(symbols=["PEP"], as_of=AS_OF)
    assert stored() == {"PEP": (universe.DIVIDEND_YIELDS["PEP"], "synthetic")}
    settings.SIGMASIGHT_MARKET_DATA_SOURCE = "csv"  # only what the user imports
    report = dividend_yields_fetch_and_cache(symbols=["MRK"], as_of=AS_OF)
    assert report.missing == ["MRK"]
    assert "MRK" not in stored()


# yfinance through the replay server ----------------------------------------------------------

SUMMARY_KO = "/v10/finance/quoteSummary/KO"


@pytest.fixture
def yahoo(tmp_path: Path) -> Iterator[tuple[ReplayServer, YahooProvider]]:
    """The real yfinance against a loopback server (see test_yahoo_provider.py); yfinance's
    process-wide state is forgotten before and restored after."""
    location = yf_cache._TzDBManager.get_location()
    hide, retries = yf.config.debug.hide_exceptions, yf.config.network.retries
    _forget_yfinance_state()
    with ReplayServer() as server, requests.Session() as http:
        server.route("/", Reply(404, "<html>not found</html>", {"Set-Cookie": A3_COOKIE}))
        server.route("/v1/test/getcrumb", Reply(200, CRUMB, {"Content-Type": "text/plain"}))
        http.trust_env = False
        adapter = ToReplay(server.url)
        http.mount("https://", adapter)
        http.mount("http://", adapter)
        yield server, YahooProvider(cache_dir=tmp_path, timeout=2.0, session=http)
    _forget_yfinance_state()
    yf.config.debug.hide_exceptions, yf.config.network.retries = hide, retries
    yf.set_tz_cache_location(location)
    yf_cache._TzCacheManager._tz_cache = None
    yf_cache._CookieCacheManager._Cookie_cache = None
    yf_cache._ISINCacheManager._isin_cache = None


def test_yahoo_yields_are_read_from_the_summary_and_made_continuous(yahoo):
    server, provider = yahoo
    server.route(SUMMARY_KO, Reply(200, recording("yahoo", "quote_summary_KO_summary_detail.json")))
    server.route(
        "/v10/finance/quoteSummary/SPY",
        Reply(200, recording("yahoo", "quote_summary_SPY_summary_detail.json")),
    )
    non_payer = {"previousClose": 238.45, "trailingAnnualDividendRate": 0, "trailingPE": 60.1}
    server.route(
        "/v10/finance/quoteSummary/TSLA",
        Reply(200, {"quoteSummary": {"result": [{"summaryDetail": non_payer}], "error": None}}),
    )
    server.route(
        "/v10/finance/quoteSummary/ZZZZ",
        Reply(404, recording("yahoo", "quote_summary_not_found.json")),
    )

    found = provider.dividend_yields(["KO", "SPY", "TSLA", "ZZZZ"], AS_OF)

    assert found == {
        "KO": pytest.approx(math.log1p(1.84 / 59.33), abs=1e-12),  # dividendRate / previousClose
        "SPY": pytest.approx(math.log1p(0.0138), abs=1e-12),  # a fund's distribution yield
        "TSLA": 0.0,
    }
    (request, *_) = server.hits(SUMMARY_KO)
    assert request.query["modules"] == ["summaryDetail"]
    assert request.query["crumb"] == [CRUMB]


def test_yahoo_yields_are_stored_labelled_yfinance(yahoo):
    server, provider = yahoo
    server.route(SUMMARY_KO, Reply(200, recording("yahoo", "quote_summary_KO_summary_detail.json")))

    report = dividend_yields_fetch_and_cache(symbols=["KO"], as_of=AS_OF, providers=[provider])

    assert list(stored()) == ["KO"]
    value, source = stored()["KO"]
    assert source == "yfinance"
    assert value == pytest.approx(math.log1p(1.84 / 59.33), abs=1e-12)
    assert report.stored == {"yfinance": 1}


def test_yahoo_yield_that_is_no_decimal_yield_is_refused(yahoo):
    server, provider = yahoo
    summary = recording("yahoo", "quote_summary_KO_summary_detail.json")
    summary["quoteSummary"]["result"][0]["summaryDetail"]["dividendRate"] = 184.0  # cents?
    server.route(SUMMARY_KO, Reply(200, summary))

    with pytest.raises(MalformedPayload, match=r"KO's dividend yield .* is 3\.1"):
        provider.dividend_yields(["KO"], AS_OF)
    report = dividend_yields_fetch_and_cache(symbols=["KO"], as_of=AS_OF, providers=[provider])
    assert report.missing == ["KO"]
    assert "yfinance" in report.failures
    assert DividendYield.objects.count() == 0


# The CSV import ----------------------------------------------------------------------------

HEADER = "symbol,date,dividend_yield\n"
GOOD = "KO,2024-01-05,0.0305\nko,2024-02-05,0.031\nSPY,2024-01-05,0.0137\nAMZN,2024-01-05,0\n"


def run_import(tmp_path: Path, text: str, *options: str) -> tuple[str, str]:
    path = tmp_path / "yields.csv"
    path.write_text(text)
    out, err = io.StringIO(), io.StringIO()
    call_command("import_dividend_yields", str(path), *options, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_import_dividend_yields_good_file(tmp_path):
    out, _ = run_import(tmp_path, HEADER + GOOD)
    assert "imported 4 dividend yields" in out
    assert DividendYield.objects.count() == 4
    assert set(DividendYield.objects.values_list("source", flat=True)) == {"csv"}
    assert dividend_yields(["KO", "SPY", "AMZN"], date(2024, 3, 1)) == {
        "KO": 0.031,
        "SPY": 0.0137,
        "AMZN": 0.0,
    }
    run_import(tmp_path, HEADER + "KO,2024-02-05,0.0312\n")  # a date again: updated
    assert dividend_yields(["KO"], date(2024, 3, 1)) == {"KO": 0.0312}


def test_import_dividend_yields_dry_run_writes_nothing(tmp_path):
    out, _ = run_import(tmp_path, HEADER + GOOD, "--dry-run")
    assert "would import 4 dividend yields" in out
    assert DividendYield.objects.count() == 0


def test_import_dividend_yields_lists_every_bad_row_and_writes_nothing(tmp_path):
    bad = (
        "KO,2024-01-05,0.03\n"  # good, but not written: all or nothing
        "KO,2024-13-01,0.03\n"
        "PG,2024-01-05,3.1\n"
        "JNJ,2024-01-05,-0.01\n"
        "XOM,2024-01-05,abc\n"
        "US10Y,2024-01-05,0.01\n"
        "KO,2024-01-05,0.031\n"
        "PEP,2999-01-04,0.03\n"
        "MRK,2024-01-05\n"
    )
    with pytest.raises(CommandError, match="8 problem"):
        run_import(tmp_path, HEADER + bad)
    assert DividendYield.objects.count() == 0
    assert not Security.objects.exists()
    with pytest.raises(ValidationFailed) as caught:
        dividend_yields_import_csv(stream=io.StringIO(HEADER + bad))
    problems = {(p["row"], p["column"]): p["message"] for p in caught.value.fields["rows"]}
    assert problems == {
        (3, "date"): "'2024-13-01' is not a date in YYYY-MM-DD form.",
        (4, "dividend_yield"): "3.1 is not a decimal yield (0.031 is 3.1%; it must be below 1).",
        (5, "dividend_yield"): "A dividend yield cannot be negative (-0.01).",
        (6, "dividend_yield"): "'abc' is not a number.",
        (7, "symbol"): "'US10Y' is not a stock, ETF or index ticker.",
        (8, "date"): "KO on 2024-01-05 already appears in row 2.",
        (9, "date"): "2999-01-04 is in the future.",
        (10, ""): "Expected 3 fields, found 2.",
    }


def test_import_dividend_yields_command_reports_row_and_column(tmp_path):
    path = tmp_path / "yields.csv"
    path.write_text(HEADER + "KO,2024-01-05,0.03\nPG,2024-01-05,nan\n")
    err = io.StringIO()
    with pytest.raises(CommandError, match="nothing was imported"):
        call_command("import_dividend_yields", str(path), stdout=io.StringIO(), stderr=err)
    assert "row 3 [dividend_yield]: 'nan' is not a number." in err.getvalue()


def test_import_dividend_yields_never_repeats_user_text_raw(tmp_path):
    cell = "=HYPERLINK(\x07" + "x" * 80
    with pytest.raises(ValidationFailed) as caught:
        dividend_yields_import_csv(stream=io.StringIO(f"{HEADER}{cell},2024-01-05,0.01\n"))
    (problem,) = caught.value.fields["rows"]
    assert problem["column"] == "symbol"
    assert "\x07" not in problem["message"] and "\\x07" in problem["message"]
    assert "x" * 41 not in problem["message"]  # cut short


def test_import_dividend_yields_refuses_a_bad_header_and_a_missing_file(tmp_path):
    with pytest.raises(ValidationFailed) as caught:
        dividend_yields_import_csv(stream=io.StringIO("symbol,day,yield\nKO,2024-01-05,0.03\n"))
    messages = [p["message"] for p in caught.value.fields["rows"]]
    assert "Required column 'date' is missing." in messages
    assert "Unknown column 'day'; expected ['symbol', 'date', 'dividend_yield']." in messages
    with pytest.raises(CommandError, match="is not a file"):
        call_command("import_dividend_yields", str(tmp_path / "absent.csv"))


def test_import_dividend_yields_replaces_the_synthetic_yields_of_its_symbols(tmp_path):
    dividend_yields_fetch_and_cache(
        symbols=["KO", "PG"], as_of=AS_OF, providers=[SyntheticProvider()]
    )
    out, _ = run_import(tmp_path, HEADER + "KO,2024-01-05,0.0305\n", "--dry-run")
    assert "KO: would replace 1 synthetic yields" in out
    assert stored()["KO"][1] == "synthetic"
    out, _ = run_import(tmp_path, HEADER + "KO,2024-01-05,0.0305\n")
    assert "KO: replaced 1 synthetic yields" in out
    assert stored() == {
        "KO": (0.0305, "csv"),
        "PG": (universe.DIVIDEND_YIELDS["PG"], "synthetic"),
    }
    # The latest yield is the file's, not a later synthetic one.
    assert dividend_yields(["KO"], AS_OF) == {"KO": 0.0305}
