from __future__ import annotations

from datetime import date

import pytest

from marketdata.models import DailyPrice
from marketdata.providers.synthetic import SyntheticProvider
from marketdata.services import prices_fetch_and_cache
from sigmasight.accounts.tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    prices_fetch_and_cache(
        symbols=["AAPL", "US10Y"], start=date(2026, 11, 2), end=date(2026, 11, 6),
        providers=[SyntheticProvider()],
    )  # fmt: skip
    return client


def test_admin_market_data_pages_load(staff):
    for url in [
        "/admin/marketdata/security/",
        "/admin/marketdata/security/?q=AAPL",
        "/admin/marketdata/dailyprice/",
        "/admin/marketdata/backfillprogress/",
        "/admin/marketdata/security/import/",
        "/admin/marketdata/dailyprice/export/",
    ]:
        assert staff.get(url).status_code == 200, url


def test_admin_prices_are_read_only(staff):
    price = DailyPrice.objects.first()
    assert staff.get("/admin/marketdata/dailyprice/add/").status_code == 403
    page = staff.get(f"/admin/marketdata/dailyprice/{price.pk}/change/")
    assert page.status_code == 200
    assert b'name="_save"' not in page.content
    assert (
        staff.post(f"/admin/marketdata/dailyprice/{price.pk}/delete/", {"post": "yes"}).status_code
        == 403
    )
    assert DailyPrice.objects.filter(pk=price.pk).exists()


def test_admin_exports_prices_as_csv(staff):
    columns = [
        "symbol",
        "date",
        "open",
        "high",
        "low",
        "close",
        "volume",
        "adjusted_close",
        "source",
    ]
    form = {"format": "0", "resource": "0", **{f"dailypriceresource_{c}": "on" for c in columns}}
    response = staff.post("/admin/marketdata/dailyprice/export/", form)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    lines = response.content.decode().splitlines()
    assert lines[0] == ",".join(columns)
    assert len(lines) == 1 + DailyPrice.objects.count()
    assert any(line.startswith("AAPL,2026-11-06,") for line in lines)


def test_admin_price_upload_goes_through_the_validating_service(staff):
    from django.core.files.uploadedfile import SimpleUploadedFile

    page = staff.get("/admin/marketdata/dailyprice/")
    assert b"Upload price CSV" in page.content and b"Export" in page.content
    before = DailyPrice.objects.count()
    bad = SimpleUploadedFile(
        "p.csv", b"symbol,date,open,high,low,close,volume\nKO,2024-11-28,1,2,1,1.5,10\n"
    )
    response = staff.post("/admin/marketdata/dailyprice/upload/", {"file": bad})
    assert response.status_code == 200
    assert b"not an NYSE session" in response.content
    assert DailyPrice.objects.count() == before
    good = SimpleUploadedFile(
        "p.csv", b"symbol,date,open,high,low,close,volume\nKO,2024-11-27,1,2,1,1.5,10\n"
    )
    response = staff.post("/admin/marketdata/dailyprice/upload/", {"file": good})
    assert response.status_code == 302
    assert DailyPrice.objects.get(security__symbol="KO").source == "csv"


def test_admin_price_upload_needs_the_add_permission(client):
    client.force_login(UserFactory(is_staff=True))
    assert client.get("/admin/marketdata/dailyprice/upload/").status_code == 403


def test_admin_price_upload_warns_about_the_sessions_the_file_lacks(staff):
    from django.core.files.uploadedfile import SimpleUploadedFile

    file = SimpleUploadedFile(
        "p.csv",
        b"symbol,date,open,high,low,close,volume\n"
        b"KO,2024-11-22,1,2,1,1.5,10\nKO,2024-11-27,1,2,1,1.5,10\n",
    )
    response = staff.post("/admin/marketdata/dailyprice/upload/", {"file": file}, follow=True)
    shown = [(m.level_tag, m.message) for m in response.context["messages"]]
    assert ("success", "imported 2 price rows") in shown
    assert (
        "warning",
        "KO: 2 sessions missing between 2024-11-22 and 2024-11-27: 2024-11-25, 2024-11-26",
    ) in shown
