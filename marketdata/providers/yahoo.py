"""Yahoo Finance through the `yfinance` library (v1.7): daily bars, sector and industry,
Treasury yields and option chains.

yfinance is process-wide state: one `YfData` singleton holds the session, cookie and crumb, one
config object decides whether errors are raised or logged, and one cache location serves every
ticker. The constructor sets that state once (caches in `cache_dir`, errors raised, no retries
of its own); everything else goes through the real library.

Two things yfinance does not do for us:
- Time limits. It chains several requests per call (cookie, crumb, timezone, the data, and a
  whole second cookie strategy after any 4xx), some with hard-coded 10 or 30 second timeouts.
  Every request of our session is therefore capped by the provider's `timeout`, and one call may
  wait at most `_WAITS_PER_CALL` timeouts in total.
- Honest errors. Its failures surface as "no data" (an empty frame, "possibly delisted") or as
  a KeyError deep in its parsing: a 401 "Invalid Crumb" on the chart endpoint is `KeyError:
  'chart'`. The session records the status of each data response so the error is classified by
  what Yahoo actually answered.
"""

from __future__ import annotations

import functools
import json
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import requests
import yfinance as yf
from curl_cffi.requests import exceptions as curl_exceptions
from yfinance import cache as yf_cache
from yfinance._http import new_session
from yfinance.data import YfData
from yfinance.exceptions import YFException, YFRateLimitError, YFTickerMissingError

from marketdata.providers.base import (
    ACTION_COLUMNS,
    BAR_COLUMNS,
    CHAIN_COLUMNS,
    RATE_10Y,
    RATE_COLUMNS,
    RATE_SHORT,
    MalformedPayload,
    MarketDataProvider,
    NoData,
    ProviderError,
    ProviderTimeout,
    RateLimited,
    SectorInfo,
    empty_actions,
    empty_bars,
)

PROVIDER_NAME = "yfinance"

RATE_TICKERS = {RATE_10Y: "^TNX", RATE_SHORT: "^IRX"}
# Yahoo quotes ^TNX/^IRX in percent. A decimal outside this band means the quoting convention
# changed (or the series is garbage), never a real US Treasury yield.
RATE_BOUNDS = (-0.02, 0.25)

# A silent Yahoo costs at most this many timeouts per call, whatever yfinance chains or retries.
_WAITS_PER_CALL = 2
# Yahoo reports 1e-05 (and 0) when it has no implied volatility for a contract.
_NO_IMPLIED_VOLATILITY = 1e-4
_HISTORY_COLUMNS = ["Open", "High", "Low", "Close", "Adj Close", "Volume"]
# Cookie/crumb requests: their statuses (fc.yahoo.com answers 404 by design) say nothing about
# the data that was asked for.
_HANDSHAKE_URLS = ("fc.yahoo.com", "guce.yahoo.com", "consent.yahoo.com", "/v1/test/getcrumb")

_TIMEOUTS = (requests.exceptions.Timeout, curl_exceptions.Timeout, TimeoutError)
_CONNECTION_ERRORS = (requests.exceptions.ConnectionError, curl_exceptions.ConnectionError)
_JSON_ERRORS = (json.JSONDecodeError, requests.exceptions.JSONDecodeError)
# What yfinance raises when it indexes into JSON of an unexpected shape.
_SHAPE_ERRORS = (KeyError, IndexError, TypeError, AttributeError, ValueError)


@dataclass
class _Call:
    """One yfinance call made by the provider: its time budget and the last data status seen."""

    what: str
    timeout: float
    deadline: float
    last_status: int | None = None

    def next_timeout(self, asked: object) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            budget = _WAITS_PER_CALL * self.timeout
            raise ProviderTimeout(
                PROVIDER_NAME, f"Yahoo did not answer {self.what} within {budget:g} s"
            )
        ceiling = min(self.timeout, left)
        if isinstance(asked, int | float) and not isinstance(asked, bool) and asked > 0:
            return min(float(asked), ceiling)
        return ceiling

    def saw(self, response: Any) -> None:
        url = str(getattr(response, "url", ""))
        if not any(part in url for part in _HANDSHAKE_URLS):
            self.last_status = getattr(response, "status_code", None)


_CURRENT_CALL: ContextVar[_Call | None] = ContextVar("yahoo_call", default=None)


def _bounded(session: Any) -> Any:
    """Route every request of `session` through the budget of the provider call it serves.

    yfinance accepts only genuine requests/curl_cffi Session objects (it checks the class), so
    the session is adapted in place rather than wrapped: both libraries' get/post go through
    `self.request`, which an instance attribute overrides.
    """
    if getattr(session, "_sigmasight_bounded", False):
        return session
    send: Callable[..., Any] = session.request

    def request(*args: Any, **kwargs: Any) -> Any:
        call = _CURRENT_CALL.get()
        if call is None:
            return send(*args, **kwargs)
        kwargs["timeout"] = call.next_timeout(kwargs.get("timeout"))
        response = send(*args, **kwargs)
        call.saw(response)
        return response

    session.request = request
    session._sigmasight_bounded = True
    return session


@functools.cache
def _default_session() -> Any:
    # One session per process, like yfinance's own singleton: its cookie and crumb belong
    # together, and a fresh session per provider would cost a new handshake each time.
    return _bounded(new_session())


def _use_cache_dir(cache_dir: Path) -> None:
    cache_dir.mkdir(parents=True, exist_ok=True)
    if Path(yf_cache._TzDBManager.get_location()) == cache_dir:
        return
    yf.set_tz_cache_location(str(cache_dir))
    # set_tz_cache_location only moves databases not opened yet; forget the open ones so a
    # cache used before this call (another provider, a test) is not written to any more.
    yf_cache._TzCacheManager._tz_cache = None
    yf_cache._CookieCacheManager._Cookie_cache = None
    yf_cache._ISINCacheManager._isin_cache = None


def _http_status(exc: BaseException) -> int | None:
    status = getattr(getattr(exc, "response", None), "status_code", None)
    return status if isinstance(status, int) else None


class YahooProvider(MarketDataProvider):
    """`session=None` uses yfinance's own curl_cffi session (browser TLS fingerprint); tests
    pass a `requests.Session` whose transport points at a replay server."""

    name = PROVIDER_NAME

    def __init__(self, *, cache_dir: Path, timeout: float = 20.0, session: Any = None) -> None:
        if timeout <= 0:
            raise ValueError("timeout must be positive seconds")
        self.timeout = float(timeout)
        self.cache_dir = Path(cache_dir)
        _use_cache_dir(self.cache_dir)
        # By default yfinance logs errors and returns an empty frame, which cannot be told
        # apart from "no data"; `raise_errors=` is deprecated in favour of this switch.
        yf.config.debug.hide_exceptions = False
        # Falling back (next provider, then the cache) is the caller's job; yfinance's own
        # retries would only delay it.
        yf.config.network.retries = 0
        self._session = _default_session() if session is None else _bounded(session)

    # Daily bars ----------------------------------------------------------------------------

    def daily_bars(self, symbols: list[str], start: date, end: date) -> pd.DataFrame:
        """Bars per symbol; an empty download leaves its symbol out for the caller to fall back,
        and when every symbol comes back empty that is NoData naming them, not an empty frame.
        """
        if not symbols:
            return empty_bars()
        frames: list[pd.DataFrame] = []
        empty: list[str] = []
        for symbol in symbols:
            try:
                frames.append(self._bars(symbol, start, end))
            except NoData:
                empty.append(symbol)
        if not frames:
            raise NoData(self.name, f"empty download for {', '.join(empty)} ({start}..{end})")
        return pd.concat(frames, ignore_index=True)[BAR_COLUMNS]

    def _bars(self, symbol: str, start: date, end: date) -> pd.DataFrame:
        history = self._history(symbol, start, end)
        bars = pd.DataFrame(
            {
                "symbol": symbol,
                "date": list(history.index.date),
                "open": self._floats(history["Open"], f"{symbol} open"),
                "high": self._floats(history["High"], f"{symbol} high"),
                "low": self._floats(history["Low"], f"{symbol} low"),
                "close": self._floats(history["Close"], f"{symbol} close"),
                "adjusted_close": self._floats(history["Adj Close"], f"{symbol} adjusted close"),
                "volume": history["Volume"].to_numpy(dtype=np.int64),
            }
        )
        # A session without a close is not a bar; leaving it out lets the caller fall back.
        bars = bars.dropna(subset=["close", "adjusted_close"])
        if bars.empty:
            raise NoData(self.name, f"empty download for {symbol} ({start}..{end})")
        return bars

    def _history(self, symbol: str, start: date, end: date) -> pd.DataFrame:
        """Yahoo's daily history of `symbol` on sessions in [start, end], rows in date order."""
        with self._call(f"{symbol} daily history"):
            history = yf.Ticker(symbol, session=self._session).history(
                start=start.isoformat(),
                end=(end + timedelta(days=1)).isoformat(),  # yfinance's end is exclusive
                interval="1d",
                auto_adjust=False,
                actions=False,
                timeout=self.timeout,
            )
        missing = [column for column in _HISTORY_COLUMNS if column not in history.columns]
        if missing or not isinstance(history.index, pd.DatetimeIndex):
            raise MalformedPayload(
                self.name, f"yfinance history of {symbol} lacks {missing or 'a date index'}"
            )
        sessions = np.array(history.index.date)
        history = history[(sessions >= start) & (sessions <= end)].sort_index()
        if history.empty:
            raise NoData(self.name, f"empty download for {symbol} ({start}..{end})")
        return history

    # Sector and industry -------------------------------------------------------------------

    def sector_industry(self, symbols: list[str]) -> dict[str, SectorInfo]:
        found: dict[str, SectorInfo] = {}
        for symbol in symbols:
            try:
                with self._call(f"{symbol} asset profile"):
                    # The narrowest call that carries assetProfile: one quoteSummary request,
                    # where Ticker.info adds the v7 quote and a fundamentals time series.
                    payload = yf.Ticker(symbol, session=self._session)._quote._fetch(
                        modules=["assetProfile", "quoteType"]
                    )
            except NoData:
                continue
            info = self._sector_info(symbol, payload)
            if info is not None:
                found[symbol] = info
        return found

    def _summary_result(self, symbol: str, payload: object) -> dict[str, Any] | None:
        """The first quoteSummary result of `symbol`, None when Yahoo has no such quote."""
        summary = payload.get("quoteSummary") if isinstance(payload, dict) else None
        results = summary.get("result") if isinstance(summary, dict) else None
        error = summary.get("error") if isinstance(summary, dict) else None
        if results is None and isinstance(error, dict):
            if error.get("code") == "Not Found":
                return None
            raise ProviderError(self.name, f"quoteSummary for {symbol}: {error}")
        if not isinstance(results, list):
            raise MalformedPayload(
                self.name, f"quoteSummary for {symbol} has no quoteSummary.result list"
            )
        if not results:
            return None
        first = results[0]
        if not isinstance(first, dict):
            raise MalformedPayload(self.name, f"quoteSummary.result[0] for {symbol} is no object")
        return first

    def _sector_info(self, symbol: str, payload: object) -> SectorInfo | None:
        first = self._summary_result(symbol, payload)
        if first is None:
            return None
        profile = first.get("assetProfile") or {}
        names = first.get("quoteType") or {}
        if not isinstance(profile, dict) or not isinstance(names, dict):
            raise MalformedPayload(
                self.name, f"assetProfile/quoteType for {symbol} are not JSON objects"
            )
        sector, industry = profile.get("sector"), profile.get("industry")
        if sector is None and industry is None:
            return None  # funds and indices have a profile without a sector
        if not (isinstance(sector, str) and sector and isinstance(industry, str) and industry):
            raise MalformedPayload(
                self.name,
                f"assetProfile of {symbol} has sector={sector!r}, industry={industry!r}",
            )
        name = names.get("longName") or names.get("shortName") or ""
        return SectorInfo(sector=sector, industry=industry, name=str(name))

    # Dividend yields -----------------------------------------------------------------------

    def dividend_yields(self, symbols: list[str], as_of: date) -> dict[str, float]:
        """Each symbol's yield from its quoteSummary `summaryDetail` (raw numbers): the indicated
        annual dividend over the previous close, `dividendRate / previousClose`; for a fund (no
        dividendRate) its distribution `yield`; else `trailingAnnualDividendRate /
        previousClose`; 0 when a summary with a close has none of them (a stock that pays none).
        That discrete annual yield y is returned continuous: ln(1 + y). The `dividendYield`
        fields are not read: Yahoo has quoted them as a decimal on one endpoint and in percent on
        another. Yahoo knows only today's yield; `as_of` dates it. Unknown symbols are left out."""
        found: dict[str, float] = {}
        for symbol in dict.fromkeys(symbols):
            try:
                with self._call(f"{symbol} summary detail"):
                    payload = yf.Ticker(symbol, session=self._session)._quote._fetch(
                        modules=["summaryDetail"]
                    )
            except NoData:
                continue
            discrete = self._discrete_yield(symbol, payload)
            if discrete is not None:
                found[symbol] = math.log1p(discrete)
        return found

    def _discrete_yield(self, symbol: str, payload: object) -> float | None:
        first = self._summary_result(symbol, payload)
        detail = None if first is None else first.get("summaryDetail")
        if detail is None:
            return None
        if not isinstance(detail, dict):
            raise MalformedPayload(self.name, f"summaryDetail of {symbol} is not a JSON object")
        values: dict[str, float | None] = {}
        for key in ("previousClose", "dividendRate", "yield", "trailingAnnualDividendRate"):
            value = detail.get(key)
            number = isinstance(value, int | float) and not isinstance(value, bool)
            if value is not None and not (number and math.isfinite(value) and value >= 0):
                raise MalformedPayload(
                    self.name, f"summaryDetail.{key} of {symbol} is {value!r}, not a number >= 0"
                )
            values[key] = None if value is None else float(value)
        close, rate = values["previousClose"], values["dividendRate"]
        fund, trailing = values["yield"], values["trailingAnnualDividendRate"]
        if not close:
            discrete = fund
        elif rate is not None:
            discrete = rate / close
        else:
            discrete = fund if fund is not None else (trailing or 0.0) / close
        if discrete is not None and not discrete < 1:
            raise MalformedPayload(
                self.name,
                f"{symbol}'s dividend yield from Yahoo's summaryDetail is {discrete:g}, not a "
                "decimal yield below 1",
            )
        return discrete

    # Rates ---------------------------------------------------------------------------------

    def rate_series(self, name: str, start: date, end: date) -> pd.DataFrame:
        ticker = RATE_TICKERS.get(name)
        if ticker is None:
            raise ValueError(f"unknown rate series {name!r}; expected one of {list(RATE_TICKERS)}")
        history = self._history(ticker, start, end)
        closes = pd.Series(self._floats(history["Close"], f"{ticker} close"), index=history.index)
        decimals = (closes / 100.0).dropna()
        if decimals.empty:
            raise NoData(self.name, f"no {ticker} closes between {start} and {end}")
        low, high = RATE_BOUNDS
        outside = decimals[(decimals < low) | (decimals > high)]
        if not outside.empty:
            first = outside.index[0].date()
            raise MalformedPayload(
                self.name,
                f"{ticker} closed at {outside.iloc[0] * 100:g} on {first}: as a percent that is "
                f"a {outside.iloc[0]:g} yield, outside [{low:g}, {high:g}]; has Yahoo changed "
                "how it quotes yields?",
            )
        return pd.DataFrame(
            {"date": list(decimals.index.date), "value": decimals.to_numpy(dtype=float)}
        )[RATE_COLUMNS]

    # Option chains -------------------------------------------------------------------------

    def option_chain(self, underlying: str, expiration: date | None, as_of: date) -> pd.DataFrame:
        ticker = yf.Ticker(underlying, session=self._session)
        with self._call(f"{underlying} option expirations"):
            listed = list(ticker.options)
        if expiration is None:
            wanted = listed
        elif expiration.isoformat() in listed:
            wanted = [expiration.isoformat()]
        else:
            raise NoData(
                self.name,
                f"{underlying} has no options expiring {expiration}; Yahoo lists "
                f"{', '.join(listed) or 'none'}",
            )
        frames: list[pd.DataFrame] = []
        for key in wanted:
            with self._call(f"{underlying} options expiring {key}"):
                chain = ticker.option_chain(key)
            frames.extend(
                self._contracts(underlying, date.fromisoformat(key), side, letter, as_of)
                for side, letter in ((chain.calls, "C"), (chain.puts, "P"))
                if side is not None and not side.empty
            )
        if not frames:
            raise NoData(self.name, f"Yahoo lists no option contracts on {underlying}")
        return pd.concat(frames, ignore_index=True)[CHAIN_COLUMNS]

    def _contracts(
        self, underlying: str, expiration: date, side: pd.DataFrame, letter: str, as_of: date
    ) -> pd.DataFrame:
        what = f"{underlying} {expiration} {'calls' if letter == 'C' else 'puts'}"
        symbols = side["contractSymbol"]
        if not symbols.map(lambda value: isinstance(value, str) and bool(value)).all():
            raise MalformedPayload(self.name, f"{what}: a contract has no contractSymbol")
        strikes = self._floats(side["strike"], f"{what} strike")
        if np.isnan(strikes).any():
            raise MalformedPayload(self.name, f"{what}: a contract has no strike")
        volatility = self._floats(side["impliedVolatility"], f"{what} impliedVolatility")
        volatility = np.where(volatility <= _NO_IMPLIED_VOLATILITY, math.nan, volatility)
        return pd.DataFrame(
            {
                "symbol": symbols.to_numpy(dtype=object),
                "underlying": underlying,
                "expiration": expiration,
                "strike": strikes,
                "option_type": letter,
                "date": as_of,
                "close": self._floats(side["lastPrice"], f"{what} lastPrice"),
                "implied_volatility": volatility,
            }
        )

    # Corporate actions ---------------------------------------------------------------------

    def corporate_actions(self, symbols: list[str], start: date, end: date) -> pd.DataFrame:
        """Splits ("Stock Splits": new shares per old one, 4.0 or 1.5) and cash dividends per
        share ("Dividends") of each symbol in [start, end]: the columns `Ticker.actions` reads,
        asked for the range only (`actions=True` on the same chart request) rather than the
        whole history. A symbol Yahoo does not know is left out."""
        frames: list[pd.DataFrame] = []
        for symbol in dict.fromkeys(symbols):
            try:
                with self._call(f"{symbol} corporate actions"):
                    history = yf.Ticker(symbol, session=self._session).history(
                        start=start.isoformat(),
                        end=(end + timedelta(days=1)).isoformat(),
                        interval="1d",
                        auto_adjust=False,
                        actions=True,
                        timeout=self.timeout,
                    )
            except NoData:
                continue
            if history.empty:
                continue
            if not isinstance(history.index, pd.DatetimeIndex):
                raise MalformedPayload(self.name, f"yfinance actions of {symbol} lack a date index")
            frames.append(self._actions(symbol, history, start, end))
        rows = [f for f in frames if not f.empty]
        if not rows:
            return empty_actions()
        return pd.concat(rows, ignore_index=True)[ACTION_COLUMNS]

    def _actions(self, symbol: str, history: pd.DataFrame, start: date, end: date) -> pd.DataFrame:
        sessions = list(history.index.date)
        splits = self._floats(
            history.get("Stock Splits", pd.Series(0.0, index=history.index)), f"{symbol} splits"
        )
        cash = self._floats(
            history.get("Dividends", pd.Series(0.0, index=history.index)), f"{symbol} dividends"
        )
        rows: list[dict[str, Any]] = []
        for day, ratio, amount in zip(sessions, splits, cash, strict=True):
            if not start <= day <= end:
                continue
            if np.isfinite(ratio) and ratio > 0 and ratio != 1:
                fraction = Fraction(str(ratio)).limit_denominator(1000)
                rows.append(
                    {
                        "symbol": symbol,
                        "kind": "split",
                        "ex_date": day,
                        "pay_date": None,
                        "split_to": Decimal(fraction.numerator),
                        "split_from": Decimal(fraction.denominator),
                        "cash_amount": None,
                    }
                )
            if np.isfinite(amount) and amount > 0:
                rows.append(
                    {
                        "symbol": symbol,
                        "kind": "cash_dividend",
                        "ex_date": day,
                        "pay_date": None,  # Yahoo's chart events carry only the ex-date
                        "split_to": None,
                        "split_from": None,
                        "cash_amount": Decimal(f"{amount:.6f}"),
                    }
                )
        return pd.DataFrame(rows, columns=ACTION_COLUMNS) if rows else empty_actions()

    # Plumbing ------------------------------------------------------------------------------

    def _floats(self, values: pd.Series, what: str) -> np.ndarray:
        try:
            return values.to_numpy(dtype=float, na_value=math.nan)
        except (TypeError, ValueError) as exc:
            raise MalformedPayload(self.name, f"{what} is not numeric ({exc})") from exc

    @contextmanager
    def _call(self, what: str) -> Iterator[None]:
        """Run the yfinance call inside under a time budget and turn its failures into ours."""
        call = _Call(
            what=what,
            timeout=self.timeout,
            deadline=time.monotonic() + _WAITS_PER_CALL * self.timeout,
        )
        token = _CURRENT_CALL.set(call)
        try:
            yield
        except Exception as exc:
            # yfinance memoises responses for past date ranges in process memory, error pages
            # included: forget them, or asking again would replay the failure without asking.
            YfData.cache_get.cache_clear()
            if isinstance(exc, ProviderError):
                raise
            raise self._translate(exc, call) from exc
        finally:
            _CURRENT_CALL.reset(token)

    def _translate(self, exc: Exception, call: _Call) -> ProviderError:
        what = call.what
        if isinstance(exc, _TIMEOUTS):
            return ProviderTimeout(self.name, f"no answer within {self.timeout:g} s for {what}")
        if isinstance(exc, _CONNECTION_ERRORS):
            return ProviderTimeout(self.name, f"could not reach Yahoo for {what}: {exc}")
        if isinstance(exc, YFRateLimitError):
            return RateLimited(self.name, f"Yahoo answered 429 Too Many Requests for {what}")
        status = _http_status(exc) or call.last_status
        if status == 429:
            return RateLimited(self.name, f"Yahoo answered 429 Too Many Requests for {what}")
        if status == 404:
            return NoData(self.name, f"Yahoo does not know {what} (HTTP 404)")
        if status is not None and status >= 400:
            return ProviderError(self.name, f"Yahoo answered HTTP {status} for {what}")
        if isinstance(exc, YFTickerMissingError):
            return NoData(self.name, f"empty download for {what}: {exc}")
        if isinstance(exc, _JSON_ERRORS):
            return MalformedPayload(self.name, f"Yahoo's answer for {what} is not JSON ({exc})")
        if isinstance(exc, _SHAPE_ERRORS):
            return MalformedPayload(
                self.name,
                f"Yahoo's answer for {what} does not have the documented shape "
                f"({type(exc).__name__}: {exc})",
            )
        if isinstance(exc, YFException):
            return ProviderError(self.name, f"yfinance failed on {what}: {exc}")
        return ProviderError(self.name, f"yfinance failed on {what}: {type(exc).__name__}: {exc}")
