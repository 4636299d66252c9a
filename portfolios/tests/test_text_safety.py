"""User text in the book's files and forms: the export rule and the control-character rule.

Every writer gets names starting with = + - @, a tab or a carriage return and the produced file
is read back (csv module; openpyxl for XLSX: no formula cell, text starts with an apostrophe,
numbers are numbers). Control characters are refused with a 400 naming the field at each API
entry point, in a CSV upload row and in an admin form; an XLSX download of rows stored with
control characters before the rule still succeeds.
"""

from __future__ import annotations

import csv
import io
from datetime import date
from decimal import Decimal

import openpyxl
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from portfolios.models import Portfolio, Position, PositionTag, Strategy, Tag
from portfolios.position_csv import COLUMNS
from portfolios.tests.factories import PortfolioFactory, TagFactory, stock
from portfolios.tests.helpers import ADMIN, confirm, preview
from sigmasight.accounts.tests.factories import UserFactory
from sigmasight.tests.helpers import assert_envelope

pytestmark = pytest.mark.django_db

API = "/api/v1"
CONTROL = "bad\x1a\x06name"
DANGEROUS = [
    '=HYPERLINK("http://evil.example","open")',
    "@SUM(1+1)",
    "+cmd|' /C calc'!A0",
    "-2+3",
    "\t=1+1",
    "\r=1+1",
]
FORMULA_ONLY = DANGEROUS[:4]  # a tag may not hold a tab or a carriage return, so these round-trip
SYMBOLS = ["AAPL", "MSFT", "JPM", "XOM", "NVDA", "KO"]
FORMATS = {"csv": "0", "xlsx": "1"}
EXPORT_COLUMNS = {
    "portfolio": ["id", "owner_email", "name", "description", "base_currency", "cash"],
    "tag": ["owner_email", "name", "color", "description"],
}


@pytest.fixture
def staff(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def dangerous_book(owner, names: list[str]) -> Portfolio:
    """A lot per name: short 5 shares, the name as its notes and as its one tag."""
    book = PortfolioFactory(owner=owner)
    for n, (symbol, text) in enumerate(zip(SYMBOLS, names, strict=False)):
        lot = stock(book, symbol, "-5", notes=text, entry_date=date(2024, 1, 2 + n))
        PositionTag.objects.create(position=lot, tag=Tag.objects.create(owner=owner, name=text))
    return book


def post_csv(client, portfolio: Portfolio, raw: bytes):
    upload = SimpleUploadedFile("positions.csv", raw, content_type="text/csv")
    return client.post(
        f"{API}/portfolios/{portfolio.pk}/upload/",
        {"file": upload, "mode": "append"},
        format="multipart",
    )


# The position export --------------------------------------------------------------------------
def test_position_export_neutralises_text_and_keeps_numbers(auth_client, user):
    book = dangerous_book(user, DANGEROUS)
    response = auth_client.get(f"{API}/portfolios/{book.pk}/export/", {"format": "csv"})
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(response.content.decode(), newline="")))
    assert [r["notes"] for r in rows] == ["'" + text for text in DANGEROUS]
    assert [r["tags"] for r in rows] == ["'" + text for text in DANGEROUS]
    assert {r["quantity"] for r in rows} == {"-5"}  # a number, not text: never escaped


def test_position_export_of_formula_text_imports_back_unchanged(auth_client, user):
    book = dangerous_book(user, FORMULA_ONLY)
    stock(book, "KO", "3", notes="\r=1+1", entry_date=date(2024, 2, 1))
    stock(book, "PEP", "-3", notes="\t=1+1\nsecond line", entry_date=date(2024, 2, 1))
    exported = auth_client.get(f"{API}/portfolios/{book.pk}/export/").content
    target = PortfolioFactory(owner=user)
    response = post_csv(auth_client, target, exported)
    assert response.status_code == 200, response.content

    def contents(portfolio: Portfolio) -> list[tuple]:
        lots = portfolio.positions.prefetch_related("tags").order_by("symbol")
        return [(p.symbol, p.quantity, p.notes, [t.name for t in p.tags.all()]) for p in lots]

    assert contents(target) == contents(book)


# Control characters in the position CSV ---------------------------------------------------------
def csv_rows(*records: dict[str, str]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, COLUMNS, lineterminator="\n")
    writer.writeheader()
    for record in records:
        writer.writerow(
            {"symbol": "AAPL", "quantity": "1", "entry_price": "1", "entry_date": "2024-01-02"}
            | record
        )
    return out.getvalue().encode()


@pytest.mark.parametrize(
    ("column", "text"),
    [
        ("tags", CONTROL),
        ("tags", "a\tb"),
        ("strategy", CONTROL),
        ("notes", CONTROL),
        ("notes", "nul-free but \x85 C1"),
    ],
)
def test_position_upload_refuses_control_characters_in_a_row(auth_client, user, column, text):
    portfolio = PortfolioFactory(owner=user)
    raw = csv_rows({"symbol": "MSFT"}, {column: text})
    error = assert_envelope(post_csv(auth_client, portfolio, raw), 400, "validation_error")
    problems = error["fields"]["rows"]
    assert [(p["row"], p["column"]) for p in problems] == [(3, column)]
    assert "Control characters are not allowed" in problems[0]["message"]
    assert not portfolio.positions.exists()


def test_position_upload_accepts_tabs_and_line_breaks_in_notes(auth_client, user):
    portfolio = PortfolioFactory(owner=user)
    response = post_csv(auth_client, portfolio, csv_rows({"notes": "a\tb\r\nc"}))
    assert response.status_code == 200, response.content
    assert portfolio.positions.get().notes == "a\tb\r\nc"


def test_position_upload_of_another_users_portfolio_is_404(other_client, user):
    portfolio = PortfolioFactory(owner=user)
    response = post_csv(other_client, portfolio, csv_rows({"notes": CONTROL}))
    assert_envelope(response, 404, "not_found")


# Control characters over the API ----------------------------------------------------------------
@pytest.fixture
def owned(user) -> dict:
    portfolio = PortfolioFactory(owner=user, name="Core", description="Main")
    lot = stock(portfolio, "AAPL", "10", notes="first")
    return {"portfolio": portfolio, "tag": TagFactory(owner=user, name="tech"), "lot": lot}


def requests(owned: dict) -> list[tuple[str, str, dict, str]]:
    """(method, url, body, the field named) for every entry point of the book's free text."""
    p, tag, lot = owned["portfolio"].pk, owned["tag"].pk, owned["lot"].pk
    position = {
        "portfolio": p,
        "symbol": "MSFT",
        "quantity": "-5",
        "entry_price": "10",
        "entry_date": "2024-01-02",
    }
    strategy = {"portfolio": p, "kind": "custom", "position_ids": [lot]}
    return [
        ("post", "/portfolios/", {"name": CONTROL}, "name"),
        ("post", "/portfolios/", {"name": "New", "description": "x\x07"}, "description"),
        ("patch", f"/portfolios/{p}/", {"name": CONTROL}, "name"),
        ("patch", f"/portfolios/{p}/", {"description": "x\x9b"}, "description"),
        ("post", "/tags/", {"name": CONTROL}, "name"),
        ("post", "/tags/", {"name": "new", "description": "x\x1b[31m"}, "description"),
        ("patch", f"/tags/{tag}/", {"name": "a\tb"}, "name"),
        ("post", "/strategies/", {**strategy, "name": CONTROL}, "name"),
        ("post", "/positions/", {**position, "notes": CONTROL}, "notes"),
        ("patch", f"/positions/{lot}/", {"notes": CONTROL}, "notes"),
    ]


def stored() -> list:
    return [
        sorted(Portfolio.objects.values_list("name", "description")),
        sorted(Tag.objects.values_list("name", "description")),
        sorted(Strategy.objects.values_list("name", flat=True)),
        sorted(Position.objects.values_list("symbol", "notes")),
    ]


def test_api_refuses_control_characters_naming_the_field(auth_client, owned):
    before = stored()
    for method, url, body, field in requests(owned):
        response = getattr(auth_client, method)(f"{API}{url}", body, format="json")
        error = assert_envelope(response, 400, "validation_error")
        assert field in error["fields"], (method, url, error)
        assert "Control characters are not allowed" in " ".join(error["fields"][field])
    assert stored() == before


def test_api_accepts_tabs_and_line_breaks_in_descriptions_and_notes(auth_client, owned):
    text = "line one\n\tline two\r\n"
    body = {"name": "Multi", "description": text}
    assert auth_client.post(f"{API}/portfolios/", body, format="json").status_code == 201
    assert auth_client.post(f"{API}/tags/", body, format="json").status_code == 201
    lot = owned["lot"].pk
    assert auth_client.patch(f"{API}/positions/{lot}/", {"notes": text}).status_code == 200
    assert Portfolio.objects.get(name="Multi").description == text.strip()


def test_api_control_characters_on_another_users_objects_are_404(other_client, owned):
    before = stored()
    for method, url, body, _ in requests(owned):
        if method == "patch":
            response = other_client.patch(f"{API}{url}", body, format="json")
            assert_envelope(response, 404, "not_found")
    assert stored() == before


# The admin --------------------------------------------------------------------------------------
@pytest.mark.parametrize(("field", "text"), [("name", CONTROL), ("description", "x\x00y")])
def test_admin_tag_form_refuses_control_characters(staff, field, text):
    tag = TagFactory(name="tech", description="ok")
    form = {"owner": tag.owner_id, "name": "tech", "color": "#4A90D9", "description": "ok"}
    response = staff.post(f"{ADMIN}/tag/{tag.pk}/change/", {**form, field: text})
    assert response.status_code == 200  # the form again, with its errors
    assert field in response.context["adminform"].form.errors
    tag.refresh_from_db()
    assert (tag.name, tag.description) == ("tech", "ok")


def admin_export(client, model: str, fmt: str):
    form = {"format": FORMATS[fmt], "resource": "0"}
    form |= {f"{model}resource_{c}": "on" for c in EXPORT_COLUMNS[model]}
    response = client.post(f"{ADMIN}/{model}/export/", form)
    assert response.status_code == 200, response.content[:500]
    return response.content


def read_back(content: bytes, fmt: str) -> list[dict[str, object]]:
    """The rows of a download; for XLSX, checks that no cell is a formula."""
    if fmt == "csv":
        return list(csv.DictReader(io.StringIO(content.decode(), newline="")))
    sheet = openpyxl.load_workbook(io.BytesIO(content)).active
    assert [c.coordinate for row in sheet.iter_rows() for c in row if c.data_type == "f"] == []
    header, *rows = list(sheet.iter_rows(values_only=True))
    return [dict(zip(header, row, strict=True)) for row in rows]


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_admin_portfolio_and_tag_downloads_neutralise_names(staff, fmt):
    owner = UserFactory()
    for text in DANGEROUS:
        PortfolioFactory(owner=owner, name=text, description=text, cash=Decimal("-5.00"))
        TagFactory(owner=owner, name=text, description=text)
    portfolios = read_back(admin_export(staff, "portfolio", fmt), fmt)
    assert [(r["name"], r["description"]) for r in portfolios] == [
        ("'" + text, "'" + text) for text in DANGEROUS
    ]
    cash = {r["cash"] for r in portfolios}
    assert cash == ({"-5.00"} if fmt == "csv" else {-5})  # XLSX: a number cell
    tags = read_back(admin_export(staff, "tag", fmt), fmt)
    assert [(r["name"], r["description"]) for r in tags] == [
        ("'" + text, "'" + text) for text in DANGEROUS
    ]


def test_admin_tag_download_imports_back_unchanged(staff):
    owner = UserFactory()
    for text in FORMULA_ONLY:
        TagFactory(owner=owner, name=text, description=text)
    before = sorted(Tag.objects.values_list("pk", "name", "description"))
    upload = SimpleUploadedFile("tags.csv", admin_export(staff, "tag", "csv"), "text/csv")
    page = preview(staff, "tag", upload)
    assert [r.import_type for r in page.context["result"].rows] == ["skip"] * 4  # unchanged
    assert confirm(staff, "tag", page).status_code == 302
    assert sorted(Tag.objects.values_list("pk", "name", "description")) == before


@pytest.mark.parametrize("model", ["portfolio", "tag"])
def test_admin_xlsx_download_survives_control_characters_already_stored(staff, model):
    stored_row = PortfolioFactory(name="ok") if model == "portfolio" else TagFactory(name="ok")
    type(stored_row).objects.filter(pk=stored_row.pk).update(
        name="bad\x1a\x06name", description="=x\x01\x85y"
    )
    rows = read_back(admin_export(staff, model, "xlsx"), "xlsx")
    assert [(r["name"], r["description"]) for r in rows] == [
        ("bad\ufffd\ufffdname", "'=x\ufffd\ufffdy")
    ]
