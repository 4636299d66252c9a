"""The position CSV through the API: `POST portfolios/{id}/upload/` and `GET .../export/`.

Every refused file must leave the database exactly as it was, so the bad-file cases compare a
snapshot taken before and after the request: row counts, and the existing lots, their tags and
the strategies as stored.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings
from rest_framework.test import APIClient

from marketdata.models import Security
from portfolios import services
from portfolios.models import Portfolio, Position, PositionTag, Strategy, Tag
from portfolios.position_csv import COLUMNS
from portfolios.tests.factories import PortfolioFactory, stock
from sigmasight.accounts.tests.test_auth_api import assert_envelope

pytestmark = pytest.mark.django_db

HEADER = ",".join(COLUMNS)
GOOD_ROWS = (
    "AAPL,10,150.5,2024-01-02,,,,,tech,,first lot",
    "MSFT,-5,300,2024-02-01,,,,,,,",
)
FUTURE = (date.today() + timedelta(days=30)).isoformat()


def upload_url(portfolio: Portfolio) -> str:
    return f"/api/v1/portfolios/{portfolio.pk}/upload/"


def export_url(portfolio: Portfolio) -> str:
    return f"/api/v1/portfolios/{portfolio.pk}/export/"


def post_file(client: APIClient, portfolio: Portfolio, raw: bytes, mode: str = "append"):
    return client.post(
        upload_url(portfolio),
        {"file": SimpleUploadedFile("positions.csv", raw, content_type="text/csv"), "mode": mode},
        format="multipart",
    )


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
        symbol, quantity, entry_price, entry_date, underlying, option_type, strike, expiration,
        tags, strategy, notes,
    ]  # fmt: skip
    return ",".join(cells)


def csv_file(records: Iterable[dict[str, str]]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(records)
    return out.getvalue().encode()


@pytest.fixture
def portfolio(user) -> Portfolio:
    """A book that already holds a tagged lot in a user strategy, so a write would show."""
    book = PortfolioFactory(owner=user)
    held = stock(book, "IBM", "7", entry_price="180.25", notes="held before")
    hedge = stock(book, "ORCL", "-7", entry_price="110")
    held.tags.add(Tag.objects.create(owner=user, name="core"))
    services.strategy_create(
        portfolio=book, name="IBM/ORCL", kind="pairs", position_ids=[held.pk, hedge.pk]
    )
    services.strategies_refresh(portfolio=book)
    return book


def snapshot(portfolio: Portfolio) -> dict:
    held = Position.objects.filter(portfolio=portfolio).order_by("id")
    return {
        "positions": Position.objects.count(),
        "tags": Tag.objects.count(),
        "strategies": Strategy.objects.count(),
        "strategy_members": Strategy.positions.through.objects.count(),
        "position_tags": PositionTag.objects.count(),
        "securities": Security.objects.count(),
        "held": list(held.values()),
        "held_tags": list(PositionTag.objects.order_by("id").values("position_id", "tag_id")),
        "held_strategies": list(
            Strategy.objects.filter(portfolio=portfolio).order_by("id").values("id", "name", "kind")
        ),
    }


def problem_cells(error: dict) -> list[tuple[int, str]]:
    rows = error["fields"]["rows"]
    for problem in rows:
        assert set(problem) == {"row", "column", "message"}
        assert problem["message"]
    return [(p["row"], p["column"]) for p in rows]


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


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(raw, cells) for _, raw, cells in BAD_FILES],
    ids=[n for n, *_ in BAD_FILES],
)
def test_upload_bad_file_lists_problems_and_writes_nothing(
    auth_client, portfolio, raw: bytes, expected: list[tuple[int, str]]
):
    before = snapshot(portfolio)
    error = assert_envelope(post_file(auth_client, portfolio, raw), 400, "validation_error")
    assert problem_cells(error) == expected
    assert snapshot(portfolio) == before


def test_upload_zero_byte_file_is_refused_by_the_form(auth_client, portfolio):
    before = snapshot(portfolio)
    error = assert_envelope(post_file(auth_client, portfolio, b""), 400, "validation_error")
    assert list(error["fields"]) == ["file"]
    assert snapshot(portfolio) == before


def ten_thousand_lots() -> list[dict[str, str]]:
    """Distinct lots: stocks long and short (some fractional), OCC options, options given in
    columns, tags from a small pool and one pairs strategy."""
    start = date(2015, 1, 2)
    pool = ["tech", "value", "Growth"]
    records = []
    for i in range(7_000):
        quantity = Decimal(10 + i % 90) * (-1 if i % 3 == 0 else 1)
        if i % 7 == 0:
            quantity += Decimal("0.125")
        records.append(
            {
                "symbol": f"TK{i % 40:02d}",
                "quantity": str(quantity),
                "entry_price": f"{20 + i % 400}.{i % 100:02d}",
                "entry_date": (start + timedelta(days=i // 40)).isoformat(),
                "tags": ";".join(pool[: i % 4]),
            }
        )
    for i in range(1_500):
        right = "C" if i % 2 else "P"
        records.append(
            {
                "symbol": f"AAPL300118{right}{(50 + i) * 1000:08d}",
                "quantity": str(-(1 + i % 5) if i % 4 == 0 else 1 + i % 5),
                "entry_price": "3.25",
                "entry_date": "2024-01-02",
                "tags": "options",
            }
        )
    for i in range(1_500):
        records.append(
            {
                "symbol": "MSFT",
                "underlying": "MSFT",
                "option_type": "call" if i % 2 else "P",
                "strike": str(100 + i),
                "expiration": "2030-06-21",
                "quantity": "2",
                "entry_price": "4.5",
                "entry_date": "2024-01-03",
                "notes": "columns",
            }
        )
    records[0]["strategy"] = "pairs:TK00/TK01"  # TK00 short, TK01 long
    records[1]["strategy"] = "pairs:TK00/TK01"
    return records


def test_upload_ten_thousand_rows(auth_client, user):
    book = PortfolioFactory(owner=user)
    records = ten_thousand_lots()
    raw = csv_file(records)
    response = post_file(auth_client, book, raw)
    assert response.status_code == 200, response.content[:2000]
    assert response.json() == {"created": 10_000, "updated": 0, "total": 10_000}
    stored = Position.objects.filter(portfolio=book)
    assert stored.count() == 10_000
    assert stored.filter(option_type="").count() == 7_000
    assert stored.filter(quantity__lt=0, option_type="").count() == 7_000 // 3 + 1
    assert stored.filter(underlying_symbol="AAPL", multiplier=100).count() == 1_500
    columns = stored.get(symbol="MSFT300621C00101000")
    assert (columns.option_type, columns.strike, columns.expiration, columns.position_type) == (
        "C", Decimal("101"), date(2030, 6, 21), "LC",
    )  # fmt: skip
    assert stored.get(symbol="TK07", entry_date=date(2015, 1, 2)).quantity == Decimal("17.125")
    assert set(Tag.objects.filter(owner=user).values_list("name", flat=True)) == {
        "tech", "value", "Growth", "options",
    }  # fmt: skip
    assert PositionTag.objects.filter(position__portfolio=book).count() == sum(
        len([t for t in r.get("tags", "").split(";") if t]) for r in records
    )
    pairs = Strategy.objects.get(portfolio=book, is_detected=False)
    assert (pairs.kind, pairs.name) == ("pairs", "TK00/TK01")
    assert sorted(pairs.positions.values_list("symbol", "quantity")) == [
        ("TK00", Decimal("-9.875")), ("TK01", Decimal(11)),
    ]  # fmt: skip


def test_upload_over_row_limit_is_413_and_writes_nothing(auth_client, portfolio):
    before = snapshot(portfolio)
    records = [
        {"symbol": f"R{i % 50}", "quantity": "1", "entry_price": "1",
         "entry_date": (date(2000, 1, 3) + timedelta(days=i // 50)).isoformat()}
        for i in range(10_001)
    ]  # fmt: skip
    raw = csv_file(records)
    assert len(raw) < 5 * 1024 * 1024
    assert_envelope(post_file(auth_client, portfolio, raw), 413, "payload_too_large")
    assert snapshot(portfolio) == before


@override_settings(SIGMASIGHT_UPLOAD_MAX_ROWS=3)
def test_upload_over_configured_row_limit_is_413_even_after_bad_rows(auth_client, portfolio):
    before = snapshot(portfolio)
    raw = lines(row(quantity="0"), *(row(symbol=f"N{i}") for i in range(3)))
    assert_envelope(post_file(auth_client, portfolio, raw), 413, "payload_too_large")
    assert snapshot(portfolio) == before


@pytest.mark.parametrize("size", [5 * 1024 * 1024 + 1, 7 * 1024 * 1024], ids=["5MB+1", "7MB"])
def test_upload_over_five_megabytes_is_413_and_writes_nothing(auth_client, portfolio, size: int):
    before = snapshot(portfolio)
    head = after_good()
    raw = head + b"\n" * (size - len(head))  # blank lines: a valid file but for its size
    assert len(raw) == size
    error = assert_envelope(post_file(auth_client, portfolio, raw), 413, "payload_too_large")
    assert "5,242,880" in error["message"]
    assert snapshot(portfolio) == before


@override_settings(SIGMASIGHT_UPLOAD_MAX_BYTES=2_048)
def test_upload_size_limit_is_inclusive(auth_client, portfolio):
    head = after_good()
    exactly = head + b"\n" * (2_048 - len(head))
    before = snapshot(portfolio)
    assert_envelope(post_file(auth_client, portfolio, exactly + b"\n"), 413, "payload_too_large")
    assert snapshot(portfolio) == before
    response = post_file(auth_client, portfolio, exactly)
    assert response.status_code == 200, response.content
    assert response.json() == {"created": 2, "updated": 0, "total": 2}


def test_upload_without_file_is_400(auth_client, portfolio):
    before = snapshot(portfolio)
    response = auth_client.post(upload_url(portfolio), {"mode": "append"}, format="multipart")
    error = assert_envelope(response, 400, "validation_error")
    assert list(error["fields"]) == ["file"]
    assert snapshot(portfolio) == before


def test_upload_unknown_mode_is_400(auth_client, portfolio):
    before = snapshot(portfolio)
    error = assert_envelope(post_file(auth_client, portfolio, after_good(), "sideways"), 400)
    assert list(error["fields"]) == ["mode"]
    assert snapshot(portfolio) == before


def test_upload_json_body_is_415(auth_client, portfolio):
    before = snapshot(portfolio)
    response = auth_client.post(
        upload_url(portfolio), {"file": after_good().decode(), "mode": "append"}, format="json"
    )
    assert_envelope(response, 415, "unsupported_media_type")
    assert snapshot(portfolio) == before


def test_upload_append_adds_and_updates_lots(auth_client, portfolio):
    held = portfolio.positions.get(symbol="IBM")
    raw = lines(
        row(symbol="ibm", quantity="12", entry_price="181", entry_date="2024-01-02",
            tags="core;dividend", notes="topped up"),
        row(symbol="NVDA"),
    )  # fmt: skip
    response = post_file(auth_client, portfolio, raw)
    assert response.status_code == 200, response.content
    assert response.json() == {"created": 1, "updated": 1, "total": 2}
    held.refresh_from_db()
    assert (held.quantity, held.entry_price, held.notes) == (Decimal(12), Decimal(181), "topped up")
    assert sorted(held.tags.values_list("name", flat=True)) == ["core", "dividend"]
    assert sorted(portfolio.positions.values_list("symbol", flat=True)) == ["IBM", "NVDA", "ORCL"]
    assert Strategy.objects.get(portfolio=portfolio, is_detected=False).positions.count() == 2


def test_upload_append_without_tags_column_keeps_tags(auth_client, portfolio):
    raw = lines("IBM,9,180,2024-01-02", header="symbol,quantity,entry_price,entry_date")
    response = post_file(auth_client, portfolio, raw)
    assert response.json() == {"created": 0, "updated": 1, "total": 1}
    held = portfolio.positions.get(symbol="IBM")
    assert held.quantity == 9
    assert list(held.tags.values_list("name", flat=True)) == ["core"]


def test_upload_replace_swaps_positions(auth_client, portfolio):
    old_ids = set(portfolio.positions.values_list("id", flat=True))
    response = post_file(auth_client, portfolio, after_good(), "replace")
    assert response.status_code == 200, response.content
    assert response.json() == {"created": 2, "updated": 0, "total": 2}
    assert sorted(portfolio.positions.values_list("symbol", "quantity")) == [
        ("AAPL", Decimal(10)), ("MSFT", Decimal(-5)),
    ]  # fmt: skip
    assert not set(portfolio.positions.values_list("id", flat=True)) & old_ids
    assert not portfolio.strategies.filter(is_detected=False).exists()
    assert Tag.objects.filter(owner=portfolio.owner, name="core").exists()


def test_upload_replace_with_bad_file_keeps_old_positions(auth_client, portfolio):
    before = snapshot(portfolio)
    raw = after_good(row(quantity="NaN"))
    error = assert_envelope(post_file(auth_client, portfolio, raw, "replace"), 400)
    assert problem_cells(error) == [(4, "quantity")]
    assert snapshot(portfolio) == before


def test_upload_replace_failing_in_the_database_phase_keeps_old_positions(auth_client, portfolio):
    """The tag limit is checked after the old positions would go: the swap must roll back."""
    before = snapshot(portfolio)
    raw = lines(*(row(symbol=f"S{i}", tags=many_tags(25, 25 * i)) for i in range(5)))
    error = assert_envelope(post_file(auth_client, portfolio, raw, "replace"), 400)
    assert problem_cells(error) == [(5, "tags")]
    assert snapshot(portfolio) == before


NEUTRALIZED_NOTES = ["=1+1", "+44 20 7946 0000", "-5% stop", "@SUM(A1:A2)"]


def round_trip_book(owner) -> Portfolio:
    book = PortfolioFactory(owner=owner)
    records = [
        {"symbol": "AAPL", "quantity": "100", "entry_price": "150.25", "entry_date": "2024-01-02",
         "tags": "tech;=risky", "notes": NEUTRALIZED_NOTES[0]},
        {"symbol": "TSLA", "quantity": "-25.5", "entry_price": "240", "entry_date": "2024-02-05",
         "tags": "Short Book", "notes": NEUTRALIZED_NOTES[1]},
        {"symbol": "BRK.B", "quantity": "0.123456", "entry_price": "0.000001",
         "entry_date": "2023-12-29", "notes": NEUTRALIZED_NOTES[2]},
        {"symbol": "AAPL  250117C00200000", "quantity": "-3", "entry_price": "4.1",
         "entry_date": "2024-01-02", "tags": "tech", "notes": NEUTRALIZED_NOTES[3]},
        {"symbol": "SPY", "underlying": "SPY", "option_type": "put", "strike": "412.5",
         "expiration": "2025-03-21", "quantity": "2", "entry_price": "7.35",
         "entry_date": "2024-03-01", "notes": 'multi-line\nwith "quotes", commas'},
        {"symbol": "KO", "quantity": "40", "entry_price": "60", "entry_date": "2024-01-10",
         "strategy": "pairs:KO/PEP"},
        {"symbol": "PEP", "quantity": "-15", "entry_price": "170", "entry_date": "2024-01-10",
         "strategy": "pairs:KO/PEP", "tags": "staples"},
    ]  # fmt: skip
    services.positions_import_csv(portfolio=book, raw=csv_file(records))
    return book


def book_contents(portfolio: Portfolio) -> list[tuple]:
    positions = portfolio.positions.prefetch_related("tags", "strategies").order_by(
        "symbol", "entry_date"
    )
    return [
        (
            p.symbol, p.underlying_symbol, p.quantity, p.entry_price, p.entry_date, p.option_type,
            p.strike, p.expiration, p.multiplier, p.position_type, p.notes,
            sorted(t.name for t in p.tags.all()),
            sorted((s.name, s.kind) for s in p.strategies.all() if not s.is_detected),
        )
        for p in positions
    ]  # fmt: skip


def test_export_then_import_round_trips(auth_client, user):
    source = round_trip_book(user)
    response = auth_client.get(export_url(source), {"format": "csv"})
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/csv")
    assert f"portfolio-{source.pk}-positions.csv" in response["Content-Disposition"]
    exported = response.content

    table = list(csv.DictReader(io.StringIO(exported.decode(), newline="")))
    assert list(table[0]) == COLUMNS
    assert sorted(r["notes"] for r in table if r["notes"][:1] == "'") == sorted(
        "'" + n for n in NEUTRALIZED_NOTES
    )
    assert "'=risky;tech" in [r["tags"] for r in table]
    for cell in (r[c] for r in table for c in ("tags", "strategy", "notes")):
        assert not cell.startswith(("=", "+", "-", "@")), cell

    target = PortfolioFactory(owner=user)
    response = post_file(auth_client, target, exported)
    assert response.status_code == 200, response.content
    assert response.json() == {"created": 7, "updated": 0, "total": 7}
    assert book_contents(target) == book_contents(source)
    contents = book_contents(target)
    assert [c[0] for c in contents] == [
        "AAPL", "AAPL250117C00200000", "BRK.B", "KO", "PEP", "SPY250321P00412500", "TSLA",
    ]  # fmt: skip
    assert contents[0][-2] == ["=risky", "tech"]
    assert contents[3][-1] == [("KO/PEP", "pairs")]
    assert contents[5][5:9] == ("P", Decimal("412.5"), date(2025, 3, 21), 100)

    again = auth_client.get(export_url(target), {"format": "csv"}).content.decode()
    assert sorted(again.splitlines()) == sorted(exported.decode().splitlines())


def test_export_of_an_empty_portfolio_is_the_header(auth_client, user):
    response = auth_client.get(export_url(PortfolioFactory(owner=user)))
    assert response.status_code == 200
    assert response.content.decode() == HEADER + "\n"


def test_export_round_trips_notes_that_start_with_an_apostrophe(auth_client, user):
    source = PortfolioFactory(owner=user)
    stock(source, "AAPL", "1", notes="'=not a formula")
    exported = auth_client.get(export_url(source)).content
    target = PortfolioFactory(owner=user)
    assert post_file(auth_client, target, exported).status_code == 200
    assert target.positions.get().notes == "'=not a formula"


def test_export_format_xml_is_400(auth_client, portfolio):
    error = assert_envelope(auth_client.get(export_url(portfolio), {"format": "xml"}), 400)
    assert list(error["fields"]) == ["format"]


def test_other_user_cannot_upload_or_export(other_client, portfolio):
    before = snapshot(portfolio)
    for mode in ("append", "replace"):
        assert_envelope(post_file(other_client, portfolio, after_good(), mode), 404, "not_found")
    assert_envelope(other_client.get(export_url(portfolio), {"format": "csv"}), 404, "not_found")
    assert snapshot(portfolio) == before


def test_other_user_gets_404_even_with_a_bad_file(other_client, portfolio):
    assert_envelope(post_file(other_client, portfolio, b"junk"), 404, "not_found")


def test_upload_needs_authentication(api_client, portfolio):
    before = snapshot(portfolio)
    assert_envelope(post_file(api_client, portfolio, after_good()), 401)
    assert snapshot(portfolio) == before


@pytest.mark.parametrize("text", ["20240102", "2024-W01-2"])
def test_upload_refuses_dates_not_in_yyyy_mm_dd_form(auth_client, portfolio, text: str):
    before = snapshot(portfolio)
    error = assert_envelope(
        post_file(auth_client, portfolio, after_good(row(entry_date=text))), 400
    )
    assert problem_cells(error) == [(4, "entry_date")]
    assert snapshot(portfolio) == before


def test_upload_refuses_expirations_an_occ_symbol_cannot_hold(auth_client, portfolio):
    before = snapshot(portfolio)
    raw = after_good(row(symbol="AAPL", option_type="C", strike="200", expiration="2100-01-15"))
    error = assert_envelope(post_file(auth_client, portfolio, raw), 400)
    assert [r for r, _ in problem_cells(error)] == [4]
    assert snapshot(portfolio) == before


def test_upload_refuses_nul_characters(auth_client, portfolio):
    before = snapshot(portfolio)
    raw = after_good(row(notes="before\x00after"))
    error = assert_envelope(post_file(auth_client, portfolio, raw), 400)
    assert problem_cells(error) == [(4, "notes")]
    assert snapshot(portfolio) == before


def test_upload_wide_header_is_refused_before_looking_at_each_column(auth_client, portfolio):
    # 20,000 columns: refused as a whole (the format has 11), with no per-column work.
    raw = lines("x", header=",".join(f"c{i}" for i in range(20_000)))
    error = assert_envelope(post_file(auth_client, portfolio, raw), 400)
    assert error["fields"]["rows"] == [
        {"row": 1, "column": "", "message": "The header has 20,000 columns; the format has 11."}
    ]
