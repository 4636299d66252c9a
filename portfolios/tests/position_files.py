"""Position CSV files for the tests: a row with every column, a file of rows after two good ones
(so a bad row is row 4), a file from records, and files the parser must refuse with the (row,
column) of every problem. Nothing here touches the database."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from datetime import date, timedelta

from portfolios.position_csv import COLUMNS

HEADER = ",".join(COLUMNS)
GOOD_ROWS = (
    "AAPL,10,150.5,2024-01-02,,,,,tech,,first lot",
    "MSFT,-5,300,2024-02-01,,,,,,,",
)
FUTURE = (date.today() + timedelta(days=30)).isoformat()


def lines(*rows: str, header: str = HEADER) -> bytes:
    return ("\n".join([header, *rows]) + "\n").encode()


def after_good(*rows: str) -> bytes:
    """Two valid rows (file rows 2 and 3) and then `rows`, so a bad one is row 4."""
    return lines(*GOOD_ROWS, *rows)


def row(
    symbol: str = "NVDA",
    quantity: str = "3",
    entry_price: str = "450",
    entry_date: str = "2024-03-01",
    underlying: str = "",
    option_type: str = "",
    strike: str = "",
    expiration: str = "",
    tags: str = "",
    strategy: str = "",
    notes: str = "",
) -> str:
    cells = [
        symbol,
        quantity,
        entry_price,
        entry_date,
        underlying,
        option_type,
        strike,
        expiration,
        tags,
        strategy,
        notes,
    ]
    return ",".join(cells)


def csv_file(records: Iterable[dict[str, str]]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(records)
    return out.getvalue().encode()


def many_tags(count: int, start: int = 0) -> str:
    return ";".join(f"t{i:03d}" for i in range(start, start + count))


# (id, file, the (row, column) of every problem expected)
BAD_FILES: list[tuple[str, bytes, list[tuple[int, str]]]] = [
    ("utf8_bom", b"\xef\xbb\xbf" + after_good(), [(1, "")]),
    ("semicolons", lines("AAPL;10;150;2024-01-02", header=";".join(COLUMNS)), [(1, "")]),
    ("tabs", lines("AAPL\t10\t150\t2024-01-02", header="\t".join(COLUMNS)), [(1, "")]),
    ("blank_lines_only", b"\n  \n\n", [(1, "")]),
    ("header_only", lines(), [(2, "")]),
    ("latin1_bytes", after_good(row(notes="caf\u00e9")).decode().encode("latin-1"), [(4, "")]),
    ("huge_notes_cell", after_good(row(notes="x" * 200_000)), [(4, "")]),
    ("notes_too_long", after_good(row(notes="x" * 1_001)), [(4, "notes")]),
    ("cell_over_2000_chars", after_good(row(strategy="s" * 2_001)), [(4, "strategy")]),
    ("quantity_zero", after_good(row(quantity="0")), [(4, "quantity")]),
    ("quantity_negative_zero", after_good(row(quantity="-0.000")), [(4, "quantity")]),
    ("quantity_nan", after_good(row(quantity="NaN")), [(4, "quantity")]),
    ("quantity_infinity", after_good(row(quantity="Infinity")), [(4, "quantity")]),
    ("quantity_not_a_number", after_good(row(quantity="ten")), [(4, "quantity")]),
    ("quantity_seven_places", after_good(row(quantity="1.0000001")), [(4, "quantity")]),
    ("quantity_out_of_range", after_good(row(quantity="1e12")), [(4, "quantity")]),
    ("entry_price_negative", after_good(row(entry_price="-1.5")), [(4, "entry_price")]),
    ("entry_price_empty", after_good(row(entry_price="")), [(4, "entry_price")]),
    ("bad_ticker", after_good(row(symbol="AA PL!")), [(4, "symbol")]),
    ("occ_impossible_date", after_good(row(symbol="AAPL250230C00200000")), [(4, "symbol")]),
    (
        "occ_columns_disagree",
        after_good(row(symbol="AAPL250117C00200000", option_type="P", strike="210")),
        [(4, "option_type"), (4, "strike")],
    ),
    (
        "occ_underlying_disagrees",
        after_good(row(symbol="AAPL250117C00200000", underlying="MSFT")),
        [(4, "underlying")],
    ),
    (
        "stock_with_other_underlying",
        after_good(row(symbol="NVDA", underlying="AMD")),
        [(4, "underlying")],
    ),
    (
        "option_columns_partial",
        after_good(row(symbol="AAPL", option_type="C", strike="200")),
        [(4, "expiration")],
    ),
    (
        "option_type_x",
        after_good(row(symbol="AAPL", option_type="X", strike="200", expiration="2025-01-17")),
        [(4, "option_type")],
    ),
    (
        "strike_zero",
        after_good(row(symbol="AAPL", option_type="C", strike="0", expiration="2025-01-17")),
        [(4, "strike")],
    ),
    (
        "expiration_before_entry",
        after_good(
            row(
                symbol="AAPL",
                option_type="C",
                strike="200",
                expiration="2024-01-19",
                entry_date="2024-03-01",
            )
        ),
        [(4, "expiration")],
    ),
    ("entry_date_in_future", after_good(row(entry_date=FUTURE)), [(4, "entry_date")]),
    ("entry_date_malformed", after_good(row(entry_date="2024-13-45")), [(4, "entry_date")]),
    ("entry_date_us_style", after_good(row(entry_date="03/01/2024")), [(4, "entry_date")]),
    ("entry_date_too_old", after_good(row(entry_date="1899-12-29")), [(4, "entry_date")]),
    (
        "unknown_column",
        lines("AAPL,1,1,2024-01-02,red", header="symbol,quantity,entry_price,entry_date,colour"),
        [(1, "colour")],
    ),
    (
        "duplicate_header",
        lines("AAPL,1,1,2024-01-02,2", header="symbol,quantity,entry_price,entry_date,quantity"),
        [(1, "quantity")],
    ),
    (
        "missing_required_column",
        lines("AAPL,1,2024-01-02", header="symbol,quantity,entry_date"),
        [(1, "entry_price")],
    ),
    ("wrong_field_count", after_good("NVDA,3,450,2024-03-01"), [(4, "")]),
    ("duplicate_lot", after_good(row(symbol="aapl", entry_date="2024-01-02")), [(4, "symbol")]),
    (
        "duplicate_lot_occ_and_columns",
        after_good(
            row(symbol="AAPL  250117C00200000"),
            row(symbol="AAPL", option_type="C", strike="200", expiration="2025-01-17"),
        ),
        [(5, "symbol")],
    ),
    ("strategy_without_name", after_good(row(strategy="pairs:")), [(4, "strategy")]),
    ("too_many_tags_on_a_row", after_good(row(tags=many_tags(33))), [(4, "tags")]),
    ("tag_longer_than_50", after_good(row(tags="ok;" + "t" * 51)), [(4, "tags")]),
    (
        "fractional_option_contracts",
        after_good(row(symbol="AAPL250117C00200000", quantity="1.5", entry_date="2024-03-01")),
        [(4, "quantity")],
    ),
    ("unterminated_quote", after_good('NVDA,3,450,2024-03-01,,,,,,,"never closed'), [(4, "")]),
    (
        "every_bad_row_listed",
        lines(
            row(symbol="AAPL", quantity="zero"),
            row(symbol="MSFT"),
            row(symbol="TSLA", entry_date="yesterday", entry_price="-2"),
        ),
        [(2, "quantity"), (4, "entry_price"), (4, "entry_date")],
    ),
    (
        "user_tag_limit_exceeded",
        # The owner has 1 tag; 4 x 25 new ones make 101 > 100: the 100th new tag is on row 5.
        lines(*(row(symbol=f"S{i}", tags=many_tags(25, 25 * i)) for i in range(4))),
        [(5, "tags")],
    ),
]
