"""The workbench's pages on the demo: every number equals the API's for the same book, another
user's pages are 404, bad input is shown and changes nothing."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.utils.html import escape

from modeling.tests.web.conftest import at, page_values, shown
from sigmasight.tests.helpers import client_for

pytestmark = pytest.mark.django_db


def _api(user, path: str, **query):
    response = client_for(user).get(path, query)
    assert response.status_code == 200, response.content
    return response.json()


def _compare(
    html: str, body, *, within: str | None = None, prefix: str = "", strip: str = ""
) -> int:
    """Every number in `within` equals the API body's value at its field; how many there were."""
    values = page_values(html, within)
    for field, value in values:
        path = field[len(strip) :] if strip and field.startswith(strip) else field
        assert value == shown(at(body, prefix + path)), field
    return len(values)


def test_visitors_get_the_sign_in_page_with_links_to_the_docs_and_admin(page_client):
    response = page_client.get("/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Sign in to SigmaSight" in html
    assert 'href="/api/docs/"' in html and 'href="/admin/"' in html
    assert page_client.get("/portfolios/1/").status_code == 302  # to the sign-in page


def test_the_overview_shows_the_apis_numbers(demo_books, page_client):
    user, portfolio = demo_books["growth"]
    page_client.force_login(user)
    response = page_client.get("/")
    assert response.status_code == 302 and response["Location"] == f"/portfolios/{portfolio.pk}/"
    html = page_client.get(response["Location"]).content.decode()
    summary = _api(user, f"/api/v1/portfolios/{portfolio.pk}/summary/")
    metrics = _api(user, "/api/v1/risk/metrics/", portfolio=portfolio.pk)
    values = dict(page_values(html))
    assert values["equity"] == summary["equity"]
    for field, value in page_values(html):
        if field.startswith("metrics."):
            assert value == shown(metrics[field.removeprefix("metrics.")]), field
        elif field in {"value", "bound_value"}:
            continue  # the breaches table, compared on the alerts page
        else:
            assert value == shown(at(summary, field)), field
    assert "Synthetic prices" in html  # the demo's data-quality banner
    assert 'data-chart="chart-equity"' in html


def test_positions_risk_and_stress_show_the_apis_numbers(demo_books, page_client):
    user, portfolio = demo_books["growth"]
    page_client.force_login(user)
    html = page_client.get(
        f"/portfolios/{portfolio.pk}/positions/?ordering=-exposure"
    ).content.decode()
    listed = _api(
        user, "/api/v1/positions/", portfolio=portfolio.pk, ordering="-exposure", page_size=500
    )
    rows = page_values(html, "positions")
    fields = [
        "quantity",
        "last_price",
        "market_value",
        "exposure",
        "daily_pnl",
        "unrealized_pnl",
        "greeks.delta",
        "greeks.gamma",
        "greeks.theta",
        "greeks.vega",
    ]
    assert len(rows) == len(fields) * listed["count"]
    for i, (field, value) in enumerate(rows):
        position = listed["results"][i // len(fields)]
        assert value == shown(
            at(position, field) if position["greeks"] or "greeks" not in field else None
        ), field

    book = {"portfolio": portfolio.pk}
    html = page_client.get(
        f"/portfolios/{portfolio.pk}/risk/?confidence=0.99&by=sector"
    ).content.decode()
    metrics = _api(user, "/api/v1/risk/metrics/", confidence=0.99, **book)
    assert _compare(html, metrics, within="metrics") >= 9
    contributions = _api(user, "/api/v1/risk/contributions/", by="sector", confidence=0.99, **book)
    shown_rows = page_values(html, "contributions-table")
    assert len(shown_rows) == 4 * len(contributions["contributions"])
    for i, (field, value) in enumerate(shown_rows):
        assert value == shown(contributions["contributions"][i // 4][field]), field
    liquidity = _api(user, "/api/v1/risk/liquidity/", **book)
    for i, (field, value) in enumerate(page_values(html, "liquidity")):
        assert value == shown(liquidity["positions"][i // 2][field]), field
    concentration = _api(user, "/api/v1/risk/concentration/", **book)
    names = page_values(html, "names")
    assert [v for _, v in names] == [shown(n["share"]) for n in concentration["names"]]
    attribution = _api(user, "/api/v1/risk/attribution/", by="factor", **book)
    assert _compare(html, attribution, within="attribution-totals") == len(attribution["totals"])
    market = _api(user, "/api/v1/risk/scenarios/market/", **book)
    rows = page_values(html, "scenarios-market")
    for i, (field, value) in enumerate(rows):
        assert value == shown(market[i // 3][field]), field

    html = page_client.get(f"/portfolios/{portfolio.pk}/stress/").content.decode()
    summary = _api(user, f"/api/v1/portfolios/{portfolio.pk}/summary/")
    stored = _api(
        user,
        f"/api/v1/stress/results/{portfolio.pk}/",
        start=summary["as_of"],
        end=summary["as_of"],
    )
    worst_first = sorted(stored, key=lambda r: float(r["total_pnl"]))
    rows = page_values(html, "stress-results")
    assert len(rows) == 4 * len(worst_first) > 0
    for i, (field, value) in enumerate(rows):
        assert value == shown(worst_first[i // 4][field]), field
    factors = page_values(html, "stress-by-factor")
    assert dict(factors) == {
        f"by_factor.{k}": shown(v) for k, v in worst_first[0]["by_factor"].items()
    }


def test_another_users_pages_are_404(demo_books, page_client):
    _, portfolio = demo_books["growth"]
    other, _ = next(book for key, book in demo_books.items() if key != "growth")
    page_client.force_login(other)
    for path in ("", "positions/", "positions/export/", "risk/", "stress/", "whatif/", "reports/"):
        response = page_client.get(f"/portfolios/{portfolio.pk}/{path}")
        assert response.status_code == 404, path
        assert "Not found" in response.content.decode()
    assert page_client.get("/operations/").status_code == 404  # staff only


def test_a_bad_upload_row_is_shown_and_nothing_is_written(demo_books, page_client):
    from portfolios.models import Position

    user, portfolio = demo_books["growth"]
    page_client.force_login(user)
    before = Position.objects.filter(portfolio=portfolio).count()
    page = page_client.get(f"/portfolios/{portfolio.pk}/positions/")
    token = page.cookies["csrftoken"].value
    from django.core.files.uploadedfile import SimpleUploadedFile

    csv = (
        b"symbol,quantity,entry_price,entry_date\nAAPL,10,150,2024-01-02\nMSFT,ten,300,2024-01-02\n"
    )
    response = page_client.post(
        f"/portfolios/{portfolio.pk}/positions/upload/",
        {
            "file": SimpleUploadedFile("book.csv", csv, "text/csv"),
            "mode": "append",
            "csrfmiddlewaretoken": token,
        },
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert "Nothing was written." in html and "quantity" in html
    api = client_for(user).post(
        f"/api/v1/portfolios/{portfolio.pk}/upload/",
        {"file": SimpleUploadedFile("book.csv", csv, "text/csv"), "mode": "append"},
        format="multipart",
    )
    for row in api.json()["error"]["fields"]["rows"]:
        assert escape(row["message"]) in html
    assert Position.objects.filter(portfolio=portfolio).count() == before


def _luminance(hex_colour: str) -> float:
    """WCAG 2.x relative luminance of #rrggbb."""
    channels = [int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def _contrast(a: str, b: str) -> float:
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_the_colour_pairs_pass_wcag_aa():
    import re
    from pathlib import Path

    from django.conf import settings

    css = (Path(settings.BASE_DIR) / "modeling/static/web/app.css").read_text()
    colours = dict(re.findall(r"--([a-z-]+):\s*(#[0-9a-f]{6})", css))
    white = "#ffffff"
    pairs = [  # (text, background) as the stylesheet uses them
        (colours["text"], white),
        (colours["muted"], white),
        (colours["link"], white),
        (colours["neg"], white),
        (colours["link"], colours["band"]),
        (colours["muted"], colours["band"]),
        (colours["text"], colours["band"]),
        (colours["warn"], colours["warn-bg"]),
        (colours["neg"], colours["hard-bg"]),
        (colours["ok"], "#e8f3ec"),
        (white, "#0b57a4"),
        ("#3d2600", colours["warn-bg"]),
        ("#5a0010", colours["hard-bg"]),
    ]
    for text, background in pairs:
        assert _contrast(text, background) >= 4.5, (text, background)
    # The hand-worked reference: black on white is 21:1.
    assert abs(_contrast("#000000", white) - 21.0) < 1e-9


def _post(client, path: str, data: dict):
    """A form post as a browser makes it: the CSRF cookie of a page (its sign-out form), then
    the token with the form."""
    client.get("/alerts/")
    return client.post(path, {**data, "csrfmiddlewaretoken": client.cookies["csrftoken"].value})


def test_what_if_alerts_and_operations_show_the_apis_numbers(demo_books, page_client):
    user, portfolio = demo_books["growth"]
    page_client.force_login(user)
    base = f"/portfolios/{portfolio.pk}/whatif/"
    response = _post(page_client, f"{base}open/", {"name": "Trim tech"})
    assert response.status_code == 302
    session_url = response["Location"]
    session_id = int(session_url.rstrip("/").rsplit("/", 1)[1])
    response = _post(page_client, f"{session_url}trades/", {"symbol": "NVDA", "quantity": "-50"})
    assert response.status_code == 302, response.content
    html = page_client.get(session_url).content.decode()
    impacts = _api(user, f"/api/v1/modeling/sessions/{session_id}/impacts/")
    assert _compare(html, impacts, within="impacts") == 3 * 12
    limits = page_values(html, "whatif-limits")
    assert len(limits) == 2 * len(impacts["limits"]) > 0
    for i, (field, value) in enumerate(limits):
        assert value == shown(at(impacts["limits"][i // 2], field)), field
    # A bad trade: the API's field errors on the page, nothing added.
    response = _post(page_client, f"{session_url}trades/", {"symbol": "NVDA", "quantity": "lots"})
    assert response.status_code == 400
    assert "quantity" in response.content.decode()
    assert len(_api(user, f"/api/v1/modeling/sessions/{session_id}/")["trades"]) == 1

    html = page_client.get("/alerts/?status=all").content.decode()
    breaches = _api(user, "/api/v1/breaches/")["results"]
    rows = page_values(html, "breaches")
    assert len(rows) == 2 * len(breaches) > 0
    for i, (field, value) in enumerate(rows):
        assert value == shown(breaches[i // 2][field]), field
    limit_rows = _api(user, "/api/v1/limits/", page_size=500)["results"]
    rows = page_values(html, "limits")
    for i, (field, value) in enumerate(rows):
        assert value == shown(limit_rows[i // 2][field]), field


def test_operations_is_for_staff_and_shows_the_apis_jobs(demo_books, page_client):
    from sigmasight.accounts.models import User

    staff = User.objects.get(email="admin@sigmasight.local")
    page_client.force_login(staff)
    html = page_client.get("/operations/").content.decode()
    jobs = _api(staff, "/api/v1/admin/batch/jobs/", page_size=50, ordering="-id")["results"]
    rows = page_values(html, "jobs")
    assert [v for _, v in rows] == [shown(j["duration_s"]) for j in jobs]
    assert "synthetic" in html  # the demo's price source, flagged


def test_every_page_answers_for_an_empty_book_and_a_user_without_one(page_client, user, other_user):
    from portfolios.tests.factories import PortfolioFactory

    portfolio = PortfolioFactory(owner=user)
    page_client.force_login(user)
    for path in ("", "positions/", "risk/", "stress/", "whatif/", "reports/"):
        response = page_client.get(f"/portfolios/{portfolio.pk}/{path}")
        assert response.status_code == 200, (path, response.content[:300])
    assert page_client.get("/alerts/").status_code == 200
    html = page_client.get(f"/portfolios/{portfolio.pk}/positions/").content.decode()
    assert "No positions yet" in html
    page_client.force_login(other_user)  # no portfolio at all
    response = page_client.get("/", follow=True)
    assert response.status_code == 200 and "No portfolio yet" in response.content.decode()


def test_another_users_breach_and_report_are_404_and_not_listed(demo_books, page_client):
    from modeling.limit_models import Breach
    from modeling.models import Report

    owner, portfolio = demo_books["growth"]
    breach = Breach.objects.filter(portfolio=portfolio).first()
    assert breach is not None
    report = Report.objects.create(
        owner=owner, portfolio=portfolio, kind="risk_summary", format="csv"
    )
    other, _ = next(book for key, book in demo_books.items() if key != "growth")
    page_client.force_login(other)
    assert f"breach-{breach.pk}" not in page_client.get("/alerts/?status=all").content.decode()
    response = _post(page_client, f"/alerts/breaches/{breach.pk}/acknowledge/", {})
    assert response.status_code == 404
    breach.refresh_from_db()
    assert breach.status == Breach.Status.OPEN
    assert page_client.get(f"/reports/{report.pk}/download/").status_code == 404


def test_sign_in_checks_the_password_audits_and_is_throttled_like_the_api(
    page_client, user, settings
):
    from sigmasight.accounts.tests.factories import DEFAULT_PASSWORD
    from sigmasight.audit.models import AuditEvent

    settings.SIGMASIGHT_THROTTLE_LOGIN_EMAIL = "2/min"
    page_client.get("/signin/")
    token = page_client.cookies["csrftoken"].value
    form = {"email": user.email, "password": "not-it", "csrfmiddlewaretoken": token}
    response = page_client.post("/signin/", form)
    assert response.status_code == 400
    assert "Email or password is incorrect." in response.content.decode()
    assert AuditEvent.objects.filter(action="auth.login_failed").count() == 1
    response = page_client.post("/signin/", {**form, "password": DEFAULT_PASSWORD})
    assert response.status_code == 302  # the second attempt this minute
    assert AuditEvent.objects.filter(action="auth.login", actor=user).count() == 1
    page_client.post("/signout/", {"csrfmiddlewaretoken": page_client.cookies["csrftoken"].value})
    page_client.get("/signin/")
    form["csrfmiddlewaretoken"] = page_client.cookies["csrftoken"].value
    response = page_client.post("/signin/", form)
    assert response.status_code == 429 and int(response["Retry-After"]) > 0
    # Without the CSRF token the form is refused before any credential is looked at.
    page_client.cookies.clear()
    response = page_client.post("/signin/", {"email": user.email, "password": DEFAULT_PASSWORD})
    assert response.status_code == 403


def test_a_hedge_suggestion_is_shown_and_applied(demo_books, page_client):
    user, portfolio = demo_books["balanced"] if "balanced" in demo_books else demo_books["growth"]
    page_client.force_login(user)
    base = f"/portfolios/{portfolio.pk}/whatif/"
    session_url = _post(page_client, f"{base}open/", {"name": "Hedge"})["Location"]
    session_id = int(session_url.rstrip("/").rsplit("/", 1)[1])
    html = page_client.get(f"{session_url}?target=delta_neutral").content.decode()
    suggested = _api(
        user, f"/api/v1/modeling/sessions/{session_id}/suggestions/", target="delta_neutral"
    )
    rows = page_values(html, "suggestion")
    assert [v for f, v in rows if f == "quantity"] == [
        shown(t["quantity"]) for t in suggested["trades"]
    ]
    response = _post(page_client, f"{session_url}hedge/", {"target": "delta_neutral", "factor": ""})
    assert response.status_code == 302
    trades = _api(user, f"/api/v1/modeling/sessions/{session_id}/")["trades"]
    assert [(t["symbol"], Decimal(t["quantity"])) for t in trades] == [
        (t["symbol"], Decimal(t["quantity"])) for t in suggested["trades"]
    ]


def test_a_trade_export_is_the_apis_file(demo_books, page_client):
    user, portfolio = demo_books["growth"]
    page_client.force_login(user)
    session_url = _post(page_client, f"/portfolios/{portfolio.pk}/whatif/open/", {"name": "X"})[
        "Location"
    ]
    _post(page_client, f"{session_url}trades/", {"symbol": "AAPL", "quantity": "10"})
    response = _post(page_client, f"{session_url}export/", {"format": "fix"})
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment;")
    assert b"35=D" in response.content and b"55=AAPL" in response.content
