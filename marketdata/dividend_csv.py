"""The dividend-yield CSV format: `symbol,date,dividend_yield`.

A yield is continuous, annual and decimal (0.031 is 3.1%), as of the date (any past day: the
yield of an option priced on a later session is the latest one on or before it). Parsing
validates every row and collects every error with its row (the file's line number, the header
being row 1) and column, so a user fixes a file in one pass; nothing is returned unless every
row is valid. Text from the file appears in a message only quoted and cut short.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from datetime import date
from typing import IO, NamedTuple

import pandas as pd

from marketdata import calendar
from marketdata.csv_files import FileProblems, csv_rows
from marketdata.providers.base import RATE_10Y, RATE_SHORT
from marketdata.symbols import SymbolError, looks_like_occ, normalize_ticker

HEADER = ["symbol", "date", "dividend_yield"]
MAX_ERRORS = 200
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DECIMAL = re.compile(r"^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$")
_SHOWN = 40  # characters of a bad cell a message repeats


class YieldLine(NamedTuple):
    """A valid line of a dividend-yield file."""

    symbol: str
    date: date
    dividend_yield: float


class DividendFileError(FileProblems):
    what = "dividend-yield file"


def shown(text: str) -> str:
    """A cell as a message repeats it: quoted with control characters escaped, cut short."""
    cut = text if len(text) <= _SHOWN else text[:_SHOWN] + "..."
    return repr(cut)


def parse_dividend_yields(
    stream: IO[bytes] | IO[str], *, today: date | None = None
) -> pd.DataFrame:
    """Validate a dividend-yield file; return a frame (symbol, date, dividend_yield) or raise
    DividendFileError."""
    today = today or date.today()
    header, reader = csv_rows(stream, DividendFileError)
    errors = _header_errors(header)
    if errors:
        raise DividendFileError(errors)
    rows, errors = _rows(reader, header, today)
    if errors:
        raise DividendFileError(errors[:MAX_ERRORS])
    if not rows:
        raise DividendFileError(
            [{"row": 2, "column": "", "message": "The file has no dividend-yield rows."}]
        )
    return pd.DataFrame(rows, columns=HEADER)


def _header_errors(header: list[str]) -> list[dict]:
    errors = [
        {"row": 1, "column": name, "message": f"Column {shown(name)} appears twice."}
        for name in sorted({h for h in header if header.count(h) > 1})
    ]
    errors.extend(
        {"row": 1, "column": "", "message": f"Unknown column {shown(name)}; expected {HEADER}."}
        for name in header
        if name not in HEADER
    )
    errors.extend(
        {"row": 1, "column": name, "message": f"Required column '{name}' is missing."}
        for name in HEADER
        if name not in header
    )
    return errors


def _symbol(text: str) -> str:
    symbol = normalize_ticker(text)
    if symbol in (RATE_10Y, RATE_SHORT) or looks_like_occ(symbol):
        raise SymbolError(f"{symbol} is a rate series or an option: it pays no dividend.")
    return symbol


def _day(text: str, today: date) -> tuple[date | None, str]:
    """The date and, when it is not a usable one, why."""
    if not _ISO_DATE.match(text):
        return None, f"{shown(text)} is not a date in YYYY-MM-DD form."
    try:
        day = date.fromisoformat(text)
    except ValueError:
        return None, f"{shown(text)} is not a date in YYYY-MM-DD form."
    if day > today:
        return None, f"{day} is in the future."
    if not calendar.FIRST_YEAR <= day.year <= calendar.LAST_YEAR:
        return None, f"{day} is outside the supported calendar."
    return day, ""


def _yield(text: str) -> tuple[float | None, str]:
    if not _DECIMAL.match(text):
        return None, f"{shown(text)} is not a number."
    value = float(text)
    if not math.isfinite(value):
        return None, f"{shown(text)} is not a finite number."
    if value < 0:
        return None, f"A dividend yield cannot be negative ({value:g})."
    if value >= 1:
        return None, f"{value:g} is not a decimal yield (0.031 is 3.1%; it must be below 1)."
    return value, ""


def _rows(
    reader: Iterable[list[str]], header: list[str], today: date
) -> tuple[list[YieldLine], list[dict]]:
    rows: list[YieldLine] = []
    errors: list[dict] = []
    seen: dict[tuple[str, date], int] = {}
    for line, cells in enumerate(reader, start=2):
        if not any(c.strip() for c in cells):
            continue
        if len(cells) != len(header):
            message = f"Expected {len(header)} fields, found {len(cells)}."
            errors.append({"row": line, "column": "", "message": message})
            continue
        record = dict(zip(header, (c.strip() for c in cells), strict=True))
        row_errors: list[dict] = []
        symbol: str | None = None
        try:
            symbol = _symbol(record["symbol"])
        except SymbolError:
            problem = f"{shown(record['symbol'])} is not a stock, ETF or index ticker."
            row_errors.append({"row": line, "column": "symbol", "message": problem})
        day, problem = _day(record["date"], today)
        if problem:
            row_errors.append({"row": line, "column": "date", "message": problem})
        value, problem = _yield(record["dividend_yield"])
        if problem:
            row_errors.append({"row": line, "column": "dividend_yield", "message": problem})
        if symbol is not None and day is not None:
            first = seen.setdefault((symbol, day), line)
            if first != line:
                problem = f"{symbol} on {day} already appears in row {first}."
                row_errors.append({"row": line, "column": "date", "message": problem})
        errors.extend(row_errors)
        if not row_errors:
            # Without row errors the symbol, the date and the yield were read.
            assert symbol is not None and day is not None and value is not None
            rows.append(YieldLine(symbol=symbol, date=day, dividend_yield=value))
        if len(errors) >= MAX_ERRORS:
            break
    return rows, errors
