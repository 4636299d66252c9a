"""`manage.py import_positions FILE --portfolio ID [--mode append|replace] [--dry-run]`."""

from __future__ import annotations

import io
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from marketdata.models import Security
from portfolios.models import Portfolio, Position, PositionTag, Strategy, Tag
from portfolios.position_csv import COLUMNS
from portfolios.tests.factories import PortfolioFactory, stock

pytestmark = pytest.mark.django_db

HEADER = ",".join(COLUMNS)
GOOD = (
    "AAPL,10,150.5,2024-01-02,,,,,tech;core,,first lot\n"
    "TSLA,-4,240,2024-02-05,,,,,,pairs:TSLA/RIVN,\n"
    "RIVN,30,12,2024-02-05,,,,,,pairs:TSLA/RIVN,\n"
    "AAPL  250117C00200000,-1,4.1,2024-01-02,,,,,tech,,\n"
    "SPY,2,7.35,2024-03-01,SPY,P,412.5,2025-03-21,,,'=hedge\n"
)


@pytest.fixture
def portfolio(user) -> Portfolio:
    book = PortfolioFactory(owner=user)
    stock(book, "IBM", "7", entry_price="180.25")
    return book


def write(tmp_path: Path, body: str | bytes, name: str = "positions.csv") -> Path:
    path = tmp_path / name
    raw = body.encode() if isinstance(body, str) else body
    path.write_bytes(raw)
    return path


def run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("import_positions", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def counts() -> dict[str, object]:
    return {
        "positions": list(Position.objects.order_by("id").values()),
        "tags": Tag.objects.count(),
        "position_tags": PositionTag.objects.count(),
        "strategies": Strategy.objects.count(),
        "securities": Security.objects.count(),
    }


def test_import_positions_appends_a_good_file(tmp_path, portfolio):
    path = write(tmp_path, f"{HEADER}\n{GOOD}")
    out, err = run(str(path), "--portfolio", str(portfolio.pk))
    assert err == ""
    assert "imported 5 positions" in out
    assert "5 created, 0 updated" in out
    assert sorted(portfolio.positions.values_list("symbol", "quantity")) == [
        ("AAPL", Decimal(10)),
        ("AAPL250117C00200000", Decimal(-1)),
        ("IBM", Decimal(7)),
        ("RIVN", Decimal(30)),
        ("SPY250321P00412500", Decimal(2)),
        ("TSLA", Decimal(-4)),
    ]
    assert portfolio.positions.get(symbol="SPY250321P00412500").notes == "=hedge"
    assert sorted(portfolio.positions.get(symbol="AAPL").tags.values_list("name", flat=True)) == [
        "core",
        "tech",
    ]
    pairs = portfolio.strategies.get(is_detected=False)
    assert (pairs.kind, pairs.name, pairs.positions.count()) == ("pairs", "TSLA/RIVN", 2)


def test_import_positions_append_updates_the_same_lot(tmp_path, portfolio):
    path = write(tmp_path, f"{HEADER}\nIBM,9,181,2024-01-02,,,,,,,\nMSFT,1,300,2024-01-02,,,,,,,\n")
    out, _ = run(str(path), "--portfolio", str(portfolio.pk))
    assert "1 created, 1 updated" in out
    assert portfolio.positions.get(symbol="IBM").quantity == 9


def test_import_positions_replace_swaps_the_book(tmp_path, portfolio):
    path = write(tmp_path, f"{HEADER}\n{GOOD}")
    out, _ = run(str(path), "--portfolio", str(portfolio.pk), "--mode", "replace")
    assert "(replace): 5 created, 0 updated" in out
    assert not portfolio.positions.filter(symbol="IBM").exists()
    assert portfolio.positions.count() == 5


def test_import_positions_bad_file_prints_numbered_problems_and_writes_nothing(tmp_path, portfolio):
    body = (
        f"{HEADER}\n{GOOD}"
        "NVDA,0,450,2024-03-01,,,,,,,\n"
        "AMD,3,-1,2024-13-01,,,,,,,\n"
        "AAPL250230C00200000,1,2,2024-01-02,,,,,,,\n"
        "NFLX,1,2\n"
    )
    path = write(tmp_path, body)
    before = counts()
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError, match="5 problem"):
        call_command(
            "import_positions", str(path), "--portfolio", str(portfolio.pk), stdout=out, stderr=err
        )
    problems = err.getvalue().splitlines()
    assert [p.split(":")[0] for p in problems] == [
        "row 7 [quantity]",
        "row 8 [entry_price]",
        "row 8 [entry_date]",
        "row 9 [symbol]",
        "row 10",
    ]
    assert "2024-13-01" in problems[2]
    assert "Expected 11 fields, found 3." in problems[4]
    assert out.getvalue() == ""
    assert counts() == before


def test_import_positions_file_level_problem_is_row_one(tmp_path, portfolio):
    path = write(tmp_path, b"\xef\xbb\xbf" + f"{HEADER}\n{GOOD}".encode())
    before = counts()
    err = io.StringIO()
    with pytest.raises(CommandError):
        call_command("import_positions", str(path), "--portfolio", str(portfolio.pk), stderr=err)
    assert err.getvalue().startswith("row 1: The file starts with a byte-order mark")
    assert counts() == before


def test_import_positions_dry_run_writes_nothing(tmp_path, portfolio):
    path = write(tmp_path, f"{HEADER}\nIBM,9,181,2024-01-02,,,,,,,\n{GOOD}")
    before = counts()
    out, err = run(str(path), "--portfolio", str(portfolio.pk), "--dry-run")
    assert err == ""
    assert "would import 6 positions" in out
    assert "5 created, 1 updated" in out
    assert counts() == before


def test_import_positions_dry_run_reports_a_bad_file(tmp_path, portfolio):
    path = write(tmp_path, f"{HEADER}\n{GOOD}NVDA,NaN,450,2024-03-01,,,,,,,\n")
    before = counts()
    err = io.StringIO()
    with pytest.raises(CommandError):
        call_command(
            "import_positions", str(path), "--portfolio", str(portfolio.pk), "--dry-run", stderr=err
        )
    assert err.getvalue().startswith("row 7 [quantity]: 'NaN' is not a finite number.")
    assert counts() == before


def test_import_positions_unknown_portfolio_is_an_error(tmp_path, portfolio):
    path = write(tmp_path, f"{HEADER}\n{GOOD}")
    before = counts()
    with pytest.raises(CommandError, match="no portfolio with id 999999"):
        run(str(path), "--portfolio", "999999")
    assert counts() == before


def test_import_positions_missing_file_is_an_error(tmp_path, portfolio):
    with pytest.raises(CommandError, match="is not a file"):
        run(str(tmp_path / "absent.csv"), "--portfolio", str(portfolio.pk))


@override_settings(SIGMASIGHT_UPLOAD_MAX_ROWS=2)
def test_import_positions_over_the_row_limit_is_an_error(tmp_path, portfolio):
    path = write(tmp_path, f"{HEADER}\n{GOOD}")
    before = counts()
    with pytest.raises(CommandError, match="more than 2 positions"):
        run(str(path), "--portfolio", str(portfolio.pk))
    assert counts() == before


def test_import_positions_unknown_mode_is_refused_by_the_parser(tmp_path, portfolio):
    path = write(tmp_path, f"{HEADER}\n{GOOD}")
    with pytest.raises(CommandError, match="invalid choice"):
        run(str(path), "--portfolio", str(portfolio.pk), "--mode", "sideways")
