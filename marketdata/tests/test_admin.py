from __future__ import annotations

from datetime import date

import pytest

from marketdata.models import BackfillProgress, DailyPrice
from marketdata.providers.synthetic import SyntheticProvider
from marketdata.services import prices_fetch_and_cache
from sigmasight.accounts.tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    prices_fetch_and_cache(
        symbols=["AAPL", "US10Y"],
        start=date(2026, 11, 2),
        end=date(2026, 11, 6),
        providers=[SyntheticProvider()],
    )
    return client


def test_admin_market_data_pages_load(staff):
    """Each page loads and shows what it is about: the securities the fetch made (searched
    too), their closes newest first, a backfill's progress, the formats of import and export."""
    progress = BackfillProgress.objects.create(
        symbol="MSFT",
        start=date(2026, 1, 2),
        end=date(2026, 11, 6),
        status="done",
        source="polygon",
    )
    aapl_close = DailyPrice.objects.get(security__symbol="AAPL", date=date(2026, 11, 6)).close
    formats = ['<option value="0">csv</option>', '<option value="1">xlsx</option>']
    # The rows each changelist lists, in the admin's order (None: not a changelist), and text
    # the page shows.
    pages = {
        "/admin/marketdata/security/": (
            ["AAPL", "US10Y"],
            ["2 securities", ">AAPL</a>", ">US10Y</a>", "column-asset_type"],
        ),
        "/admin/marketdata/security/?q=AAPL": (["AAPL"], ["1 security"]),
        "/admin/marketdata/dailyprice/": (
            [("AAPL", date(2026, 11, 6)), ("US10Y", date(2026, 11, 6))],
            ["column-close", "column-source", f"{aapl_close}", "synthetic", "Nov. 6, 2026"],
        ),
        "/admin/marketdata/backfillprogress/": (
            [progress],
            ["1 backfill progress", ">MSFT</a>", "Done", "polygon"],
        ),
        "/admin/marketdata/security/import/": (None, [*formats, 'name="import_file"']),
        "/admin/marketdata/dailyprice/export/": (None, ["<title>Export |", *formats]),
    }
    for url, (rows, shown) in pages.items():
        page = staff.get(url)
        assert page.status_code == 200, url
        for text in shown:
            assert text in page.content.decode(), (url, text)
        if rows is None:
            continue
        listed = list(page.context["cl"].result_list)
        if url.startswith("/admin/marketdata/security/"):
            listed = [security.symbol for security in listed]
        elif url == "/admin/marketdata/dailyprice/":
            assert len(listed) == DailyPrice.objects.count() == 10  # 2 series, 5 sessions
            listed = [(price.security.symbol, price.date) for price in listed[:2]]
        assert listed == rows, url


def test_admin_prices_are_read_only(staff):
    price = DailyPrice.objects.first()
    assert price is not None
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


def test_admin_lists_dividend_yields_to_staff_and_refuses_others(staff):
    from django.test import Client

    from marketdata.models import DividendYield
    from marketdata.services import dividend_yields_fetch_and_cache

    dividend_yields_fetch_and_cache(
        symbols=["KO", "AMZN"], as_of=date(2026, 11, 6), providers=[SyntheticProvider()]
    )
    page = staff.get("/admin/marketdata/dividendyield/")
    assert page.status_code == 200
    listed = [(y.security.symbol, y.dividend_yield) for y in page.context["cl"].result_list]
    assert listed == [("AMZN", 0.0), ("KO", 0.029)]
    for text in [
        "2 dividend yields",
        "column-dividend_yield",
        "0.029",
        "synthetic",
        "Nov. 6, 2026",
    ]:
        assert text in page.content.decode(), text
    searched = staff.get("/admin/marketdata/dividendyield/?q=KO")
    assert [y.security.symbol for y in searched.context["cl"].result_list] == ["KO"]
    columns = ["symbol", "date", "dividend_yield", "source"]
    form = {"format": "0", "resource": "0", **{f"dividendyieldresource_{c}": "on" for c in columns}}
    export = staff.post("/admin/marketdata/dividendyield/export/", form)
    assert export.content.decode().splitlines() == [
        "symbol,date,dividend_yield,source",
        "AMZN,2026-11-06,0.0,synthetic",
        "KO,2026-11-06,0.029,synthetic",
    ]

    outsider = Client()
    outsider.force_login(UserFactory(is_staff=False))
    refused = outsider.get("/admin/marketdata/dividendyield/")
    assert refused.status_code == 302
    assert refused["Location"].startswith("/admin/login/")
    assert DividendYield.objects.count() == 2


def test_admin_dividend_yield_import_is_checked_by_the_model(staff):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from marketdata.models import DividendYield

    def upload(text: bytes):
        file = SimpleUploadedFile("yields.csv", text, content_type="text/csv")
        form = {"resource": "0", "format": "0", "import_file": file}
        return staff.post("/admin/marketdata/dividendyield/import/", form)

    # Not a decimal yield: the model's constraint refuses the row, and so the whole file.
    page = upload(b"symbol,date,dividend_yield\nAAPL,2026-11-06,0.005\nAAPL,2026-11-09,1.5\n")
    assert page.status_code == 200
    assert (
        "A dividend yield is a decimal from 0 to below 1 (0.031 is 3.1%)." in page.content.decode()
    )
    assert b'name="original_file_name"' not in page.content  # nothing to confirm
    assert not DividendYield.objects.exists()

    page = upload(b"symbol,date,dividend_yield\nAAPL,2026-11-06,0.005\n")
    assert b'name="original_file_name"' in page.content
    confirm = {
        name: page.context["confirm_form"][name].value()
        for name in page.context["confirm_form"].fields
    }
    done = staff.post("/admin/marketdata/dividendyield/process_import/", confirm)
    assert done.status_code == 302
    assert list(DividendYield.objects.values_list("dividend_yield", "source")) == [(0.005, "csv")]
