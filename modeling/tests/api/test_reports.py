"""Reports (issue 10): every kind in every format through the API, checked against the rows
the batch stored; the PDF read back with pypdf; ownership, validation and the task's claim.

The demo is seeded once for the module (synthetic market, the network guard on), inside a
transaction rolled back when the module is done; each test runs in a savepoint of it. Report
files go to a temporary MEDIA_ROOT per test.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import re
from collections import defaultdict
from decimal import Decimal

import pytest
from openpyxl import load_workbook
from pypdf import PdfReader

from analytics.models import (
    PortfolioFactorExposure,
    PortfolioSnapshot,
    PositionFactorExposure,
    PositionGreeks,
    RiskMetricSnapshot,
)
from modeling import demo
from modeling.models import Report
from modeling.reports.renderers import CSV_HEADER
from modeling.reports.services import report_run
from modeling.tasks import generate_report
from portfolios.models import Portfolio
from portfolios.tests.factories import PortfolioFactory
from sigmasight.accounts.models import User
from sigmasight.tests.helpers import assert_envelope, client_for
from stress.models import StressTestResult

pytestmark = pytest.mark.django_db

GENERATE = "/api/v1/reports/generate/"
KINDS = ["risk_summary", "stress", "factor", "attribution"]
FORMATS = ["pdf", "html", "csv", "xlsx"]
CONTENT_TYPES = {
    "pdf": "application/pdf",
    "html": "text/html; charset=utf-8",
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
SECTION_TITLES = {
    "risk_summary": [
        "Risk summary",
        "Portfolio summary",
        "Equity and P&L over time",
        "Exposures over time",
        "Greeks by underlying",
        "Options: exercise style and early exercise",
        "Risk metrics",
        "Risk contributions",
        "Market and rate scenarios",
        "Factor betas",
        "P&L attribution",
        "Liquidity",
        "Concentration",
        "Stress test results",
    ],
    "stress": ["Stress test report", "Portfolio summary", "Stress test results"],
    "factor": [
        "Factor exposure report",
        "Portfolio summary",
        "Factor betas",
        "Factor betas over time",
        "Position factor betas",
    ],
    "attribution": [
        "P&L attribution report",
        "Portfolio summary",
        "P&L attribution",
        "P&L by Greek",
        "P&L by underlying",
        "P&L by position",
    ],
}


def status_url(pk: int) -> str:
    return f"/api/v1/reports/{pk}/status/"


def download_url(pk: int) -> str:
    return f"/api/v1/reports/{pk}/download/"


@pytest.fixture(scope="module")
def seeded(module_database):
    return demo.demo_seed()


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def book(seeded) -> tuple[User, Portfolio]:
    """The growth demo book (stocks and options, every batch result stored) and its owner."""
    portfolio = Portfolio.objects.get(pk=seeded.books[0].portfolio_id)
    return portfolio.owner, portfolio


def generate(client, portfolio: Portfolio, kind: str, fmt: str, capture) -> dict:
    with capture(execute=True):
        response = client.post(
            GENERATE, {"portfolio": portfolio.pk, "kind": kind, "format": fmt}, format="json"
        )
    assert response.status_code == 202, response.content
    body = response.json()
    assert set(body) == {"id", "status"}
    assert body["status"] == "queued"  # the answer is written before the task runs
    assert response["Location"] == status_url(body["id"])
    return body


def download(client, pk: int):
    response = client.get(download_url(pk))
    # Consuming the stream closes the file (the test client closes the response at its end).
    return response, b"".join(response.streaming_content)


def csv_values(content: bytes) -> dict[str, dict[str, dict[str, str]]]:
    """table -> key -> field -> value."""
    rows = list(csv.reader(io.StringIO(content.decode("utf-8"))))
    assert rows[0] == CSV_HEADER
    tables: dict = defaultdict(lambda: defaultdict(dict))
    for table, _, key, field, value in rows[1:]:
        tables[table][key][field] = value
    return tables


def latest_stress(portfolio: Portfolio) -> list[StressTestResult]:
    day = StressTestResult.objects.filter(portfolio=portfolio).latest("date").date
    return list(
        StressTestResult.objects.filter(portfolio=portfolio, date=day)
        .select_related("scenario")
        .order_by("total_pnl")
    )


def latest_factor_betas(portfolio: Portfolio) -> dict[str, float]:
    day = PortfolioFactorExposure.objects.filter(portfolio=portfolio).latest("date").date
    return dict(
        PortfolioFactorExposure.objects.filter(portfolio=portfolio, date=day).values_list(
            "factor__name", "beta"
        )
    )


def chart_titles(kind: str, portfolio: Portfolio) -> list[str]:
    """The charts each kind draws for a book with every result stored (the factor history only
    once two sessions carry betas)."""
    if kind == "risk_summary":
        return [
            "Equity and daily P&L",
            f"Exposures ({portfolio.base_currency})",
            "Greeks by underlying",
            "Top contributors to VaR",
            "Portfolio factor betas",
            "Cumulative P&L by factor and specific",
            "Stress P&L by scenario",
        ]
    if kind == "attribution":
        return ["Cumulative P&L by factor and specific"]
    if kind == "stress":
        return ["Stress P&L by scenario", "P&L by factor in the worst scenario"]
    sessions = [
        b
        for b in PortfolioSnapshot.objects.filter(portfolio=portfolio).values_list(
            "factor_betas", flat=True
        )
        if b
    ]
    return ["Portfolio factor betas"] + (["Style factor betas"] if len(sessions) > 1 else [])


# Every kind in every format -------------------------------------------------------------------
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("kind", KINDS)
def test_report_generates_every_kind_and_format(
    book, kind, fmt, eager_celery, django_capture_on_commit_callbacks
):
    owner, portfolio = book
    client = client_for(owner)
    body = generate(client, portfolio, kind, fmt, django_capture_on_commit_callbacks)

    status = client.get(status_url(body["id"])).json()
    assert status["status"] == "done", status["error"]
    assert (status["kind"], status["format"], status["portfolio"]) == (kind, fmt, portfolio.pk)
    assert status["download_url"] == download_url(body["id"])
    assert status["started_at"] <= status["finished_at"]

    response, content = download(client, body["id"])
    assert response.status_code == 200
    assert response["Content-Type"] == CONTENT_TYPES[fmt]
    assert response["Content-Disposition"].startswith("attachment;")
    assert f".{fmt}" in response["Content-Disposition"]
    assert content
    CHECKS[fmt](kind, portfolio, content)


def check_pdf(kind: str, portfolio: Portfolio, content: bytes) -> None:
    assert content.startswith(b"%PDF")
    reader = PdfReader(io.BytesIO(content))
    text = re.sub(r"\s+", " ", " ".join(page.extract_text() for page in reader.pages))
    assert portfolio.name in text
    for title in SECTION_TITLES[kind]:
        assert title in text, title
    if kind == "stress":
        assert f"Worst scenario: {latest_stress(portfolio)[0].scenario.name}" in text
    images = [image for page in reader.pages for image in page.images]
    assert len(images) == len(chart_titles(kind, portfolio))
    assert all(image.image is not None and image.image.width > 300 for image in images)


def check_html(kind: str, portfolio: Portfolio, content: bytes) -> None:
    text = content.decode("utf-8")
    assert text.startswith("<!DOCTYPE html>")
    plain = html.unescape(text)
    assert portfolio.name in plain
    for title in SECTION_TITLES[kind]:
        assert title in plain, title
    images = re.findall(
        r'<img class="chart" src="data:image/png;base64,([^"]+)" alt="([^"]*)"', text
    )
    assert [html.unescape(alt) for _, alt in images] == chart_titles(kind, portfolio)
    for encoded, _ in images:
        assert base64.b64decode(encoded).startswith(b"\x89PNG\r\n\x1a\n")


def check_csv(kind: str, portfolio: Portfolio, content: bytes) -> None:
    tables = csv_values(content)
    assert tables["report"]["report"]["portfolio"] == portfolio.name
    assert tables["report"]["report"]["kind"] == kind
    assert Decimal(tables["summary"]["Cash"]["value"]) == portfolio.cash
    if kind in ("risk_summary", "stress"):
        stress = latest_stress(portfolio)
        rows = tables["stress_results"]
        assert list(rows) == [r.scenario.name for r in stress]  # worst first
        for r in stress:
            assert float(rows[r.scenario.name]["total_pnl"]) == r.total_pnl
            assert float(rows[r.scenario.name]["direct_pnl"]) == r.direct_pnl
            assert float(rows[r.scenario.name]["pnl_pct"]) == r.pnl_pct
    if kind in ("risk_summary", "factor"):
        betas = latest_factor_betas(portfolio)
        assert {k: float(v["beta"]) for k, v in tables["factor_betas"].items()} == betas
    if kind == "risk_summary":
        snapshots = PortfolioSnapshot.objects.filter(portfolio=portfolio).order_by("date")
        series = tables["performance_series"]
        assert list(series) == [s.date.isoformat() for s in snapshots]
        for s in snapshots:
            assert Decimal(series[s.date.isoformat()]["equity"]) == s.equity
            assert Decimal(series[s.date.isoformat()]["daily_pnl"]) == s.daily_pnl
            exposures = tables["exposures_series"][s.date.isoformat()]
            assert Decimal(exposures["gross"]) == s.gross_exposure
            assert Decimal(exposures["delta_adjusted"]) == s.delta_adjusted_exposure
        metrics = tables["risk_metrics"]["VaR (historical)"]
        day = RiskMetricSnapshot.objects.filter(portfolio=portfolio).latest("date").date
        for m in RiskMetricSnapshot.objects.filter(portfolio=portfolio, date=day):
            assert float(metrics[f"{m.confidence:g}_{m.horizon_days}d"]) == m.var_historical
        option_greeks = PositionGreeks.objects.filter(
            position__portfolio=portfolio, date=day
        ).select_related("position")
        options = tables["options"]
        assert set(options) == {g.position.symbol for g in option_greeks} != set()
        for g in option_greeks:
            row = options[g.position.symbol]
            assert row["style"] == g.exercise_style
            assert float(row["dividend_yield"]) == g.dividend_yield
            assert float(row["premium_per_share"]) == g.early_exercise_premium
            units = float(g.position.quantity) * g.position.multiplier
            assert float(row["premium"]) == pytest.approx(g.early_exercise_premium * units)
        # Contributions: GET /risk/contributions/'s (95%, historical VaR, by underlying).
        answer = (
            client_for(portfolio.owner)
            .get(f"/api/v1/risk/contributions/?portfolio={portfolio.pk}&by=underlying")
            .json()
        )
        rows = tables["contributions_all"]
        assert float(tables["contributions_top"]["Total"]["component"]) == answer["total"]
        assert {k: float(v["component"]) for k, v in rows.items()} == {
            c["key"]: c["component"] for c in answer["contributions"]
        }
        # Liquidity and concentration: the numbers GET /risk/liquidity/ and /concentration/ give.
        liquidity = client_for(portfolio.owner).get(
            f"/api/v1/risk/liquidity/?portfolio={portfolio.pk}&as_of={day}"
        )
        for horizon, share in liquidity.json()["liquidatable"].items():
            assert float(tables["liquidity_summary"][f"{horizon} sessions"]["share"]) == share
        concentration = (
            client_for(portfolio.owner)
            .get(f"/api/v1/risk/concentration/?portfolio={portfolio.pk}&as_of={day}")
            .json()
        )
        herfindahl = tables["concentration_summary"]["Herfindahl index"]["value"]
        assert float(herfindahl) == concentration["herfindahl"]
        greeks = tables["greeks_by_underlying"]
        assert "Total" in greeks
        assert sum(int(v["positions"]) for k, v in greeks.items() if k != "Total") == int(
            greeks["Total"]["positions"]
        )
    if kind in ("risk_summary", "attribution"):
        # The attribution: the numbers GET /risk/attribution/ gives for the same sessions.
        for by, table in (
            ("factor", "attribution_by_factor"),
            ("greek", "attribution_greek_totals"),
        ):
            if kind == "risk_summary" and by == "greek":
                continue
            answer = (
                client_for(portfolio.owner)
                .get(f"/api/v1/risk/attribution/?portfolio={portfolio.pk}&by={by}")
                .json()
            )
            rows = tables[table]
            assert {k: float(v["pnl"]) for k, v in rows.items() if k != "Total"} == pytest.approx(
                answer["totals"], rel=1e-12, abs=1e-9
            )
            assert float(rows["Total"]["pnl"]) == pytest.approx(answer["total_pnl"], abs=1e-6)
    if kind == "factor":
        latest = PositionFactorExposure.objects.filter(position__portfolio=portfolio).latest("date")
        stored = PositionFactorExposure.objects.filter(
            position__portfolio=portfolio, date=latest.date
        ).values_list("position_id", "factor__name", "beta", "dollar_exposure")
        for position, factor, beta, dollar in stored:
            assert float(tables["position_betas_all"][str(position)][factor]) == beta
            assert float(tables["position_dollar_exposures"][str(position)][factor]) == dollar


EXPECTED_SHEETS = {
    "risk_summary": {
        "Summary": ["Metric", "USD"],
        "Performance series": ["Date", "Equity", "Daily P&L", "Daily return", "Cumulative return"],
        "Exposures series": ["Date", "Gross", "Net", "Long", "Short", "Delta-adjusted"],
        "Greeks by underlying": [
            "Underlying",
            "Positions",
            "Net exposure",
            "Delta",
            "Dollar delta",
            "Gamma",
            "Theta",
            "Vega",
            "Rho",
        ],
        "Options": ["Contract", "Underlying", "Style", "Contracts", "Strike", "Expiration"],
        "Stress results": ["Scenario", "Category", "Direct P&L", "Total P&L", "P&L %"],
    },
    "stress": {
        "Stress results": ["Scenario", "Category", "Direct P&L", "Total P&L", "P&L %"],
        "Stress worst factors": ["Factor", "Factor move", "P&L"],
        "Stress worst positions": ["Position", "Symbol", "P&L"],
    },
    "attribution": {
        "Attribution by factor": ["Part", "P&L"],
        "Attribution daily": ["Date", "Total P&L"],
        "Attribution greek totals": ["Part", "P&L"],
    },
    "factor": {
        "Factor betas": [
            "Factor",
            "Proxy",
            "Type",
            "Beta",
            "Dollar exposure",
            "Positions with a beta",
        ],
        "Position betas": ["Position", "Symbol", "R squared", "Market"],
    },
}


def check_xlsx(kind: str, portfolio: Portfolio, content: bytes) -> None:
    workbook = load_workbook(io.BytesIO(content))
    assert workbook.sheetnames[0] == "Report"
    assert workbook["Report"]["B1"].value == portfolio.name
    for name, headers in EXPECTED_SHEETS[kind].items():
        first = next(workbook[name].iter_rows(min_row=1, max_row=1, values_only=True))
        assert list(first[: len(headers)]) == headers, name
    if kind in ("risk_summary", "stress"):
        rows = list(workbook["Stress results"].iter_rows(min_row=2, values_only=True))
        stress = latest_stress(portfolio)
        # Spreadsheets keep 15 to 17 significant digits.
        assert [r[0] for r in rows] == [s.scenario.name for s in stress]
        assert [r[3] for r in rows] == pytest.approx([s.total_pnl for s in stress], rel=1e-14)
    if kind == "risk_summary":
        rows = list(workbook["Performance series"].iter_rows(min_row=2, values_only=True))
        snapshots = PortfolioSnapshot.objects.filter(portfolio=portfolio).order_by("date")
        assert [(r[0].date(), Decimal(str(r[1]))) for r in rows] == [
            (s.date, s.equity) for s in snapshots
        ]
    if kind == "factor":
        rows = list(workbook["Factor betas"].iter_rows(min_row=2, values_only=True))
        assert {r[0]: r[3] for r in rows} == pytest.approx(
            latest_factor_betas(portfolio), rel=1e-14
        )


CHECKS = {"pdf": check_pdf, "html": check_html, "csv": check_csv, "xlsx": check_xlsx}


# Without stored results -------------------------------------------------------------------------
def test_report_of_a_portfolio_without_results_renders_and_says_so(
    user, eager_celery, django_capture_on_commit_callbacks
):
    portfolio = PortfolioFactory(owner=user, name="Empty Book", cash=Decimal("2500.00"))
    client = client_for(user)
    pdf = generate(client, portfolio, "risk_summary", "pdf", django_capture_on_commit_callbacks)
    csv_report = generate(client, portfolio, "stress", "csv", django_capture_on_commit_callbacks)
    assert Report.objects.get(pk=pdf["id"]).status == "done"

    _, content = download(client, pdf["id"])
    reader = PdfReader(io.BytesIO(content))
    text = re.sub(r"\s+", " ", " ".join(page.extract_text() for page in reader.pages))
    assert "Empty Book" in text
    assert "No snapshots are stored yet" in text
    assert "No stress results are stored yet" in text
    assert "2,500.00" in text  # the summary still reads the cash
    assert not [image for page in reader.pages for image in page.images]

    _, content = download(client, csv_report["id"])
    tables = csv_values(content)
    assert tables["stress"][""]["empty"].startswith("No stress results are stored yet")
    assert Decimal(tables["summary"]["Equity"]["value"]) == Decimal("2500.00")


# API errors -------------------------------------------------------------------------------------
def test_download_before_the_report_is_done_is_404(book):
    owner, portfolio = book
    client = client_for(owner)
    for state in ("queued", "running"):
        report = Report.objects.create(
            owner=owner, portfolio=portfolio, kind="stress", format="csv", status=state
        )
        assert_envelope(client.get(download_url(report.pk)), 404, "report_not_ready")
        body = client.get(status_url(report.pk)).json()
        assert body["status"] == state and body["download_url"] is None


def test_another_users_report_is_404(
    book, other_client, eager_celery, django_capture_on_commit_callbacks
):
    owner, portfolio = book
    body = generate(
        client_for(owner), portfolio, "factor", "csv", django_capture_on_commit_callbacks
    )
    assert Report.objects.get(pk=body["id"]).status == "done"
    assert_envelope(other_client.get(status_url(body["id"])), 404, "not_found")
    assert_envelope(other_client.get(download_url(body["id"])), 404, "not_found")
    missing = Report.objects.latest("pk").pk + 1000
    assert_envelope(other_client.get(status_url(missing)), 404, "not_found")


def test_another_users_portfolio_is_refused_like_an_unknown_one(book, other_client):
    _, portfolio = book
    unknown = Portfolio.objects.latest("pk").pk + 1000
    answers = []
    for pk in (portfolio.pk, unknown):
        response = other_client.post(
            GENERATE, {"portfolio": pk, "kind": "stress", "format": "pdf"}, format="json"
        )
        error = assert_envelope(response, 400, "validation_error")
        answers.append(error["fields"]["portfolio"][0].replace(str(pk), "<id>"))
    assert answers[0] == answers[1]
    assert not Report.objects.filter(portfolio=portfolio).exists()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"kind": "var"}, "kind"),
        ({"format": "docx"}, "format"),
        ({"kind": None}, "kind"),
        ({"portfolio": "abc"}, "portfolio"),
    ],
)
def test_bad_generate_request_is_400(book, change, field):
    owner, portfolio = book
    body = {"portfolio": portfolio.pk, "kind": "stress", "format": "pdf", **change}
    response = client_for(owner).post(GENERATE, body, format="json")
    error = assert_envelope(response, 400)
    assert set(error["fields"]) == {field}
    assert not Report.objects.exists()


# The task ---------------------------------------------------------------------------------------
def test_a_claimed_or_missing_report_is_left_alone(book):
    owner, portfolio = book
    report = Report.objects.create(
        owner=owner, portfolio=portfolio, kind="stress", format="csv", status="running"
    )
    assert report_run(report_id=report.pk) is None
    report.refresh_from_db()
    assert report.status == "running" and not report.file
    assert generate_report.apply(args=(report.pk + 1000,)).get() == {
        "report": report.pk + 1000,
        "status": "skipped",
    }


def test_a_report_that_cannot_be_stored_fails_with_the_reason(book, media, settings):
    owner, portfolio = book
    media.parent.mkdir(parents=True, exist_ok=True)
    media.write_text("a file where the media directory should be")
    report = Report.objects.create(owner=owner, portfolio=portfolio, kind="stress", format="csv")
    result = generate_report.apply(args=(report.pk,)).get()
    assert result == {"report": report.pk, "status": "failed"}
    report.refresh_from_db()
    assert report.status == "failed" and report.finished_at is not None
    assert report.error
    client = client_for(owner)
    error = assert_envelope(client.get(download_url(report.pk)), 404, "report_failed")
    assert report.error in error["message"]
    assert client.get(status_url(report.pk)).json()["error"] == report.error


def test_report_files_are_named_for_the_session(
    book, eager_celery, django_capture_on_commit_callbacks
):
    owner, portfolio = book
    body = generate(
        client_for(owner), portfolio, "stress", "xlsx", django_capture_on_commit_callbacks
    )
    report = Report.objects.get(pk=body["id"])
    as_of = StressTestResult.objects.filter(portfolio=portfolio).latest("date").date
    assert report.file.name is not None and report.file.name.startswith("reports/")
    assert report.file.name.endswith(
        f"stress-portfolio{portfolio.pk}-{as_of.isoformat()}-{report.pk}.xlsx"
    )
