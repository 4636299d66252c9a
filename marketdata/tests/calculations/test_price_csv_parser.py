"""The daily-price CSV parser on its own (`marketdata.price_csv.parse_prices`): a file in, a frame or
every problem with its row and column out. No database; `manage.py import_prices` is tested in
services/test_price_csv.py."""

from __future__ import annotations

import io
import math
from datetime import date
from typing import IO

import pytest

from marketdata.price_csv import HEADER, MAX_ERRORS, PriceFileError, parse_prices

TODAY = date(2024, 12, 2)
FULL = ",".join(HEADER)  # symbol,date,open,high,low,close,volume,adjusted_close
GOOD = [
    "AAPL,2024-11-26,230.1,232.0,229.5,231.25,41000000,231.25",
    "MSFT,2024-11-27,420.0,425.0,419.0,424.5,20000000,",
    "US10Y,2024-11-27,,,,0.0425,,",
]


def text(*rows: str, header: str = FULL) -> io.StringIO:
    return io.StringIO("\n".join([header, *rows]) + "\n")


def errors(stream: IO[str]) -> list[dict]:
    with pytest.raises(PriceFileError) as refused:
        parse_prices(stream, today=TODAY)
    for error in refused.value.errors:
        assert set(error) == {"row", "column", "message"}
    return refused.value.errors


@pytest.mark.parametrize(
    ("bad", "column", "message"),
    [
        (
            "AAPL,2024-13-01,1,2,1,1.5,100,",
            "date",
            "'2024-13-01' is not a date in YYYY-MM-DD form.",
        ),
        ("AAPL,20241125,1,2,1,1.5,100,", "date", "'20241125' is not a date in YYYY-MM-DD form."),
        ("AAPL,2024-11-28,1,2,1,1.5,100,", "date", "2024-11-28 is not an NYSE session."),
        ("AAPL,2024-12-03,1,2,1,1.5,100,", "date", "2024-12-03 is in the future."),
        ("AAPL,1989-12-29,1,2,1,1.5,100,", "date", "1989-12-29 is outside the supported calendar."),
        ("AAPL,2024-11-25,1,2,1,-1.5,100,", "close", "A price must be positive, not -1.5."),
        ("AAPL,2024-11-25,1,2,1,NaN,100,", "close", "'NaN' is not a finite number."),
        ("AAPL,2024-11-25,abc,2,1,1.5,100,", "open", "'abc' is not a finite number."),
        ("AAPL,2024-11-25,1,2,1,1.5,100,0", "adjusted_close", "A price must be positive, not 0."),
        ("AAPL,2024-11-25,1,2,1,1.5,-5,", "volume", "Volume cannot be negative (-5)."),
        ("AAPL,2024-11-25,1,2,1,1.5,1.5,", "volume", "'1.5' is not a whole number."),
        ("AAPL,2024-11-25,1,0.5,1,1.5,100,", "high", "high is below open, close or low."),
        ("AAPL,2024-11-25,1.5,2,1.6,1.8,100,", "low", "low is above open or close."),
        (
            "US10Y,2024-11-25,,,,4.25,,",
            "close",
            "4.25 is not a plausible yield as a decimal (0.0425 = 4.25%).",
        ),
        ("AAPL,2024-11-26,1,2,1,1.5,100,", "date", "AAPL on 2024-11-26 already appears in row 2."),
        ("AAPL,2024-11-25,1,2,1", "", "Expected 8 fields, found 5."),
    ],
)
def test_parse_prices_bad_row_names_its_row_column_and_reason(bad, column, message):
    assert errors(text(*GOOD, bad)) == [{"row": 5, "column": column, "message": message}]


def test_parse_prices_bad_ticker_is_a_symbol_error():
    (error,) = errors(text("BAD TICKER,2024-11-25,1,2,1,1.5,100,"))
    assert (error["row"], error["column"]) == (2, "symbol")
    assert "not a valid ticker" in error["message"]


def test_parse_prices_header_problems_name_each_column():
    assert errors(text(header="symbol,date,date,open,high,low,close,colour")) == [
        {"row": 1, "column": "date", "message": "Column 'date' appears twice."},
        {"row": 1, "column": "colour", "message": f"Unknown column 'colour'; expected {HEADER}."},
        {"row": 1, "column": "volume", "message": "Required column 'volume' is missing."},
    ]


@pytest.mark.parametrize(
    ("stream", "expected"),
    [
        (io.StringIO(""), (1, "", "The file is empty.")),
        (text(), (2, "", "The file has no price rows.")),
        (text("", " , ,"), (2, "", "The file has no price rows.")),
        (
            io.BytesIO(b"symbol,date,open,high,low,close,volume\nA\xe9,2024-11-25,1,2,1,1,1\n"),
            (0, "", "The file is not UTF-8 text (invalid continuation byte)."),
        ),
    ],
    ids=["empty", "header_only", "blank_rows_only", "not_utf8"],
)
def test_parse_prices_file_level_problems(stream, expected):
    assert [tuple(e.values()) for e in errors(stream)] == [expected]


def test_parse_prices_collects_every_problem_of_every_row_in_one_pass():
    stream = text(
        "AAPL,2024-11-25,abc,2,1,-1,x,",
        "",  # a blank line still counts as a row of the file
        "KO,x,1,2,1,1,1,",
    )
    assert [(e["row"], e["column"]) for e in errors(stream)] == [
        (2, "open"),
        (2, "close"),
        (2, "volume"),
        (4, "date"),
    ]


def test_parse_prices_stops_listing_problems_at_the_limit():
    found = errors(text(*(f"S{i},2024-11-28,1,2,1,1,1," for i in range(MAX_ERRORS + 50))))
    assert len(found) == MAX_ERRORS
    assert found[-1]["row"] == MAX_ERRORS + 1


def test_parse_prices_good_file_is_a_frame_of_every_row():
    frame = parse_prices(
        io.BytesIO(("\ufeff" + text(*GOOD).getvalue()).encode()), today=TODAY
    )  # a byte-order mark is accepted
    assert list(frame.columns) == HEADER
    assert list(frame["symbol"]) == ["AAPL", "MSFT", "US10Y"]
    assert list(frame["date"]) == [date(2024, 11, 26), date(2024, 11, 27), date(2024, 11, 27)]
    msft, rate = frame.iloc[1], frame.iloc[2]
    assert msft["adjusted_close"] == msft["close"] == 424.5  # empty: the close
    assert rate["close"] == rate["adjusted_close"] == 0.0425
    assert all(math.isnan(rate[c]) for c in ("open", "high", "low", "volume"))


def test_parse_prices_without_the_optional_column_takes_the_close():
    frame = parse_prices(
        text(
            "aapl,2024-11-26,230.1,232.0,229.5,231.25,41000000",
            header="SYMBOL,Date,open,high,low,close,volume",
        ),
        today=TODAY,
    )
    assert frame.iloc[0]["symbol"] == "AAPL"
    assert frame.iloc[0]["adjusted_close"] == 231.25
