"""The position CSV through the API: `POST portfolios/{id}/upload/` (append and replace, ten
thousand rows) and `GET .../export/`, which round-trips through the upload. Refused files:
test_upload_refused.py.
"""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta
from decimal import Decimal

import pytest

from portfolios import services
from portfolios.models import Portfolio, Position, PositionTag, Strategy, Tag
from portfolios.position_csv import COLUMNS
from portfolios.tests.factories import PortfolioFactory, stock
from portfolios.tests.helpers import (
    export_url,
    post_file,
    snapshot,
)
from portfolios.tests.position_files import (
    HEADER,
    after_good,
    csv_file,
    lines,
    row,
)
from sigmasight.tests.helpers import assert_envelope

pytestmark = pytest.mark.django_db


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
        "C",
        Decimal("101"),
        date(2030, 6, 21),
        "LC",
    )
    assert stored.get(symbol="TK07", entry_date=date(2015, 1, 2)).quantity == Decimal("17.125")
    assert set(Tag.objects.filter(owner=user).values_list("name", flat=True)) == {
        "tech",
        "value",
        "Growth",
        "options",
    }
    assert PositionTag.objects.filter(position__portfolio=book).count() == sum(
        len([t for t in r.get("tags", "").split(";") if t]) for r in records
    )
    pairs = Strategy.objects.get(portfolio=book, is_detected=False)
    assert (pairs.kind, pairs.name) == ("pairs", "TK00/TK01")
    assert sorted(pairs.positions.values_list("symbol", "quantity")) == [
        ("TK00", Decimal("-9.875")),
        ("TK01", Decimal(11)),
    ]


def test_upload_append_adds_and_updates_lots(auth_client, portfolio):
    held = portfolio.positions.get(symbol="IBM")
    raw = lines(
        row(
            symbol="ibm",
            quantity="12",
            entry_price="181",
            entry_date="2024-01-02",
            tags="core;dividend",
            notes="topped up",
        ),
        row(symbol="NVDA"),
    )
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
        ("AAPL", Decimal(10)),
        ("MSFT", Decimal(-5)),
    ]
    assert not set(portfolio.positions.values_list("id", flat=True)) & old_ids
    assert not portfolio.strategies.filter(is_detected=False).exists()
    assert Tag.objects.filter(owner=portfolio.owner, name="core").exists()


NEUTRALIZED_NOTES = ["=1+1", "+44 20 7946 0000", "-5% stop", "@SUM(A1:A2)"]


def round_trip_book(owner) -> Portfolio:
    book = PortfolioFactory(owner=owner)
    records = [
        {
            "symbol": "AAPL",
            "quantity": "100",
            "entry_price": "150.25",
            "entry_date": "2024-01-02",
            "tags": "tech;=risky",
            "notes": NEUTRALIZED_NOTES[0],
        },
        {
            "symbol": "TSLA",
            "quantity": "-25.5",
            "entry_price": "240",
            "entry_date": "2024-02-05",
            "tags": "Short Book",
            "notes": NEUTRALIZED_NOTES[1],
        },
        {
            "symbol": "BRK.B",
            "quantity": "0.123456",
            "entry_price": "0.000001",
            "entry_date": "2023-12-29",
            "notes": NEUTRALIZED_NOTES[2],
        },
        {
            "symbol": "AAPL  250117C00200000",
            "quantity": "-3",
            "entry_price": "4.1",
            "entry_date": "2024-01-02",
            "tags": "tech",
            "notes": NEUTRALIZED_NOTES[3],
        },
        {
            "symbol": "SPY",
            "underlying": "SPY",
            "option_type": "put",
            "strike": "412.5",
            "expiration": "2025-03-21",
            "quantity": "2",
            "entry_price": "7.35",
            "entry_date": "2024-03-01",
            "notes": 'multi-line\nwith "quotes", commas',
        },
        {
            "symbol": "KO",
            "quantity": "40",
            "entry_price": "60",
            "entry_date": "2024-01-10",
            "strategy": "pairs:KO/PEP",
        },
        {
            "symbol": "PEP",
            "quantity": "-15",
            "entry_price": "170",
            "entry_date": "2024-01-10",
            "strategy": "pairs:KO/PEP",
            "tags": "staples",
        },
    ]
    services.positions_import_csv(portfolio=book, raw=csv_file(records))
    return book


def book_contents(portfolio: Portfolio) -> list[tuple]:
    positions = portfolio.positions.prefetch_related("tags", "strategies").order_by(
        "symbol", "entry_date"
    )
    return [
        (
            p.symbol,
            p.underlying_symbol,
            p.quantity,
            p.entry_price,
            p.entry_date,
            p.option_type,
            p.strike,
            p.expiration,
            p.multiplier,
            p.position_type,
            p.notes,
            sorted(t.name for t in p.tags.all()),
            sorted((s.name, s.kind) for s in p.strategies.all() if not s.is_detected),
        )
        for p in positions
    ]


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
        "AAPL",
        "AAPL250117C00200000",
        "BRK.B",
        "KO",
        "PEP",
        "SPY250321P00412500",
        "TSLA",
    ]
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
