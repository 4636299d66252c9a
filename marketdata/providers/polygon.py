"""Polygon.io through the official `polygon-api-client` (RESTClient).

The client builds URLs, follows `next_url` pagination and deserialises models; we keep all of
that. What we replace is its urllib3 PoolManager: the stock one never passes its configured
timeout to `request` (a silent server hangs it forever), retries with its own fixed schedule and
knows nothing of plan rate limits. Ours takes a token before every attempt, passes a real
`urllib3.Timeout`, retries 429 and 5xx with full-jitter backoff (honouring Retry-After) and turns
every transport failure into a ProviderError subclass.

Prices are Polygon's split-adjusted bars (`adjusted=true`). Polygon does not adjust for
dividends, so `adjusted_close` is the same number as `close`: a split-adjusted close, not a
total-return series like Yahoo's "Adj Close".
"""

from __future__ import annotations

import functools
import json
import logging
import math
import random
import time
from collections.abc import Callable, Iterable
from datetime import date
from decimal import Decimal
from typing import Any, TypeGuard, TypeVar
from urllib.parse import urlsplit

import certifi
import pandas as pd
import urllib3
from polygon import RESTClient
from polygon.exceptions import AuthError, BadResponse
from polygon.rest.models import Agg, Dividend, OptionContractSnapshot, Split
from urllib3.exceptions import HTTPError, ProtocolError
from urllib3.exceptions import TimeoutError as Urllib3Timeout

from marketdata.providers.base import (
    ACTION_COLUMNS,
    BAR_COLUMNS,
    CHAIN_COLUMNS,
    MalformedPayload,
    MarketDataProvider,
    NotSupported,
    ProviderError,
    ProviderTimeout,
    RateLimited,
    SectorInfo,
    empty_actions,
    empty_bars,
)
from marketdata.providers.ratelimit import (
    POLYGON_TIERS,
    TokenBucket,
    backoff_delay,
    parse_retry_after,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")

NEW_YORK = "America/New_York"
PROVIDER_NAME = "polygon"
# Polygon's documented maximum page sizes: fewer pages means fewer rate-limit tokens spent.
AGGS_PAGE_LIMIT = 50_000
CHAIN_PAGE_LIMIT = 250
ACTIONS_PAGE_LIMIT = 1000
# Polygon's dividend types paid in cash per share: regular (CD) and special (SC).
CASH_DIVIDEND_TYPES = {"CD", "SC"}
# Agg attribute -> Polygon's JSON field, for messages that match what is in the payload.
REQUIRED_AGG_FIELDS = {
    "open": "o",
    "high": "h",
    "low": "l",
    "close": "c",
    "volume": "v",
    "timestamp": "t",
}
OPTION_TYPES = {"call": "C", "put": "P"}


class _PayloadError(Exception):
    """Raised from inside the client's decode step.

    Deliberately not a ValueError: the client catches ValueError while decoding and quietly
    yields nothing, which would make a garbled answer look like "no data for this symbol".
    """


class _StrictJson:
    """The `custom_json` hook of RESTClient: decode, and refuse what is not a JSON object."""

    @staticmethod
    def loads(text: str) -> Any:
        try:
            payload = json.loads(text)
        except ValueError as exc:
            raise _PayloadError(f"response is not valid JSON ({exc})") from exc
        if not isinstance(payload, dict):
            raise _PayloadError(f"response is a JSON {type(payload).__name__}, not an object")
        return payload


class _PolygonPoolManager(urllib3.PoolManager):
    """Every request of the client passes through `urlopen`: pace, time out, retry, classify."""

    def __init__(
        self,
        *,
        headers: dict[str, str],
        bucket: TokenBucket,
        timeout: urllib3.Timeout,
        max_retries: int,
        backoff_base: float,
        backoff_cap: float,
        sleep: Callable[[float], object],
        rng: random.Random,
    ) -> None:
        super().__init__(
            headers=headers,
            ca_certs=certifi.where(),
            cert_reqs="CERT_REQUIRED",
            retries=False,
        )
        self._bucket = bucket
        self._timeout = timeout
        self._max_retries = max_retries
        self._backoff_base = backoff_base
        self._backoff_cap = backoff_cap
        self._sleep = sleep
        self._rng = rng

    def urlopen(  # type: ignore[override]
        self, method: str, url: str, redirect: bool = True, **kw: Any
    ) -> urllib3.BaseHTTPResponse:
        # Polygon never redirects; a 3xx must surface as an error rather than be followed.
        del redirect
        kw["retries"] = False
        kw["timeout"] = self._timeout
        path = urlsplit(url).path
        attempt = 0
        while True:
            self._bucket.acquire()
            response = self._attempt(method, url, path, kw)
            if response.status != 429 and response.status < 500:
                return response
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            if attempt >= self._max_retries:
                raise self._give_up(response.status, path, f"after {attempt + 1} attempts")
            if retry_after is not None and retry_after > self._backoff_cap:
                # Honouring a long Retry-After would stall the whole batch; failing now lets the
                # caller fall back to the next provider or the cache instead.
                raise self._give_up(response.status, path, f"asked to retry after {retry_after:g}s")
            delay = backoff_delay(
                attempt,
                base=self._backoff_base,
                cap=self._backoff_cap,
                rng=self._rng,
                retry_after=retry_after,
            )
            logger.warning(
                "polygon %s answered %s; retry %s/%s in %.2fs",
                path,
                response.status,
                attempt + 1,
                self._max_retries,
                delay,
            )
            self._sleep(delay)
            attempt += 1

    def _attempt(
        self, method: str, url: str, path: str, kw: dict[str, Any]
    ) -> urllib3.BaseHTTPResponse:
        try:
            return super().urlopen(method, url, redirect=False, **kw)
        except (Urllib3Timeout, ProtocolError) as exc:
            # Connect failures (refused, unresolvable) are TimeoutError subclasses in urllib3,
            # and a dropped connection is a ProtocolError: to the caller all mean "no answer".
            raise ProviderTimeout(
                PROVIDER_NAME,
                f"{path}: no answer within {self._timeout.connect_timeout}s connect / "
                f"{self._timeout.read_timeout}s read ({type(exc).__name__}: {exc})",
            ) from exc
        except HTTPError as exc:
            raise ProviderError(PROVIDER_NAME, f"{path}: {type(exc).__name__}: {exc}") from exc

    @staticmethod
    def _give_up(status: int, path: str, detail: str) -> ProviderError:
        if status == 429:
            return RateLimited(PROVIDER_NAME, f"{path}: HTTP 429 {detail}")
        return ProviderError(PROVIDER_NAME, f"{path}: HTTP {status} {detail}")


def _error_text(exc: BadResponse) -> str:
    """Polygon's error body (`status` plus `error` or `message`), else the raw text, short."""
    body = str(exc)
    try:
        payload = json.loads(body)
    except ValueError:
        return body[:200] or "empty response"
    if not isinstance(payload, dict):
        return body[:200]
    status = payload.get("status", "ERROR")
    message = payload.get("error") or payload.get("message") or body[:200]
    return f"{status}: {message}"


class PolygonProvider(MarketDataProvider):
    """Daily bars and option chains from Polygon.

    Sectors and Treasury yields are not offered here: when Polygon is the price source,
    yfinance supplies them (DESIGN).

    The rate limit is per instance: each worker process holds one provider, and whatever
    several processes sharing a key overshoot comes back as 429s that the retry path absorbs.
    """

    name = PROVIDER_NAME

    def __init__(
        self,
        api_key: str,
        *,
        tier: str = "free",
        base_url: str = "https://api.polygon.io",
        connect_timeout: float = 5.0,
        read_timeout: float = 20.0,
        max_retries: int = 4,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        sleep: Callable[[float], object] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        try:
            limits = POLYGON_TIERS[tier]
        except KeyError:
            known = ", ".join(sorted(POLYGON_TIERS))
            raise ValueError(f"unknown Polygon tier {tier!r}; expected one of {known}") from None
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {max_retries}")
        try:
            # An empty key would only earn a 401 per request; let the client refuse it up front.
            self._client = RESTClient(
                api_key or None,
                base=base_url.rstrip("/"),
                connect_timeout=connect_timeout,
                read_timeout=read_timeout,
                custom_json=_StrictJson,
            )
        except AuthError as exc:
            raise ProviderError(self.name, "no API key configured") from exc
        self._bucket = TokenBucket(limits.requests_per_second, limits.burst, sleep=sleep)
        self._client.client = _PolygonPoolManager(
            headers=self._client.headers,
            bucket=self._bucket,
            timeout=urllib3.Timeout(connect=connect_timeout, read=read_timeout),
            max_retries=max_retries,
            backoff_base=backoff_base,
            backoff_cap=backoff_cap,
            sleep=sleep,
            rng=rng or random.Random(),
        )

    def daily_bars(self, symbols: list[str], start: date, end: date) -> pd.DataFrame:
        frames = [
            frame
            for symbol in dict.fromkeys(symbols)
            if not (frame := self._bars_for(symbol, start, end)).empty
        ]
        if not frames:
            return empty_bars()
        return pd.concat(frames, ignore_index=True)[BAR_COLUMNS]

    def _bars_for(self, symbol: str, start: date, end: date) -> pd.DataFrame:
        aggs: list[Agg] = self._fetch(
            f"daily bars for {symbol}",
            lambda: self._client.list_aggs(
                symbol, 1, "day", start, end, adjusted=True, sort="asc", limit=AGGS_PAGE_LIMIT
            ),
        )
        if not aggs:
            return empty_bars()
        for index, agg in enumerate(aggs):
            missing = [
                f"{field} ({attribute})"
                for attribute, field in REQUIRED_AGG_FIELDS.items()
                if not _is_number(getattr(agg, attribute))
            ]
            if missing:
                raise MalformedPayload(
                    self.name,
                    f"daily bars for {symbol}: result {index} lacks a numeric {', '.join(missing)}",
                )
        sessions = (
            pd.to_datetime([agg.timestamp for agg in aggs], unit="ms", utc=True)
            .tz_convert(NEW_YORK)
            .date
        )
        closes = [float(agg.close) for agg in aggs]
        return pd.DataFrame(
            {
                "symbol": symbol,
                "date": sessions,
                "open": [float(agg.open) for agg in aggs],
                "high": [float(agg.high) for agg in aggs],
                "low": [float(agg.low) for agg in aggs],
                "close": closes,
                "adjusted_close": closes,
                # Float, not int: Polygon's split-adjusted volumes can be fractional.
                "volume": [float(agg.volume) for agg in aggs],
            },
            columns=BAR_COLUMNS,
        )

    def option_chain(self, underlying: str, expiration: date | None, as_of: date) -> pd.DataFrame:
        params: dict[str, Any] = {"limit": CHAIN_PAGE_LIMIT}
        if expiration is not None:
            params["expiration_date"] = expiration.isoformat()
        what = f"option chain for {underlying}"
        snapshots: list[OptionContractSnapshot] = self._fetch(
            what, lambda: self._client.list_snapshot_options_chain(underlying, params=params)
        )
        rows = [self._chain_row(what, underlying, snapshot, as_of) for snapshot in snapshots]
        return pd.DataFrame(rows, columns=CHAIN_COLUMNS)

    def _chain_row(
        self, what: str, underlying: str, snapshot: OptionContractSnapshot, as_of: date
    ) -> dict[str, Any]:
        details = snapshot.details
        ticker = details.ticker if details is not None else None
        if details is None or not ticker:
            raise MalformedPayload(self.name, f"{what}: a contract has no details.ticker")
        option_type = OPTION_TYPES.get(details.contract_type or "")
        if option_type is None:
            raise MalformedPayload(
                self.name, f"{what}: {ticker} has contract_type {details.contract_type!r}"
            )
        if not _is_number(details.strike_price):
            raise MalformedPayload(self.name, f"{what}: {ticker} has no numeric strike_price")
        try:
            expires = date.fromisoformat(details.expiration_date or "")
        except ValueError as exc:
            raise MalformedPayload(
                self.name, f"{what}: {ticker} has expiration_date {details.expiration_date!r}"
            ) from exc
        day_close = snapshot.day.close if snapshot.day is not None else None
        return {
            "symbol": ticker.removeprefix("O:"),
            "underlying": underlying,
            "expiration": expires,
            "strike": float(details.strike_price),
            "option_type": option_type,
            # The snapshot only holds the latest session; the caller names which one that is.
            "date": as_of,
            "close": float(day_close) if _is_number(day_close) else math.nan,
            "implied_volatility": (
                float(snapshot.implied_volatility)
                if _is_number(snapshot.implied_volatility)
                else math.nan
            ),
        }

    def corporate_actions(self, symbols: list[str], start: date, end: date) -> pd.DataFrame:
        frames = [self.splits(symbols, start, end), self.dividends(symbols, start, end)]
        rows = pd.concat([f for f in frames if not f.empty] or [empty_actions()])
        return rows.reset_index(drop=True)[ACTION_COLUMNS]

    def splits(self, symbols: list[str], start: date, end: date) -> pd.DataFrame:
        """/v3/reference/splits per symbol, executed in [start, end]: `split_to` new shares for
        `split_from` old ones (a reverse split has from > to)."""
        rows: list[dict[str, Any]] = []
        for symbol in dict.fromkeys(symbols):
            what = f"splits of {symbol}"
            query = {"ticker": symbol, "limit": ACTIONS_PAGE_LIMIT}
            splits: list[Split] = self._fetch(
                what,
                functools.partial(
                    self._client.list_splits,
                    execution_date_gte=start,
                    execution_date_lte=end,
                    **query,
                ),
            )
            for split in splits:
                if not (_is_number(split.split_to) and _is_number(split.split_from)):
                    raise MalformedPayload(self.name, f"{what}: a split lacks split_to/split_from")
                if split.split_to <= 0 or split.split_from <= 0:
                    raise MalformedPayload(self.name, f"{what}: a split ratio is not positive")
                rows.append(
                    {
                        "symbol": symbol,
                        "kind": "split",
                        "ex_date": self._action_date(what, split.execution_date, "execution_date"),
                        "pay_date": None,
                        "split_to": Decimal(str(split.split_to)),
                        "split_from": Decimal(str(split.split_from)),
                        "cash_amount": None,
                    }
                )
        return pd.DataFrame(rows, columns=ACTION_COLUMNS) if rows else empty_actions()

    def dividends(self, symbols: list[str], start: date, end: date) -> pd.DataFrame:
        """/v3/reference/dividends per symbol with an ex-dividend date in [start, end]: cash
        dividends (regular CD and special SC; capital-gain distributions are left out)."""
        rows: list[dict[str, Any]] = []
        for symbol in dict.fromkeys(symbols):
            what = f"dividends of {symbol}"
            query = {"ticker": symbol, "limit": ACTIONS_PAGE_LIMIT}
            dividends: list[Dividend] = self._fetch(
                what,
                functools.partial(
                    self._client.list_dividends,
                    ex_dividend_date_gte=start,
                    ex_dividend_date_lte=end,
                    **query,
                ),
            )
            for dividend in dividends:
                if dividend.dividend_type not in CASH_DIVIDEND_TYPES:
                    continue
                if not _is_number(dividend.cash_amount) or dividend.cash_amount <= 0:
                    raise MalformedPayload(self.name, f"{what}: a dividend has no cash_amount")
                pay = dividend.pay_date
                rows.append(
                    {
                        "symbol": symbol,
                        "kind": "cash_dividend",
                        "ex_date": self._action_date(
                            what, dividend.ex_dividend_date, "ex_dividend_date"
                        ),
                        "pay_date": self._action_date(what, pay, "pay_date") if pay else None,
                        "split_to": None,
                        "split_from": None,
                        "cash_amount": Decimal(str(dividend.cash_amount)),
                    }
                )
        return pd.DataFrame(rows, columns=ACTION_COLUMNS) if rows else empty_actions()

    def _action_date(self, what: str, value: str | None, field: str) -> date:
        try:
            return date.fromisoformat(value or "")
        except ValueError as exc:
            raise MalformedPayload(self.name, f"{what}: {field} is {value!r}") from exc

    def sector_industry(self, symbols: list[str]) -> dict[str, SectorInfo]:
        raise NotSupported(self.name, "sectors come from yfinance when Polygon supplies prices")

    def rate_series(self, name: str, start: date, end: date) -> pd.DataFrame:
        raise NotSupported(self.name, "rates come from yfinance when Polygon supplies prices")

    def _fetch(self, what: str, request: Callable[[], Iterable[T]]) -> list[T]:
        """Drain one paginated client call, translating the client's failures into ours."""
        try:
            return list(request())
        except _PayloadError as exc:
            raise MalformedPayload(self.name, f"{what}: {exc}") from exc
        except BadResponse as exc:
            raise ProviderError(self.name, f"{what}: rejected: {_error_text(exc)}") from exc
        except (AttributeError, TypeError) as exc:
            # The client's model constructors index and unpack what they are given: a `results`
            # that is not a list of objects, or a nested object that is not one, fails here.
            raise MalformedPayload(
                self.name,
                f"{what}: results do not match the documented shape ({type(exc).__name__}: {exc})",
            ) from exc


def _is_number(value: object) -> TypeGuard[float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
