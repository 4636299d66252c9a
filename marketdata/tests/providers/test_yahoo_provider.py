"""YahooProvider against the real yfinance library, served by a loopback replay server.

The session handed to yfinance is a plain `requests.Session` whose transport sends every Yahoo
URL (query1/query2, fc.yahoo.com, guce...) to the ReplayServer with path and query intact, so
yfinance's cookie/crumb handshake, timezone lookup and parsing all run for real.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
import requests
import yfinance as yf
from requests.adapters import HTTPAdapter
from yfinance import base as yf_base
from yfinance import cache as yf_cache
from yfinance.data import SingletonMeta, YfData

from marketdata.providers.base import (
    BAR_COLUMNS,
    CHAIN_COLUMNS,
    RATE_10Y,
    RATE_COLUMNS,
    RATE_SHORT,
    MalformedPayload,
    NoData,
    ProviderError,
    ProviderTimeout,
    RateLimited,
    SectorInfo,
)
from marketdata.providers.yahoo import YahooProvider
from marketdata.tests.replay import HANG, ReplayServer, Reply, recording

CRUMB = "Xq7vD.f3pLm"
# What fc.yahoo.com really answers: a 404 page that sets the A3 session cookie on .yahoo.com.
A3_COOKIE = (
    "A3=d=AQABBJpTmGYCEFakeCookieForTests&S=AQAAAFakeSignature; Max-Age=31557600; "
    "Domain=.yahoo.com; Path=/; SameSite=None; Secure; HttpOnly"
)
CHART_AAPL = "/v8/finance/chart/AAPL"
CHART_TNX = "/v8/finance/chart/%5ETNX"
OPTIONS_AAPL = "/v7/finance/options/AAPL"
JAN_19 = 1705622400  # 2024-01-19 00:00 UTC, Yahoo's expiration timestamp
FEB_16 = 1708041600


def yahoo(*parts: str) -> Any:
    return recording("yahoo", *parts)


class ToReplay(HTTPAdapter):
    """Transport that sends Yahoo requests to the replay server, keeping path and query."""

    def __init__(self, server_url: str) -> None:
        super().__init__()
        self._netloc = urlsplit(server_url).netloc

    # requests.Session passes every option of send() by keyword.
    def send(  # type: ignore[override]
        self, request: requests.PreparedRequest, **kwargs: Any
    ) -> requests.Response:
        assert request.url is not None
        parts = urlsplit(request.url)
        if not (parts.hostname or "").endswith("yahoo.com"):
            return super().send(request, **kwargs)
        local = request.copy()
        local.url = urlunsplit(("http", self._netloc, parts.path or "/", parts.query, ""))
        response = super().send(local, **kwargs)
        # yfinance looks at response.url (consent-page detection); cookies are stored against
        # the original request by requests.Session itself.
        response.url = request.url
        response.request = request
        return response


def _forget_yfinance_state() -> None:
    SingletonMeta._instances.pop(YfData, None)
    YfData.cache_get.cache_clear()
    yf_base._tz_info_fetch_ctr = 0


@pytest.fixture(autouse=True)
def _fresh_yfinance() -> Iterator[None]:
    """yfinance keeps a session/crumb singleton, an lru cache of responses and global config."""
    location = yf_cache._TzDBManager.get_location()
    hide, retries = yf.config.debug.hide_exceptions, yf.config.network.retries
    _forget_yfinance_state()
    yield
    _forget_yfinance_state()
    yf.config.debug.hide_exceptions, yf.config.network.retries = hide, retries
    yf.set_tz_cache_location(location)
    yf_cache._TzCacheManager._tz_cache = None
    yf_cache._CookieCacheManager._Cookie_cache = None
    yf_cache._ISINCacheManager._isin_cache = None


@pytest.fixture(scope="module")
def _replay() -> Iterator[ReplayServer]:
    # One server for the module: stopping one costs half a second (serve_forever's poll).
    with ReplayServer() as replay:
        yield replay


@pytest.fixture
def server(_replay: ReplayServer) -> ReplayServer:
    _replay.routes.clear()
    _replay.requests.clear()
    _replay.route("/", Reply(404, "<html>not found</html>", {"Set-Cookie": A3_COOKIE}))
    _replay.route("/v1/test/getcrumb", Reply(200, CRUMB, {"Content-Type": "text/plain"}))
    return _replay


@pytest.fixture
def session(server: ReplayServer) -> Iterator[requests.Session]:
    with requests.Session() as http:
        http.trust_env = False  # no proxy from the environment between us and loopback
        adapter = ToReplay(server.url)
        http.mount("https://", adapter)
        http.mount("http://", adapter)
        yield http


@pytest.fixture
def provider(tmp_path: Path, session: requests.Session) -> YahooProvider:
    return YahooProvider(cache_dir=tmp_path, timeout=2.0, session=session)


def data_hits(server: ReplayServer, path: str) -> list[Any]:
    return [r for r in server.hits(path) if "period1" in r.query]


# Daily bars --------------------------------------------------------------------------------


def test_daily_bars_parses_chart_json(server: ReplayServer, provider: YahooProvider) -> None:
    server.route(CHART_AAPL, Reply(200, yahoo("chart_AAPL.json")))

    bars = provider.daily_bars(["AAPL"], date(2024, 1, 2), date(2024, 1, 5))

    assert list(bars.columns) == BAR_COLUMNS
    assert list(bars["date"]) == [date(2024, 1, d) for d in (2, 3, 4, 5)]
    assert set(bars["symbol"]) == {"AAPL"}
    first = bars.iloc[0]
    assert first["open"] == pytest.approx(187.15, abs=1e-4)
    assert first["high"] == pytest.approx(188.44, abs=1e-4)
    assert first["low"] == pytest.approx(183.89, abs=1e-4)
    assert first["close"] == pytest.approx(185.64, abs=1e-4)
    assert first["adjusted_close"] == pytest.approx(184.2904, abs=1e-4)
    assert list(bars["volume"]) == [82488700, 58414500, 71983600, 62303300]
    (request,) = data_hits(server, CHART_AAPL)
    assert request.query["interval"] == ["1d"]
    assert request.query["crumb"] == [CRUMB]


def test_daily_bars_keeps_only_sessions_in_range(
    server: ReplayServer, provider: YahooProvider
) -> None:
    server.route(CHART_AAPL, Reply(200, yahoo("chart_AAPL.json")))

    bars = provider.daily_bars(["AAPL"], date(2024, 1, 3), date(2024, 1, 4))

    assert list(bars["date"]) == [date(2024, 1, 3), date(2024, 1, 4)]


def test_daily_bars_raises_no_data_for_an_empty_download(
    server: ReplayServer, provider: YahooProvider
) -> None:
    server.route(CHART_AAPL, Reply(200, yahoo("chart_AAPL_empty.json")))

    with pytest.raises(NoData, match="AAPL"):
        provider.daily_bars(["AAPL"], date(2023, 12, 25), date(2023, 12, 25))


def test_daily_bars_leaves_out_an_empty_symbol_when_others_have_bars(
    server: ReplayServer, provider: YahooProvider
) -> None:
    server.route(CHART_AAPL, Reply(200, yahoo("chart_AAPL.json")))
    server.route("/v8/finance/chart/ZZZZ", Reply(404, yahoo("chart_not_found.json")))

    bars = provider.daily_bars(["ZZZZ", "AAPL"], date(2024, 1, 2), date(2024, 1, 5))

    assert set(bars["symbol"]) == {"AAPL"}
    assert len(bars) == 4


def test_daily_bars_raises_no_data_when_every_symbol_is_empty(
    server: ReplayServer, provider: YahooProvider
) -> None:
    server.route(CHART_AAPL, Reply(200, yahoo("chart_AAPL_empty.json")))
    server.route("/v8/finance/chart/ZZZZ", Reply(404, yahoo("chart_not_found.json")))

    with pytest.raises(NoData, match=r"AAPL, ZZZZ"):
        provider.daily_bars(["AAPL", "ZZZZ"], date(2023, 12, 25), date(2023, 12, 26))


def test_daily_bars_rejects_an_answer_that_is_not_json(
    server: ReplayServer, provider: YahooProvider
) -> None:
    server.route(CHART_AAPL, Reply(200, '{"chart": {"result": [{"meta": '))

    with pytest.raises(MalformedPayload, match=r"AAPL daily history is not JSON"):
        provider.daily_bars(["AAPL"], date(2024, 1, 2), date(2024, 1, 5))


def test_daily_bars_rejects_a_chart_without_indicators(
    server: ReplayServer, provider: YahooProvider
) -> None:
    chart = yahoo("chart_AAPL.json")
    del chart["chart"]["result"][0]["indicators"]
    server.route(CHART_AAPL, Reply(200, chart))

    with pytest.raises(MalformedPayload, match=r"documented shape \(KeyError: 'indicators'\)"):
        provider.daily_bars(["AAPL"], date(2024, 1, 2), date(2024, 1, 5))


@pytest.mark.parametrize("silent", ["chart only", "every endpoint"])
def test_daily_bars_times_out_when_yahoo_never_answers(
    server: ReplayServer, tmp_path: Path, session: requests.Session, silent: str
) -> None:
    server.route(CHART_AAPL, HANG)
    if silent == "every endpoint":
        server.route("/", HANG)
        server.route("/v1/test/getcrumb", HANG)
        server.route("/*", HANG)
    provider = YahooProvider(cache_dir=tmp_path, timeout=1.0, session=session)

    started = time.monotonic()
    with pytest.raises(ProviderTimeout):
        provider.daily_bars(["AAPL"], date(2024, 1, 2), date(2024, 1, 5))

    assert time.monotonic() - started < 4


def test_daily_bars_asks_again_after_a_failed_answer(
    server: ReplayServer, provider: YahooProvider
) -> None:
    server.route(
        CHART_AAPL,
        Reply(502, "<html>Bad Gateway</html>", {"Content-Type": "text/html"}),
        Reply(502, "<html>Bad Gateway</html>", {"Content-Type": "text/html"}),
        Reply(200, yahoo("chart_AAPL.json")),
    )
    with pytest.raises(ProviderError, match="HTTP 502"):
        provider.daily_bars(["AAPL"], date(2024, 1, 2), date(2024, 1, 5))

    bars = provider.daily_bars(["AAPL"], date(2024, 1, 2), date(2024, 1, 5))

    assert len(bars) == 4


def test_daily_bars_raises_rate_limited_on_http_429(
    server: ReplayServer, provider: YahooProvider
) -> None:
    server.route(CHART_AAPL, Reply(429, "Too Many Requests", {"Content-Type": "text/plain"}))

    with pytest.raises(RateLimited):
        provider.daily_bars(["AAPL"], date(2024, 1, 2), date(2024, 1, 5))

    # yfinance retries once with its other cookie strategy before giving up.
    assert len(server.hits(CHART_AAPL)) == 2


# Rates -------------------------------------------------------------------------------------


def test_rate_series_turns_tnx_percent_into_decimal_yields(
    server: ReplayServer, provider: YahooProvider
) -> None:
    server.route(CHART_TNX, Reply(200, yahoo("chart_TNX.json")))

    rates = provider.rate_series(RATE_10Y, date(2024, 1, 2), date(2024, 1, 5))

    assert list(rates.columns) == RATE_COLUMNS
    assert list(rates["date"]) == [date(2024, 1, d) for d in (2, 3, 4, 5)]
    assert list(rates["value"]) == pytest.approx([0.03944, 0.03905, 0.03988, 0.0405], abs=1e-8)


def test_rate_series_rejects_a_yield_outside_the_plausible_range(
    server: ReplayServer, provider: YahooProvider
) -> None:
    chart = yahoo("chart_TNX.json")
    quote = chart["chart"]["result"][0]["indicators"]["quote"][0]
    quote["close"] = [value * 10 for value in quote["close"]]  # e.g. quoted in basis points/10
    server.route(CHART_TNX, Reply(200, chart))

    with pytest.raises(MalformedPayload, match=r"\^TNX closed at 39\.44"):
        provider.rate_series(RATE_10Y, date(2024, 1, 2), date(2024, 1, 5))


def test_rate_series_reads_the_short_rate_from_irx(
    server: ReplayServer, provider: YahooProvider
) -> None:
    chart = copy.deepcopy(yahoo("chart_TNX.json"))
    chart["chart"]["result"][0]["meta"]["symbol"] = "^IRX"
    server.route("/v8/finance/chart/%5EIRX", Reply(200, chart))

    rates = provider.rate_series(RATE_SHORT, date(2024, 1, 2), date(2024, 1, 5))

    assert len(rates) == 4


def test_rate_series_rejects_an_unknown_name(provider: YahooProvider) -> None:
    with pytest.raises(ValueError, match="unknown rate series"):
        provider.rate_series("US30Y", date(2024, 1, 2), date(2024, 1, 5))


# Sector and industry -----------------------------------------------------------------------


def test_sector_industry_reads_the_asset_profile(
    server: ReplayServer, provider: YahooProvider
) -> None:
    server.route("/v10/finance/quoteSummary/AAPL", Reply(200, yahoo("quote_summary_AAPL.json")))
    server.route("/v10/finance/quoteSummary/SPY", Reply(200, yahoo("quote_summary_SPY.json")))
    server.route(
        "/v10/finance/quoteSummary/ZZZZ", Reply(404, yahoo("quote_summary_not_found.json"))
    )

    found = provider.sector_industry(["AAPL", "SPY", "ZZZZ"])

    assert found == {
        "AAPL": SectorInfo(sector="Technology", industry="Consumer Electronics", name="Apple Inc.")
    }
    (request, *_) = server.hits("/v10/finance/quoteSummary/AAPL")
    assert request.query["modules"] == ["assetProfile,quoteType"]


def test_sector_industry_rejects_a_summary_without_result(
    server: ReplayServer, provider: YahooProvider
) -> None:
    server.route("/v10/finance/quoteSummary/AAPL", Reply(200, {"quoteSummary": {"error": None}}))

    with pytest.raises(MalformedPayload, match=r"quoteSummary\.result"):
        provider.sector_industry(["AAPL"])


# Option chains -----------------------------------------------------------------------------


def test_option_chain_maps_calls_and_puts(server: ReplayServer, provider: YahooProvider) -> None:
    server.route(OPTIONS_AAPL, Reply(200, yahoo("options_AAPL_2024-01-19.json")))

    chain = provider.option_chain("AAPL", date(2024, 1, 19), as_of=date(2024, 1, 5))

    assert list(chain.columns) == CHAIN_COLUMNS
    assert list(chain["symbol"]) == [
        "AAPL240119C00100000",
        "AAPL240119C00180000",
        "AAPL240119C00185000",
        "AAPL240119P00175000",
        "AAPL240119P00180000",
    ]
    assert list(chain["option_type"]) == ["C", "C", "C", "P", "P"]
    assert set(chain["underlying"]) == {"AAPL"}
    assert set(chain["expiration"]) == {date(2024, 1, 19)}
    assert set(chain["date"]) == {date(2024, 1, 5)}
    call_180 = chain.iloc[1]
    assert call_180["strike"] == 180.0
    assert call_180["close"] == pytest.approx(4.15)
    assert call_180["implied_volatility"] == pytest.approx(0.2061)
    # Yahoo's 1e-05 placeholder means "no implied volatility", not a 0.001% vol.
    assert math.isnan(chain.iloc[0]["implied_volatility"])
    dates = [r.query.get("date") for r in server.hits(OPTIONS_AAPL)]
    assert dates == [None, [str(JAN_19)]]


def test_option_chain_fetches_every_expiration_when_none_is_given(
    server: ReplayServer, provider: YahooProvider
) -> None:
    server.route(
        OPTIONS_AAPL,
        Reply(200, yahoo("options_AAPL_2024-01-19.json")),
        Reply(200, yahoo("options_AAPL_2024-01-19.json")),
        Reply(200, yahoo("options_AAPL_2024-02-16.json")),
    )

    chain = provider.option_chain("AAPL", None, as_of=date(2024, 1, 5))

    assert sorted(set(chain["expiration"])) == [date(2024, 1, 19), date(2024, 2, 16)]
    assert len(chain) == 7
    dates = [r.query.get("date") for r in server.hits(OPTIONS_AAPL)]
    assert dates == [None, [str(JAN_19)], [str(FEB_16)]]


def test_option_chain_raises_no_data_for_an_unlisted_expiration(
    server: ReplayServer, provider: YahooProvider
) -> None:
    server.route(OPTIONS_AAPL, Reply(200, yahoo("options_AAPL_2024-01-19.json")))

    with pytest.raises(NoData, match="2024-01-19, 2024-02-16"):
        provider.option_chain("AAPL", date(2024, 3, 15), as_of=date(2024, 1, 5))


# Caches ------------------------------------------------------------------------------------


def test_provider_keeps_yfinance_caches_inside_cache_dir(
    server: ReplayServer, tmp_path: Path, session: requests.Session
) -> None:
    server.route(CHART_AAPL, Reply(200, yahoo("chart_AAPL.json")))
    cache_dir = tmp_path / "data" / "yfinance"
    provider = YahooProvider(cache_dir=cache_dir, timeout=2.0, session=session)

    provider.daily_bars(["AAPL"], date(2024, 1, 2), date(2024, 1, 5))

    # The databases yfinance actually has open, not just the configured folder.
    assert yf_cache.get_tz_cache().get_db().database == str(cache_dir / "tkr-tz.db")
    assert yf_cache.get_cookie_cache().get_db().database == str(cache_dir / "cookies.db")
    assert yf_cache.get_tz_cache().lookup("AAPL") == "America/New_York"
    assert Path(yf_cache._ISINDBManager.get_location()) == cache_dir
