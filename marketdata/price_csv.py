"""The daily-price CSV format: `symbol,date,open,high,low,close,volume[,adjusted_close]`.

Parsing validates every row and collects every error with its row (the file's line number, the
header being row 1) and column, so a user fixes a file in one pass; nothing is returned unless
every row is valid. Rate series (US10Y, US3M) carry the yield as a decimal in `close`. A date
that is not an NYSE session is an error; a session missing between a symbol's first and last
date is not (`file_gaps` reports it).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import IO, NamedTuple

import pandas as pd

from marketdata import calendar
from marketdata.csv_files import FileProblems, csv_rows
from marketdata.providers.base import RATE_10Y, RATE_SHORT
from marketdata.symbols import SymbolError, normalize_ticker
from sigmasight.exports import TextSink, csv_writer

REQUIRED = ["symbol", "date", "open", "high", "low", "close", "volume"]
OPTIONAL = ["adjusted_close"]
HEADER = [*REQUIRED, *OPTIONAL]
MAX_ERRORS = 200
_RATES = {RATE_10Y, RATE_SHORT}
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class PriceLine(NamedTuple):
    """A valid line of a price file, in HEADER order (NaN for a price a rate leaves blank)."""

    symbol: str
    date: date
    open: float
    high: float
    low: float
    close: float
    volume: int | None
    adjusted_close: float


class PriceFileError(FileProblems):
    what = "price file"


def _number(text: str) -> Decimal:
    value = Decimal(text)
    if not value.is_finite():
        raise InvalidOperation
    return value


def parse_prices(stream: IO[bytes] | IO[str], *, today: date | None = None) -> pd.DataFrame:
    """Validate a price file; return a frame in BAR_COLUMNS order or raise PriceFileError."""
    today = today or date.today()
    header, reader = csv_rows(stream, PriceFileError)
    errors = _header_errors(header)
    if errors:
        raise PriceFileError(errors)
    rows, errors = _rows(reader, header, today)
    if errors:
        raise PriceFileError(errors[:MAX_ERRORS])
    if not rows:
        raise PriceFileError([{"row": 2, "column": "", "message": "The file has no price rows."}])
    frame = pd.DataFrame(rows, columns=[*HEADER])
    frame["adjusted_close"] = frame["adjusted_close"].fillna(frame["close"])
    return frame


def _header_errors(header: list[str]) -> list[dict]:
    errors = []
    for name in sorted({h for h in header if header.count(h) > 1}):
        errors.append({"row": 1, "column": name, "message": f"Column '{name}' appears twice."})
    for name in header:
        if name not in HEADER:
            errors.append(
                {
                    "row": 1,
                    "column": name,
                    "message": f"Unknown column '{name}'; expected {HEADER}.",
                }
            )
    for name in REQUIRED:
        if name not in header:
            errors.append(
                {"row": 1, "column": name, "message": f"Required column '{name}' is missing."}
            )
    return errors


def _rows(
    reader: Iterable[list[str]], header: list[str], today: date
) -> tuple[list[PriceLine], list[dict]]:
    rows: list[PriceLine] = []
    errors: list[dict] = []
    seen: dict[tuple[str, date], int] = {}
    for line, cells in enumerate(reader, start=2):
        if not any(c.strip() for c in cells):
            continue
        if len(cells) != len(header):
            errors.append(
                {
                    "row": line,
                    "column": "",
                    "message": f"Expected {len(header)} fields, found {len(cells)}.",
                }
            )
            continue
        record = dict(zip(header, (c.strip() for c in cells), strict=True))
        row_errors: list[dict] = []

        def fail(
            column: str, message: str, line: int = line, row_errors: list = row_errors
        ) -> None:
            row_errors.append({"row": line, "column": column, "message": message})

        try:
            symbol = normalize_ticker(record["symbol"])
        except SymbolError as exc:
            fail("symbol", str(exc))
            symbol = None
        day = None
        try:
            if not _ISO_DATE.match(record["date"]):
                raise ValueError(record["date"])
            day = date.fromisoformat(record["date"])
        except ValueError:
            fail("date", f"'{record['date']}' is not a date in YYYY-MM-DD form.")
        if day is not None:
            if day > today:
                fail("date", f"{day} is in the future.")
            elif not calendar.FIRST_YEAR <= day.year <= calendar.LAST_YEAR:
                fail("date", f"{day} is outside the supported calendar.")
            elif not calendar.is_trading_day(day):
                fail("date", f"{day} is not an NYSE session.")
        values: dict[str, Decimal | None] = {}
        is_rate = symbol in _RATES
        for column in ("open", "high", "low", "close", "adjusted_close"):
            text = record.get(column, "")
            if text == "" and (column == "adjusted_close" or (is_rate and column != "close")):
                values[column] = None
                continue
            try:
                value = _number(text)
            except InvalidOperation:
                fail(column, f"'{text}' is not a finite number.")
                continue
            if is_rate and column == "close" and not Decimal("-0.05") <= value <= Decimal("0.5"):
                fail(column, f"{value} is not a plausible yield as a decimal (0.0425 = 4.25%).")
            elif not is_rate and value <= 0:
                fail(column, f"A price must be positive, not {value}.")
            values[column] = value
        volume = None
        try:
            volume = int(record["volume"]) if record["volume"] != "" or not is_rate else None
            if volume is not None and volume < 0:
                fail("volume", f"Volume cannot be negative ({volume}).")
        except ValueError:
            fail("volume", f"'{record['volume']}' is not a whole number.")
        if not row_errors and not is_rate:
            high, low = values["high"], values["low"]
            opening, closing = values["open"], values["close"]
            # Without row errors every price of a security is there (only a rate leaves some blank).
            assert high is not None and low is not None
            assert opening is not None and closing is not None
            if high < max(opening, closing, low):
                fail("high", "high is below open, close or low.")
            if low > min(opening, closing):
                fail("low", "low is above open or close.")
        if symbol and day:
            first = seen.setdefault((symbol, day), line)
            if first != line:
                fail("date", f"{symbol} on {day} already appears in row {first}.")
        errors.extend(row_errors)
        if not row_errors:
            # Without row errors the symbol and the date were read.
            assert symbol is not None and day is not None
            rows.append(
                PriceLine(
                    symbol=symbol,
                    date=day,
                    open=_float(values["open"]),
                    high=_float(values["high"]),
                    low=_float(values["low"]),
                    close=_float(values["close"]),
                    volume=volume,
                    adjusted_close=_float(values["adjusted_close"]),
                )
            )
        if len(errors) >= MAX_ERRORS:
            break
    return rows, errors


@dataclass(frozen=True)
class FileGaps:
    """The NYSE sessions between a symbol's first and last date in a file that it lacks."""

    first: date
    last: date
    sessions: list[date]  # ascending

    def describe(self, symbol: str, limit: int = 10) -> str:
        """`AAPL: 2 sessions missing between 2018-01-02 and 2018-12-31: 2018-03-05, 2018-03-06`,
        listing at most `limit` dates."""
        count = len(self.sessions)
        shown = ", ".join(d.isoformat() for d in self.sessions[:limit])
        more = f" and {count - limit} more" if count > limit else ""
        return (
            f"{symbol}: {count} session{'s' if count != 1 else ''} missing between "
            f"{self.first.isoformat()} and {self.last.isoformat()}: {shown}{more}"
        )


def file_gaps(frame: pd.DataFrame) -> dict[str, FileGaps]:
    """Per symbol of a parsed file (by symbol), the sessions it lacks between its first and last
    date; symbols without a gap are absent."""
    gaps = {}
    for symbol, days in frame.groupby("symbol", sort=True)["date"]:
        have = set(days)
        first, last = min(have), max(have)
        lacking = [d for d in calendar.trading_days(first, last) if d not in have]
        if lacking:
            gaps[symbol] = FileGaps(first, last, lacking)
    return gaps


def _float(value: Decimal | None) -> float:
    return math.nan if value is None else float(value)


def format_prices(rows: Iterable[tuple], out: TextSink) -> int:
    """Write rows (symbol, date, open, high, low, close, volume, adjusted_close) in the format."""
    writer = csv_writer(out)
    writer.writerow(HEADER)
    count = 0
    for row in rows:
        writer.writerow(["" if v is None else _plain(v) for v in row])
        count += 1
    return count


def _plain(value: object) -> str:
    if isinstance(value, Decimal):
        text = format(value.normalize(), "f")
        return text
    return str(value)
