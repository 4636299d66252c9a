"""User text in reports, trade exports and sessions: the export rule and the control-character rule.

Reports (CSV, XLSX) of a portfolio and stress scenarios named = + - @ tab CR, and trade blotters
(CSV, FIX) of trades stored with such symbols, are read back: text starts with an apostrophe,
numbers are numbers, no workbook cell is a formula. Session names and trade notes refuse control
characters with a 400 naming the field; another user's session is a 404.
"""

from __future__ import annotations

import csv
import io
from datetime import date
from decimal import Decimal

import openpyxl
import pytest

from modeling.models import ModelingSession, ProFormaTrade, Report
from modeling.reports.services import report_run
from modeling.tests.helpers import parse_fix
from portfolios.tests.factories import PortfolioFactory
from sigmasight.tests.helpers import assert_envelope, client_for
from stress.models import StressScenario, StressTestResult

pytestmark = pytest.mark.django_db

SESSIONS = "/api/v1/modeling/sessions/"
EXPORT = "/api/v1/export/trades/"
CONTROL = "bad\x1a\x06name"
DANGEROUS = [
    '=HYPERLINK("http://x.io","a")',
    "@SUM(1+1)",
    "+cmd|' /C calc'!A0",
    "-2+3",
    "\t=1+1",
    "\r=1+1",
]
DAY = date(2026, 11, 20)


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


# Reports ----------------------------------------------------------------------------------------
@pytest.fixture
def stressed(user):
    """A portfolio named like a formula, with a stored stress result per dangerous scenario."""
    portfolio = PortfolioFactory(owner=user, name=DANGEROUS[0])
    for n, name in enumerate(DANGEROUS):
        scenario = StressScenario.objects.create(
            owner=user, name=name, category="market", shocks={"Market": -0.1}
        )
        StressTestResult.objects.create(
            portfolio=portfolio,
            scenario=scenario,
            date=DAY,
            direct_pnl=-1000.5 * (n + 1),
            correlated_pnl=0.0,
            total_pnl=-1000.5 * (n + 1),
            pnl_pct=-0.01 * (n + 1),
            breakdown={
                "by_factor": {"@Factor": -10.0, "Market": -5.0},
                "factor_moves": {"@Factor": -0.1, "Market": -0.05},
                "worst_positions": [{"position": 1, "symbol": "-AAPL", "pnl": -3.5}],
            },
        )
    return portfolio


def report_file(user, portfolio, fmt: str) -> bytes:
    queued = Report.objects.create(owner=user, portfolio=portfolio, kind="stress", format=fmt)
    report = report_run(report_id=queued.pk)
    assert report is not None
    assert report.status == "done", report.error
    with report.file.open("rb") as handle:
        return handle.read()


def test_report_csv_neutralises_names_and_keeps_numbers(user, stressed):
    content = report_file(user, stressed, "csv").decode()
    rows = list(csv.DictReader(io.StringIO(content, newline="")))
    meta = {r["field"]: r["value"] for r in rows if r["table"] == "report"}
    assert meta["portfolio"] == "'" + DANGEROUS[0]
    stress = {
        r["key"]: r for r in rows if r["table"] == "stress_results" and r["field"] == "total_pnl"
    }
    assert sorted(stress) == sorted("'" + name for name in DANGEROUS)
    assert {float(r["value"]) for r in stress.values()} == {-1000.5 * n for n in range(1, 7)}
    assert all(r["value"].startswith("-") for r in stress.values())  # numbers stay unescaped
    assert {r["field"] for r in rows if r["table"] == "stress_by_factor"} == {"'@Factor", "Market"}
    worst = [r for r in rows if r["table"] == "stress_worst_positions"]
    assert {r["value"] for r in worst if r["field"] == "symbol"} == {"'-AAPL"}
    for row in rows:
        for cell in row.values():
            assert not cell.startswith(("=", "+", "@", "\t", "\r")), cell


def test_report_xlsx_holds_names_as_text_and_numbers_as_numbers(user, stressed):
    workbook = openpyxl.load_workbook(io.BytesIO(report_file(user, stressed, "xlsx")))
    cells = [c for sheet in workbook for row in sheet.iter_rows() for c in row]
    assert [c.coordinate for c in cells if c.data_type == "f"] == []
    assert workbook["Report"]["B1"].value == "'" + DANGEROUS[0]
    rows = list(workbook["Stress results"].iter_rows(min_row=2))
    assert sorted(r[0].value for r in rows) == sorted("'" + name for name in DANGEROUS)
    assert all(r[0].data_type == "s" for r in rows)
    assert sorted(r[3].value for r in rows) == [-1000.5 * n for n in range(6, 0, -1)]
    assert all(r[3].data_type == "n" for r in rows)
    header = [c.value for c in workbook["Stress by factor"][1]]
    assert header[0] == "Scenario" and sorted(header[1:]) == ["'@Factor", "Market"]


# Trade exports ----------------------------------------------------------------------------------
@pytest.fixture
def session(user) -> ModelingSession:
    """A session whose trades were stored with dangerous symbols (before any validation)."""
    portfolio = PortfolioFactory(owner=user)
    session = ModelingSession.objects.create(owner=user, portfolio=portfolio, name="s", as_of=DAY)
    for symbol in DANGEROUS:
        ProFormaTrade.objects.create(
            session=session,
            symbol=symbol,
            underlying_symbol="X",
            quantity=Decimal("-5"),
            price=Decimal("10"),
        )
    return session


def export(client, session: ModelingSession, fmt: str) -> bytes:
    response = client.post(EXPORT, {"session": session.pk, "format": fmt}, format="json")
    assert response.status_code == 200, response.content
    return response.content


def test_trade_csv_export_neutralises_symbols(auth_client, session):
    rows = list(
        csv.DictReader(io.StringIO(export(auth_client, session, "csv").decode(), newline=""))
    )
    assert [r["symbol"] for r in rows] == ["'" + symbol for symbol in DANGEROUS]
    assert {(r["quantity"], r["notional"], r["side"]) for r in rows} == {
        ("5", "50.00", "sell_short")
    }


def test_trade_fix_export_neutralises_symbols_in_valid_messages(auth_client, session):
    lines = export(auth_client, session, "fix").split(b"\n")
    orders = [dict(parse_fix(line)) for line in lines[:-1]]  # framing, length, checksum
    assert [o["55"] for o in orders] == ["'" + symbol for symbol in DANGEROUS]
    assert {(o["38"], o["44"]) for o in orders} == {("5", "10")}


def test_trade_export_of_another_users_session_is_404(other_client, session):
    response = other_client.post(EXPORT, {"session": session.pk, "format": "csv"}, format="json")
    assert_envelope(response, 404, "not_found")


# Control characters -----------------------------------------------------------------------------
def test_session_and_trade_text_refuse_control_characters(auth_client, session):
    cases = [
        ("post", SESSIONS, {"portfolio": session.portfolio_id, "name": CONTROL}, "name"),
        ("patch", f"{SESSIONS}{session.pk}/", {"name": "what\tif"}, "name"),
        (
            "post",
            f"{SESSIONS}{session.pk}/trades/",
            {"symbol": "AAPL", "quantity": "1", "price": "1", "note": CONTROL},
            "note",
        ),
    ]
    for method, url, body, field in cases:
        error = assert_envelope(getattr(auth_client, method)(url, body, format="json"), 400)
        assert "Control characters are not allowed" in " ".join(error["fields"][field])
    assert ModelingSession.objects.get().name == "s"
    assert session.trades.count() == len(DANGEROUS)


def test_session_of_another_user_is_404_whatever_the_text(user, session, other_user):
    other = client_for(other_user)
    for body in ({"name": CONTROL}, {"name": "fine"}):
        assert_envelope(other.patch(f"{SESSIONS}{session.pk}/", body, format="json"), 404)
    trade = {"symbol": "AAPL", "quantity": "1", "note": CONTROL}
    assert_envelope(other.post(f"{SESSIONS}{session.pk}/trades/", trade, format="json"), 404)
    assert ModelingSession.objects.get().name == "s"
