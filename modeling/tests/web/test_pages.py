"""The workbench's pages on the demo: every number equals the API's for the same book, another
user's pages are 404, bad input is shown and changes nothing."""

from __future__ import annotations

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
    fields = ["quantity", "last_price", "market_value", "exposure", "daily_pnl", "unrealized_pnl",
              "greeks.delta", "greeks.gamma", "greeks.theta", "greeks.vega"]  # fmt: skip
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
