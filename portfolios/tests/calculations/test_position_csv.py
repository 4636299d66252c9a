"""The position CSV parser on its own (`portfolios.position_csv.parse`): bytes in, validated records
or every problem with its row and column out. No database, no API; the upload through the API is
tested in api/test_upload_refused.py with the same files."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from portfolios.position_csv import MAX_ERRORS, PositionFileError, TooLarge, parse
from portfolios.tests.position_files import BAD_FILES, after_good, lines, many_tags, row

TODAY = date.today()  # BAD_FILES' future entry date is 30 days after today
MAX_ROWS = 10_000
MAX_TAGS = 32
# Refused by the service once the owner's existing tags are counted, not by the parser.
NEEDS_THE_DATABASE = {"user_tag_limit_exceeded"}


def problems(raw: bytes, *, max_rows: int = MAX_ROWS, max_tags: int = MAX_TAGS) -> list[dict]:
    with pytest.raises(PositionFileError) as refused:
        parse(raw, today=TODAY, max_rows=max_rows, max_tags=max_tags)
    for problem in refused.value.problems:
        assert set(problem) == {"row", "column", "message"}
        assert problem["message"]
    return refused.value.problems


def cells(found: list[dict]) -> list[tuple[int, str]]:
    return [(p["row"], p["column"]) for p in found]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(raw, expected) for name, raw, expected in BAD_FILES if name not in NEEDS_THE_DATABASE],
    ids=[name for name, *_ in BAD_FILES if name not in NEEDS_THE_DATABASE],
)
def test_parse_bad_file_lists_the_row_and_column_of_every_problem(raw, expected):
    assert cells(problems(raw)) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            b"\xef\xbb\xbfsymbol\n",
            (1, "", "The file starts with a byte-order mark (BOM); save it as plain UTF-8 CSV."),
        ),
        (
            b"symbol,quantity\nAAPL,1\n" + "caf\u00e9".encode("latin-1"),
            (3, "", "The file is not UTF-8 text."),
        ),
        (b" \n\n", (1, "", "The file is empty.")),
        (lines(), (2, "", "The file has no positions.")),
        (
            lines(header="symbol;quantity;entry_price;entry_date"),
            (1, "", "Columns are separated by semicolons; use commas."),
        ),
        (
            lines(header="symbol\tquantity\tentry_price\tentry_date"),
            (1, "", "Columns are separated by tabs; use commas."),
        ),
        (
            lines("x", header=",".join(f"c{i}" for i in range(23))),
            (1, "", "The header has 23 columns; the format has 11."),
        ),
        (after_good("NVDA,3,450"), (4, "", "Expected 11 fields, found 3.")),
    ],
    ids=[
        "bom",
        "not_utf8",
        "blank",
        "header_only",
        "semicolons",
        "tabs",
        "wide_header",
        "short_row",
    ],
)
def test_parse_file_level_problems_say_what_is_wrong(raw, expected):
    assert [tuple(p.values()) for p in problems(raw)] == [expected]


def test_parse_header_problems_name_each_column():
    raw = lines("AAPL,1,1,1,red", header="symbol,quantity,quantity,entry_date,colour")
    assert problems(raw) == [
        {"row": 1, "column": "quantity", "message": "Column 'quantity' appears 2 times."},
        {
            "row": 1,
            "column": "colour",
            "message": "Unknown column 'colour'; allowed: symbol, "
            "quantity, entry_price, entry_date, underlying, option_type, strike, expiration, tags, "
            "strategy, notes.",
        },
        {"row": 1, "column": "entry_price", "message": "Required column 'entry_price' is missing."},
    ]


@pytest.mark.parametrize(
    ("bad", "column", "message"),
    [
        (
            row(quantity="0"),
            "quantity",
            "The quantity cannot be zero (use a negative quantity for a short).",
        ),
        (row(quantity="ten"), "quantity", "'ten' is not a number."),
        (row(quantity="Infinity"), "quantity", "'Infinity' is not a finite number."),
        (row(quantity="1e12"), "quantity", "1e12 is out of range."),
        (row(quantity="1.0000001"), "quantity", "1.0000001 has more than 6 decimal places."),
        (row(entry_price="-1.5"), "entry_price", "The entry price cannot be negative (-1.5)."),
        (row(entry_price=""), "entry_price", "'entry_price' is required."),
        (
            row(entry_date="03/01/2024"),
            "entry_date",
            "'03/01/2024' is not a date in YYYY-MM-DD form.",
        ),
        (row(entry_date="1899-12-29"), "entry_date", "1899-12-29 is implausibly old."),
        (
            row(symbol="AAPL", option_type="X", strike="200", expiration="2025-01-17"),
            "option_type",
            "'X' is not C or P.",
        ),
        (
            row(symbol="AAPL", option_type="C", strike="0", expiration="2025-01-17"),
            "strike",
            "The strike must be positive.",
        ),
        (
            row(symbol="AAPL", option_type="C", strike="200"),
            "expiration",
            "An option in columns needs option_type, strike and expiration (expiration missing).",
        ),
        (
            row(symbol="NVDA", underlying="AMD"),
            "underlying",
            "A stock's underlying is the stock itself; leave it empty.",
        ),
        (
            row(symbol="AAPL250117C00200000", quantity="1.5"),
            "quantity",
            "Options are held in whole contracts.",
        ),
        (row(notes="x" * 1_001), "notes", "Notes are limited to 1000 characters."),
        (row(notes="before\x00after"), "notes", "The value contains a NUL character."),
        (row(strategy="pairs:"), "strategy", "A strategy name is 1 to 120 characters."),
        (
            row(tags="ok;" + "t" * 51),
            "tags",
            "The tag 'tttttttttttttttttttt...' is longer than 50 characters.",
        ),
        (
            row(symbol="aapl", entry_date="2024-01-02"),
            "symbol",
            "AAPL entered 2024-01-02 already appears in row 2.",
        ),
    ],
)
def test_parse_bad_row_names_its_row_column_and_reason(bad, column, message):
    assert problems(after_good(bad)) == [{"row": 4, "column": column, "message": message}]


def test_parse_collects_every_problem_of_every_row_in_one_pass():
    raw = lines(
        row(symbol="AAPL", quantity="zero"),
        "",  # a blank line still counts as a row of the file
        row(symbol="TSLA", entry_date="yesterday", entry_price="-2"),
    )
    assert cells(problems(raw)) == [(2, "quantity"), (4, "entry_price"), (4, "entry_date")]


def test_parse_numbers_a_quoted_multi_line_cell_by_the_line_where_its_row_starts():
    raw = lines(row(notes='"two\nlines"'), row(symbol="MSFT", quantity="0"))
    assert cells(problems(raw)) == [(4, "quantity")]


def test_parse_stops_listing_problems_at_the_limit():
    raw = lines(*(row(symbol=f"S{i}", quantity="0") for i in range(MAX_ERRORS + 20)))
    found = problems(raw)
    assert len(found) == MAX_ERRORS
    assert found[-1]["row"] == MAX_ERRORS + 1


def test_parse_refuses_more_tags_on_a_row_than_allowed():
    assert problems(after_good(row(tags=many_tags(4))), max_tags=3) == [
        {"row": 4, "column": "tags", "message": "At most 3 tags per position (4 given)."}
    ]


@pytest.mark.parametrize(
    "rows",
    [
        [row(symbol=f"N{i}") for i in range(4)],
        [row(quantity="0"), *(row(symbol=f"N{i}") for i in range(3))],
    ],
    ids=["good_rows", "after_a_bad_row"],
)
def test_parse_over_the_row_limit_is_too_large(rows):
    with pytest.raises(TooLarge, match="more than 3 positions"):
        parse(lines(*rows), today=TODAY, max_rows=3, max_tags=MAX_TAGS)


def test_parse_good_file_returns_one_record_per_row():
    raw = lines(
        "AAPL,10,150.5,2024-01-02,,,,,tech;Tech;core,pairs:KO/PEP,'=1+1",
        '"AAPL  250117C00200000",-2,4.1,2024-01-02,,,,,,,"multi\nline"',
        "SPY,2,7.35,2024-03-01,SPY,put,412.5,2025-03-21,,,",
    )
    first, occ, columns = parse(raw, today=TODAY, max_rows=MAX_ROWS, max_tags=MAX_TAGS)
    assert (first.row, first.symbol, first.underlying, first.option_type) == (2, "AAPL", "AAPL", "")
    assert (first.quantity, first.entry_price, first.entry_date) == (
        Decimal("10"),
        Decimal("150.5"),
        date(2024, 1, 2),
    )
    assert first.tags == ("tech", "core")  # one per name, case-insensitively
    assert first.strategy == ("pairs", "KO/PEP")
    assert first.notes == "=1+1"  # the export's apostrophe is removed again
    assert (occ.row, occ.symbol, occ.option_type, occ.strike, occ.expiration) == (
        3,
        "AAPL250117C00200000",
        "C",
        Decimal("200"),
        date(2025, 1, 17),
    )
    assert occ.notes == "multi\nline"
    assert (columns.row, columns.symbol, columns.underlying, columns.option_type) == (
        5,
        "SPY250321P00412500",
        "SPY",
        "P",
    )


def test_parse_without_a_tags_column_keeps_tags_unknown():
    (record,) = parse(
        lines("IBM,9,180,2024-01-02", header="symbol,quantity,entry_price,entry_date"),
        today=TODAY,
        max_rows=MAX_ROWS,
        max_tags=MAX_TAGS,
    )
    assert record.tags is None
