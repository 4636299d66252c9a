"""The one interface every market-data source implements.

Frames are plain pandas with fixed columns so the cache and the calculations never care where
a number came from; `source` is added by the caller from `provider.name`.

Units: prices in the instrument's currency; rates and implied volatilities as decimals
(0.0425 = 4.25%, 0.25 = 25% vol); dates are `datetime.date` on NYSE sessions.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import date

import pandas as pd

BAR_COLUMNS = ["symbol", "date", "open", "high", "low", "close", "adjusted_close", "volume"]
CHAIN_COLUMNS = [
    "symbol",  # OCC symbol, e.g. AAPL250117C00200000
    "underlying",
    "expiration",
    "strike",
    "option_type",  # "C" or "P"
    "date",  # the session the close belongs to
    "close",
    "implied_volatility",  # decimal, NaN when the source has none
]
RATE_COLUMNS = ["date", "value"]

# Rate series names understood by every provider that has rates.
RATE_10Y = "US10Y"  # 10-year Treasury yield: the factor model's rate series
RATE_SHORT = "US3M"  # 13-week T-bill yield: the risk-free rate for the Greeks


class ProviderError(Exception):
    """A source failed in a way the caller may fall back from (next provider, then cache)."""

    def __init__(self, provider: str, message: str) -> None:
        super().__init__(f"{provider}: {message}")
        self.provider = provider


class ProviderTimeout(ProviderError):
    """The source did not connect or answer within the configured seconds."""


class RateLimited(ProviderError):
    """The source kept answering 429 after every retry."""


class MalformedPayload(ProviderError):
    """The source answered, but not with data in the shape its API documents."""


class NoData(ProviderError):
    """The source answered and has nothing for the request (e.g. an empty download)."""


class NotSupported(ProviderError):
    """This source does not offer that kind of data (e.g. Polygon has no Treasury yields here)."""


def is_transient(exc: BaseException) -> bool:
    """A provider failure that may pass if asked again later (timeouts, rate limits, 5xx, a
    dropped connection); not one about the data itself or what the source offers."""
    return isinstance(exc, ProviderError) and not isinstance(
        exc, (MalformedPayload, NoData, NotSupported)
    )


@dataclass(frozen=True)
class SectorInfo:
    sector: str
    industry: str
    name: str = ""


class MarketDataProvider(ABC):
    name: str

    @abstractmethod
    def daily_bars(self, symbols: list[str], start: date, end: date) -> pd.DataFrame:
        """Daily OHLCV for each symbol on sessions in [start, end], columns BAR_COLUMNS.

        Symbols the source does not know are absent from the frame (the caller falls back for
        them); a failure of the source itself raises ProviderError.
        """

    @abstractmethod
    def sector_industry(self, symbols: list[str]) -> dict[str, SectorInfo]:
        """GICS-style sector and industry for the symbols the source knows."""

    @abstractmethod
    def option_chain(self, underlying: str, expiration: date | None, as_of: date) -> pd.DataFrame:
        """Listed contracts of `underlying` (one expiration, or all when None), columns
        CHAIN_COLUMNS, priced as of the session `as_of`."""

    @abstractmethod
    def rate_series(self, name: str, start: date, end: date) -> pd.DataFrame:
        """Daily values of a rate series (RATE_10Y, RATE_SHORT) as decimals, columns
        RATE_COLUMNS."""

    def dividend_yields(self, symbols: list[str], as_of: date) -> dict[str, float]:
        """Each known symbol's dividend yield as of the session `as_of`: continuous, annual,
        decimal (0.03 is 3%; 0 for a stock that pays none). Symbols the source does not know are
        absent. A source without dividend data raises NotSupported (the caller moves on)."""
        raise NotSupported(self.name, "no dividend yields from this source")

    def corporate_actions(self, symbols: list[str], start: date, end: date) -> pd.DataFrame:
        """Splits and cash dividends of the symbols with an ex-date in [start, end], columns
        ACTION_COLUMNS (kind "split": split_to new shares for split_from old ones; kind
        "cash_dividend": cash_amount per share). Sources without them raise NotSupported."""
        raise NotSupported(self.name, "no corporate actions from this source")


def empty_bars() -> pd.DataFrame:
    return pd.DataFrame({column: pd.Series(dtype="object") for column in BAR_COLUMNS})


ACTION_COLUMNS = ["symbol", "kind", "ex_date", "pay_date", "split_to", "split_from", "cash_amount"]


def empty_actions() -> pd.DataFrame:
    return pd.DataFrame({column: pd.Series(dtype="object") for column in ACTION_COLUMNS})
