"""The book's admin: tag and portfolio imports and exports, and strategies (detected ones are
read-only, a user's are edited and added), through the library's real two-step flow."""

from __future__ import annotations

import csv
import html
import io
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from marketdata.symbols import build_occ
from portfolios.models import Portfolio, Strategy, Tag
from portfolios.tests.factories import stock
from portfolios.tests.helpers import (
    ADMIN,
    admin_snapshot,
    confirm,
    preview,
)

if TYPE_CHECKING:
    pass

pytestmark = pytest.mark.django_db

EXP = date(2027, 1, 15)
CALL = build_occ("AAPL", EXP, "C", Decimal("200"))


def tag_file(*rows: str) -> SimpleUploadedFile:
    raw = "\n".join(["owner_email,name,color,description", *rows]) + "\n"
    return SimpleUploadedFile("tags.csv", raw.encode(), "text/csv")


def test_admin_tag_import_refuses_a_case_insensitive_duplicate(staff, book):
    email = book["owner"].email.upper()
    before = admin_snapshot()
    page = preview(
        staff,
        "tag",
        tag_file(f"{email},tech,#FF0000,", f"{email},Alpha,#00FF00,", f"{email},ALPHA,,"),
    )
    assert page.status_code == 200
    result = page.context["result"]
    assert [row.number for row in result.invalid_rows] == [1, 3]
    content = html.unescape(page.content.decode())
    assert "You already have a tag named 'tech'." in content
    assert "You already have a tag named 'ALPHA'." in content
    assert 'name="import_file_name"' not in content
    assert admin_snapshot() == before


def test_admin_tag_import_creates_and_updates(staff, book):
    email = book["owner"].email
    page = preview(
        staff, "tag", tag_file(f"{email},Tech,#FF0000,Technology", f"{email},Value,,Cheap")
    )
    assert [r.import_type for r in page.context["result"].rows] == ["update", "new"]
    assert confirm(staff, "tag", page).status_code == 302
    tags = {t.name: t for t in Tag.objects.filter(owner=book["owner"])}
    assert (tags["Tech"].pk, tags["Tech"].color) == (book["tech"].pk, "#FF0000")
    assert (tags["Value"].color, tags["Value"].description) == ("#4A90D9", "Cheap")


def test_admin_tag_import_refuses_an_unknown_owner(staff, book):
    page = preview(staff, "tag", tag_file("nobody@example.com,Tech,,"))
    assert page.status_code == 200
    assert "There is no user with the email nobody@example.com." in page.content.decode()
    assert not Tag.objects.filter(name="Tech").exclude(pk=book["tech"].pk).exists()


def test_admin_portfolio_import_and_export(staff, book):
    owner = book["owner"]
    raw = (
        "id,owner_email,name,description,base_currency,cash\n"
        f",{owner.email},Income,,EUR,2500.00\n"
        f"{book['core'].pk},{owner.email},Core,Main book,USD,1000.00\n"
    )
    page = preview(staff, "portfolio", SimpleUploadedFile("p.csv", raw.encode(), "text/csv"))
    assert [r.import_type for r in page.context["result"].rows] == ["new", "update"]
    assert confirm(staff, "portfolio", page).status_code == 302
    income = Portfolio.objects.get(owner=owner, name="Income")
    assert (income.base_currency, income.cash) == ("EUR", Decimal("2500.00"))
    assert Portfolio.objects.get(pk=book["core"].pk).description == "Main book"

    response = staff.post(
        f"{ADMIN}/portfolio/export/",
        {
            "format": "0",
            "resource": "0",
            **{
                f"portfolioresource_{c}": "on"
                for c in ["id", "owner_email", "name", "description", "base_currency", "cash"]
            },
        },
    )
    lines = response.content.decode().splitlines()
    assert lines[0] == "id,owner_email,name,description,base_currency,cash"
    assert f"{income.pk},{owner.email},Income,,EUR,2500.00" in lines


def test_admin_portfolio_import_refuses_a_duplicate_name(staff, book):
    raw = (
        f"id,owner_email,name,description,base_currency,cash\n,{book['owner'].email},Core,,USD,0\n"
    )
    page = preview(staff, "portfolio", SimpleUploadedFile("p.csv", raw.encode(), "text/csv"))
    assert page.status_code == 200
    assert page.context["result"].has_validation_errors()
    assert Portfolio.objects.filter(name="Core").count() == 1


# Strategies -----------------------------------------------------------------------------------------
def test_admin_detected_strategies_cannot_be_edited(staff, book):
    detected = book["detected"]
    name = detected.name
    url = f"{ADMIN}/strategy/{detected.pk}/change/"
    page = staff.get(url)
    assert page.status_code == 200 and b'name="_save"' not in page.content
    response = staff.post(url, {"name": "Renamed", "kind": "custom"})
    assert response.status_code == 403
    assert staff.post(f"{ADMIN}/strategy/{detected.pk}/delete/", {"post": "yes"}).status_code == 403
    detected.refresh_from_db()
    assert (detected.name, detected.kind, detected.is_detected) == (name, "covered_call", True)


def test_admin_user_strategies_can_be_edited(staff, book):
    strategy = book["user_strategy"]
    url = f"{ADMIN}/strategy/{strategy.pk}/change/"
    assert b'name="_save"' in staff.get(url).content
    long_aapl, msft = book["aapl"], book["msft"]

    refused = staff.post(
        url, {"name": "Pair", "kind": "pairs", "positions": [long_aapl.pk, msft.pk]}
    )
    assert refused.status_code == 200
    assert "A pairs trade is one long and one short position." in refused.content.decode()

    other = stock(book["hedge"], "KO", "10")
    refused = staff.post(url, {"name": "Mixed", "kind": "custom", "positions": [other.pk]})
    assert "not in the portfolio Core" in refused.content.decode()

    saved = staff.post(url, {"name": "Renamed", "kind": "custom", "positions": [long_aapl.pk]})
    assert saved.status_code == 302
    strategy.refresh_from_db()
    assert strategy.name == "Renamed" and list(strategy.positions.all()) == [long_aapl]


def test_admin_user_strategy_can_be_added(staff, book):
    aapl, call = book["aapl"], book["call"]
    response = staff.post(
        f"{ADMIN}/strategy/add/",
        {
            "portfolio": book["core"].pk,
            "name": "Hedged",
            "kind": "custom",
            "positions": [aapl.pk, call.pk],
        },
    )
    assert response.status_code == 302
    added = Strategy.objects.get(name="Hedged")
    assert (added.is_detected, added.kind) == (False, "custom")
    assert set(added.positions.all()) == {aapl, call}


def test_admin_strategy_export_lists_positions(staff, book):
    columns = ["id", "portfolio", "name", "kind", "is_detected", "positions"]
    form = {"format": "0", "resource": "0", **{f"strategyresource_{c}": "on" for c in columns}}
    response = staff.post(f"{ADMIN}/strategy/export/", form)
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    mine = next(r for r in rows if r["name"] == "Mine")
    assert mine["positions"] == f"{book['aapl'].pk},{book['msft'].pk}"
