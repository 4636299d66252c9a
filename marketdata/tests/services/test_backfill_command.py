"""`manage.py backfill_prices`: a date range or a count of sessions, arguments refused before
anything is written, rows kept when a later group fails, resume, and a non-zero exit naming the
symbols still missing."""

from __future__ import annotations

import io
from datetime import date

import pytest
from django.core.management import CommandError, call_command

from marketdata import calendar
from marketdata.models import BackfillProgress, DailyPrice, Security
from marketdata.providers import registry
from marketdata.providers.polygon import PolygonProvider
from marketdata.tests.helpers import CountingSynthetic, FailsOnSecondCall
from marketdata.tests.replay import HANG, ReplayServer, Reply, recording
from marketdata.tests.sp500 import sp500_csv

pytestmark = pytest.mark.django_db

START, END = date(2026, 11, 2), date(2026, 11, 20)


def backfill(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("backfill_prices", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.fixture
def synthetic(monkeypatch):
    provider = CountingSynthetic()
    monkeypatch.setattr(registry, "chain", lambda: [provider])
    return provider


def test_backfill_prices_fills_a_start_end_range_and_resumes(synthetic):
    out, _ = backfill("--symbols", "AAPL", "MSFT", "--start", str(START), "--end", str(END))
    sessions = calendar.trading_days(START, END)
    assert f"from {START} to {END}" in out
    assert f"{2 * len(sessions)} rows written (synthetic: {2 * len(sessions)})" in out
    assert set(DailyPrice.objects.values_list("date", flat=True)) == set(sessions)
    progress = BackfillProgress.objects.values_list("symbol", "start", "end", "status")
    assert sorted(progress) == [("AAPL", START, END, "done"), ("MSFT", START, END, "done")]
    synthetic.calls.clear()
    # The same range given by non-session bounds (two Sundays) is the same backfill: resumed.
    out, _ = backfill("--symbols", "AAPL", "MSFT", "--start", "2026-11-01", "--end", "2026-11-22")
    assert synthetic.calls == [] and "0 rows written" in out


def test_backfill_prices_days_count_back_from_end(synthetic):
    backfill("--symbols", "KO", "--days", "5", "--end", str(END))
    dates = sorted(DailyPrice.objects.values_list("date", flat=True))
    assert dates == calendar.sessions_back(END, 5)
    assert BackfillProgress.objects.get().start == date(2026, 11, 16)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--start", "2026-11-02", "--days", "5"], "--start and --days"),
        (["--start", "2026-11-20", "--end", "2026-11-02"], "--start 2026-11-20 is after --end"),
        (["--start", "1989-12-29"], "outside the market calendar (1990-2099)"),
        (["--end", "2100-01-04"], "outside the market calendar (1990-2099)"),
        (["--start", "2026-11-31"], "not a date in YYYY-MM-DD form"),
        (["--days", "0"], "--days must be at least 1"),
        (["--start", "2026-11-21", "--end", "2026-11-22"], "no NYSE session between"),
        (["--chunk", "0"], "--chunk must be at least 1"),
    ],
)
def test_backfill_prices_bad_arguments_write_nothing(synthetic, args, message):
    with pytest.raises(CommandError, match=message.replace("(", r"\(").replace(")", r"\)")):
        backfill("--symbols", "AAPL", *args)
    assert synthetic.calls == []
    assert not Security.objects.exists() and not DailyPrice.objects.exists()
    assert not BackfillProgress.objects.exists()


def test_backfill_prices_exits_non_zero_naming_the_missing_symbols(tmp_path, settings):
    """The csv source: nothing is fetched. SPX (imported, two sessions short) and AAPL (never
    imported) are named with their first missing session; the written rows are reported first."""
    settings.SIGMASIGHT_MARKET_DATA_SOURCE = "csv"
    first, last = date(2018, 3, 1), date(2018, 3, 29)
    hole = [date(2018, 3, 13), date(2018, 3, 14)]
    call_command(
        "import_prices",
        str(sp500_csv(tmp_path / "spx.csv", first, last, drop=hole)),
        stdout=io.StringIO(),
    )
    out = io.StringIO()
    with pytest.raises(CommandError) as raised:
        call_command(
            "backfill_prices",
            "--symbols",
            "SPX",
            "AAPL",
            "--start",
            str(first),
            "--end",
            str(last),
            stdout=out,
            stderr=io.StringIO(),
        )
    sessions = len(calendar.trading_days(first, last))
    message = str(raised.value)
    assert "2 symbol(s) still lack sessions" in message
    assert f"AAPL ({sessions} from 2018-03-01)" in message and "SPX (2 from 2018-03-13)" in message
    assert "0 rows written (none), 0 provider calls" in out.getvalue()
    failed = dict(BackfillProgress.objects.values_list("symbol", "status"))
    assert failed == {"AAPL": "failed", "SPX": "failed"}


def test_backfill_prices_keeps_rows_when_a_later_group_crashes(monkeypatch):
    """AAPL (nothing cached) and MSFT (partly cached) are two groups of one chunk; the provider
    crashes on the second. AAPL's rows stay; a second run asks only for what MSFT lacks."""
    monkeypatch.setattr(registry, "chain", lambda: [CountingSynthetic()])
    call_command(
        "backfill_prices",
        "--symbols",
        "MSFT",
        "--start",
        str(START),
        "--end",
        "2026-11-10",
        stdout=io.StringIO(),
    )
    monkeypatch.setattr(registry, "chain", lambda: [FailsOnSecondCall()])
    with pytest.raises(RuntimeError, match="provider bug"):
        backfill("--symbols", "AAPL", "MSFT", "--start", str(START), "--end", str(END))
    sessions = calendar.trading_days(START, END)
    assert DailyPrice.objects.filter(security__symbol="AAPL").count() == len(sessions)
    assert not BackfillProgress.objects.filter(end=END).exists()
    provider = CountingSynthetic()
    monkeypatch.setattr(registry, "chain", lambda: [provider])
    out, _ = backfill("--symbols", "AAPL", "MSFT", "--start", str(START), "--end", str(END))
    assert provider.calls == [(("MSFT",), date(2026, 11, 11), END)]
    assert f"{len(calendar.trading_days(date(2026, 11, 11), END))} rows written" in out
    assert DailyPrice.objects.count() == 2 * len(sessions)


def test_backfill_prices_keeps_rows_when_a_provider_hangs(tmp_path, monkeypatch):
    """The real Polygon client: MSFT answers, XOM (one session cached, so its own group) hangs
    past the read timeout. MSFT's rows are stored and the command fails naming XOM."""
    path = tmp_path / "xom.csv"
    path.write_text(
        "symbol,date,open,high,low,close,volume\nXOM,2020-01-02,70.2,71.0,70.0,70.9,1\n"
    )
    call_command("import_prices", str(path), stdout=io.StringIO())
    with ReplayServer() as server:
        server.route("/v2/aggs/ticker/MSFT/*", Reply(body=recording("polygon", "aggs_MSFT.json")))
        server.route("/v2/aggs/ticker/XOM/*", HANG)
        provider = PolygonProvider(
            "test-key",
            tier="advanced",
            base_url=server.url,
            connect_timeout=1,
            read_timeout=0.3,
            max_retries=0,
        )
        monkeypatch.setattr(registry, "chain", lambda: [provider])
        out, err = io.StringIO(), io.StringIO()
        with pytest.raises(CommandError, match=r"XOM \(1 from 2020-01-03\)") as raised:
            call_command(
                "backfill_prices",
                "--symbols",
                "MSFT",
                "XOM",
                "--start",
                "2020-01-02",
                "--end",
                "2020-01-03",
                stdout=out,
                stderr=err,
            )
    assert "MSFT" not in str(raised.value)
    assert "2 rows written (polygon: 2)" in out.getvalue()
    assert "XOM: polygon:" in err.getvalue()
    assert DailyPrice.objects.filter(security__symbol="MSFT", source="polygon").count() == 2
    status = dict(BackfillProgress.objects.values_list("symbol", "status"))
    assert status == {"MSFT": "done", "XOM": "failed"}
