from __future__ import annotations

import io
from datetime import date

import pandas_market_calendars as mcal
import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from marketdata import calendar
from marketdata.models import DailyPrice, Security
from marketdata.price_csv import FileGaps
from marketdata.tests.sp500 import sp500_csv, sp500_frame

pytestmark = pytest.mark.django_db

HEADER = "symbol,date,open,high,low,close,volume,adjusted_close\n"
GOOD = (
    "AAPL,2024-11-26,230.1,232.0,229.5,231.25,41000000,231.25\n"
    "AAPL,2024-11-27,231.3,233.5,230.9,233.0,38000000,233.0\n"
    "MSFT,2024-11-27,420.0,425.0,419.0,424.5,20000000,\n"
    "US10Y,2024-11-27,,,,0.0425,,\n"
)


def write(tmp_path, text: str | bytes, name: str = "prices.csv"):
    path = tmp_path / name
    (path.write_bytes if isinstance(text, bytes) else path.write_text)(text)
    return path


def run_import(path) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("import_prices", str(path), stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_import_prices_good_file(tmp_path):
    out, _ = run_import(write(tmp_path, HEADER + GOOD))
    assert "imported 4 price rows" in out
    assert DailyPrice.objects.count() == 4
    assert set(DailyPrice.objects.values_list("source", flat=True)) == {"csv"}
    msft = DailyPrice.objects.get(security__symbol="MSFT")
    assert msft.adjusted_close == msft.close  # defaults to close when the column is empty
    assert Security.objects.get(symbol="US10Y").asset_type == "rate"


def test_import_prices_dry_run_writes_nothing(tmp_path):
    out = io.StringIO()
    call_command("import_prices", str(write(tmp_path, HEADER + GOOD)), "--dry-run", stdout=out)
    assert "would import 4" in out.getvalue()
    assert DailyPrice.objects.count() == 0


@pytest.mark.parametrize(
    ("bad_row", "column", "message"),
    [
        ("AAPL,2024-13-01,1,2,1,1.5,100,", "date", "not a date"),
        ("AAPL,2024-11-28,1,2,1,1.5,100,", "date", "not an NYSE session"),
        ("AAPL,2099-01-02,1,2,1,1.5,100,", "date", "in the future"),
        ("AAPL,2024-11-25,1,2,1,-1.5,100,", "close", "must be positive"),
        ("AAPL,2024-11-25,1,2,1,NaN,100,", "close", "not a finite number"),
        ("AAPL,2024-11-25,1,2,1,abc,100,", "close", "not a finite number"),
        ("AAPL,2024-11-25,1,2,1,1.5,-5,", "volume", "cannot be negative"),
        ("AAPL,2024-11-25,1,0.5,1,1.5,100,", "high", "below open"),
        ("BAD TICKER,2024-11-25,1,2,1,1.5,100,", "symbol", "not a valid ticker"),
        ("AAPL,2024-11-27,1,2,1,1.5,100,", "date", "already appears in row 3"),
        ("US10Y,2024-11-25,,,,4.25,,", "close", "plausible yield"),
        ("AAPL,2024-11-25,1,2,1", "", "Expected 8 fields"),
    ],
)
def test_import_prices_bad_row_names_row_and_column_and_writes_nothing(
    tmp_path, bad_row, column, message
):
    path = write(tmp_path, HEADER + GOOD + bad_row + "\n")
    with pytest.raises(CommandError):
        run_import(path)
    err = io.StringIO()
    with pytest.raises(CommandError):
        call_command("import_prices", str(path), stdout=io.StringIO(), stderr=err)
    expected_column = f" [{column}]" if column else ""
    assert f"row 6{expected_column}: " in err.getvalue()
    assert message in err.getvalue()
    assert DailyPrice.objects.count() == 0
    assert Security.objects.count() == 0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("symbol,date,open,high,low,close,volume,colour\n", "Unknown column 'colour'"),
        ("symbol,date,open,high,low,close\n", "Required column 'volume' is missing"),
        ("symbol,date,date,open,high,low,close,volume\n", "appears twice"),
        ("", "The file is empty"),
        (HEADER, "no price rows"),
        (b"symbol,date,open,high,low,close,volume\nA\xe9,2024-11-25,1,2,1,1,1\n", "not UTF-8"),
    ],
)
def test_import_prices_bad_file(tmp_path, content, message):
    err = io.StringIO()
    with pytest.raises(CommandError):
        call_command("import_prices", str(write(tmp_path, content)), stderr=err)
    assert message in err.getvalue()
    assert DailyPrice.objects.count() == 0


def test_import_prices_collects_every_error_in_one_pass(tmp_path):
    text = HEADER + "AAPL,2024-11-28,1,2,1,1,1,\nMSFT,2024-11-26,-1,2,1,1,1,\nKO,x,1,2,1,1,1,\n"
    err = io.StringIO()
    with pytest.raises(CommandError, match="3 problem"):
        call_command("import_prices", str(write(tmp_path, text)), stderr=err)
    assert [line.split(" ")[1] for line in err.getvalue().splitlines()] == ["2", "3", "4"]


def test_export_then_import_round_trips(tmp_path):
    run_import(write(tmp_path, HEADER + GOOD))
    before = sorted(
        DailyPrice.objects.values_list(
            "security__symbol", "date", "open", "high", "low", "close", "volume", "adjusted_close"
        )
    )
    exported = tmp_path / "out.csv"
    call_command("export_prices", "--output", str(exported), stdout=io.StringIO())
    assert exported.read_text().splitlines()[0] == HEADER.strip()
    DailyPrice.objects.all().delete()
    run_import(exported)
    after = sorted(
        DailyPrice.objects.values_list(
            "security__symbol", "date", "open", "high", "low", "close", "volume", "adjusted_close"
        )
    )
    assert after == before


def test_export_filters_by_symbol_and_dates(tmp_path):
    run_import(write(tmp_path, HEADER + GOOD))
    out = tmp_path / "aapl.csv"
    call_command(
        "export_prices",
        "--symbols",
        "AAPL",
        "--start",
        "2024-11-27",
        "--output",
        str(out),
        stdout=io.StringIO(),
    )
    lines = out.read_text().splitlines()
    assert len(lines) == 2
    assert lines[1].startswith(f"AAPL,{date(2024, 11, 27)},231.3,233.5,230.9,233,")


def test_import_prices_reports_the_sessions_the_file_lacks(tmp_path):
    """The real S&P 500 of 2018 with two sessions dropped: the import reports exactly the NYSE
    sessions the file lacks, checked against pandas-market-calendars directly."""
    first, last = date(2018, 1, 2), date(2018, 12, 31)
    hole = [date(2018, 3, 5), date(2018, 3, 6)]
    path = sp500_csv(tmp_path / "spx.csv", first, last, drop=hole)
    in_file = set(sp500_frame(first, last, drop=hole)["date"])
    nyse = mcal.get_calendar("NYSE").valid_days(start_date=first, end_date=last)
    expected = sorted({d.date() for d in nyse} - in_file)
    assert len(expected) == 2
    out, _ = run_import(path)
    line = f"SPX: 2 sessions missing between {first} and {last}: " + ", ".join(
        d.isoformat() for d in expected
    )
    assert line in out.splitlines()
    assert f"imported {len(in_file)} price rows" in out
    assert DailyPrice.objects.filter(security__symbol="SPX").count() == len(in_file)
    assert not DailyPrice.objects.filter(date__in=expected).exists()
    dry = io.StringIO()
    call_command("import_prices", str(path), "--dry-run", stdout=dry)
    assert line in dry.getvalue().splitlines()


def test_import_prices_without_a_gap_reports_none(tmp_path):
    out, _ = run_import(sp500_csv(tmp_path / "spx.csv", date(2018, 6, 1), date(2018, 6, 29)))
    assert "missing" not in out


def test_file_gaps_lists_ten_dates_then_how_many_more():
    sessions = calendar.trading_days(date(2018, 1, 2), date(2018, 1, 31))
    gaps = FileGaps(sessions[0], sessions[-1], sessions[1:13])
    text = gaps.describe("SPX")
    assert text.startswith(
        f"SPX: 12 sessions missing between 2018-01-02 and 2018-01-31: {sessions[1]}"
    )
    assert text.endswith(f"{sessions[10]} and 2 more")
    assert FileGaps(sessions[0], sessions[2], [sessions[1]]).describe("SPX") == (
        "SPX: 1 session missing between 2018-01-02 and 2018-01-04: 2018-01-03"
    )


def test_import_prices_replaces_a_synthetic_series_with_the_users_own(tmp_path):
    """A series has one source: importing real closes for a symbol the synthetic market filled
    removes its synthetic rows (outside the file's dates too), says so, and a dry run only says
    so."""
    from marketdata.providers.synthetic import SyntheticProvider
    from marketdata.services import prices_fetch_and_cache

    first, last = date(2018, 6, 1), date(2018, 6, 29)
    prices_fetch_and_cache(
        symbols=["SPX", "SPY"], start=date(2018, 5, 1), end=last, providers=[SyntheticProvider()]
    )
    synthetic = DailyPrice.objects.filter(security__symbol="SPX").count()
    path = sp500_csv(tmp_path / "spx.csv", first, last)
    dry = io.StringIO()
    call_command("import_prices", str(path), "--dry-run", stdout=dry)
    assert f"SPX: would replace {synthetic} synthetic closes" in dry.getvalue()
    assert (
        DailyPrice.objects.filter(security__symbol="SPX", source="synthetic").count() == synthetic
    )
    out, _ = run_import(path)
    assert f"SPX: replaced {synthetic} synthetic closes" in out
    spx = DailyPrice.objects.filter(security__symbol="SPX")
    assert set(spx.values_list("source", flat=True)) == {"csv"}
    assert spx.count() == len(sp500_frame(first, last)) and spx.earliest("date").date == first
    assert set(
        DailyPrice.objects.filter(security__symbol="SPY").values_list("source", flat=True)
    ) == {"synthetic"}


def test_export_neutralises_a_formula_like_symbol_and_keeps_numbers(tmp_path):
    """Whatever a symbol was stored as, the export never hands a spreadsheet a formula."""
    security = Security.objects.create(symbol="=1+1")
    DailyPrice.objects.create(
        security=security,
        date=date(2024, 11, 27),
        close="-0.5",
        volume=100,
        source="csv",
        fetched_at=timezone.now(),
    )
    out = tmp_path / "out.csv"
    call_command("export_prices", "--output", str(out), stdout=io.StringIO())
    assert out.read_text().splitlines()[1:] == ["'=1+1,2024-11-27,,,,-0.5,100,"]
