"""The book's admin: pages, query counts, and imports through the library's real two-step flow.

The import tests post the forms of django-import-export 4.4.3 as a browser does: the import form
(`resource`, `import_file`, `format`, the format's value read from the rendered page), then the
confirm form with the hidden fields read back from the preview page.
"""

from __future__ import annotations

import csv
import html
import io
import re
from datetime import date, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

import pytest
from django.contrib.admin.models import LogEntry
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from marketdata.symbols import build_occ
from portfolios.models import Portfolio, Position, PositionTag, Strategy, Tag
from portfolios.position_csv import COLUMNS
from portfolios.services import strategies_refresh
from portfolios.tests.factories import PortfolioFactory, TagFactory, stock
from portfolios.tests.helpers import (
    ADMIN,
    IMPORT_HEADER,
    admin_snapshot,
    as_file,
    confirm,
    preview,
    problems,
)
from sigmasight.accounts.tests.factories import UserFactory

if TYPE_CHECKING:
    pass

pytestmark = pytest.mark.django_db

EXP = date(2027, 1, 15)
CALL = build_occ("AAPL", EXP, "C", Decimal("200"))


# Pages and query counts ------------------------------------------------------------------------
def test_admin_book_pages_load(staff, book):
    """Every page of the book's admin loads and shows what it is about: a changelist (searched or
    filtered) exactly the rows it should list, with their count and columns; a change page its
    object; an import or export page its formats. Staff see every owner's book, a second user's
    too."""
    core, aapl, owner = book["core"], book["aapl"], book["owner"]
    lots = [book[key] for key in ("aapl", "call", "msft", "closed")]
    theirs = PortfolioFactory(name="Theirs")  # a second user's book
    their_lot = stock(theirs, "KO", "5")
    their_tag = TagFactory(owner=theirs.owner, name="Staples")
    strategies = list(Strategy.objects.order_by("id"))
    # The rows each changelist lists, in the admin's order, and text its page shows.
    lists = {
        f"{ADMIN}/portfolio/": (
            [core, book["hedge"], theirs],
            [
                "3 portfolios",
                ">Core</a>",
                ">Theirs</a>",
                owner.email,
                theirs.owner.email,
                "column-position_count",
                '<td class="field-position_count">3</td>',
            ],
        ),
        f"{ADMIN}/portfolio/?q={owner.email}": ([core, book["hedge"]], ["2 portfolios"]),
        f"{ADMIN}/position/": (
            [*lots, their_lot],
            [
                "5 positions",
                ">AAPL</a>",
                f">{book['call'].symbol}</a>",
                ">KO</a>",
                "column-owner_email",
                theirs.owner.email,
            ],
        ),
        f"{ADMIN}/position/?q=Core": (lots, ["4 positions", owner.email]),
        f"{ADMIN}/position/?position_type__exact=SC": (
            [book["call"]],
            ["1 position", "Short call"],
        ),
        f"{ADMIN}/position/?portfolio__owner__id__exact={owner.pk}": (lots, ["4 positions"]),
        f"{ADMIN}/position/?expiration__isnull=False": ([book["call"]], ["Jan. 15, 2027"]),
        f"{ADMIN}/tag/": ([book["tech"], their_tag], ["2 tags", ">Tech</a>", ">Staples</a>"]),
        f"{ADMIN}/tag/?q=tech": ([book["tech"]], ["1 tag", owner.email]),
        f"{ADMIN}/strategy/": (strategies, [f"{len(strategies)} strategies", ">Mine</a>"]),
        f"{ADMIN}/strategy/?is_detected__exact=1&kind__exact=covered_call": (
            [book["detected"]],
            [f">{book['detected'].name}</a>"],
        ),
    }
    formats = ['<option value="0">csv</option>', '<option value="1">xlsx</option>']
    pages = {
        f"{ADMIN}/portfolio/{core.pk}/change/": ["<title>Core | Change portfolio", 'value="Core"'],
        f"{ADMIN}/position/{aapl.pk}/change/": ["<title>AAPL 300.000000 | View position"],
        f"{ADMIN}/tag/{book['tech'].pk}/change/": ['value="Tech"'],
        f"{ADMIN}/strategy/{book['detected'].pk}/change/": [f"<title>{book['detected']} | View"],
        f"{ADMIN}/strategy/{book['user_strategy'].pk}/change/": ['value="Mine"'],
        f"{ADMIN}/strategy/add/": ["<title>Add strategy", 'name="name"'],
        **{
            f"{ADMIN}/{model}/import/": [*formats, 'name="import_file"']
            for model in ("portfolio", "position", "tag")
        },
        **{
            f"{ADMIN}/{model}/export/": ["<title>Export |", *formats]
            for model in ("portfolio", "position", "tag", "strategy")
        },
    }
    assert len(lists) + len(pages) == 24
    for url, (rows, shown) in lists.items():
        page = staff.get(url)
        assert page.status_code == 200, url
        assert list(page.context["cl"].result_list) == rows, url
        for text in shown:
            assert text in page.content.decode(), (url, text)
    for url, shown in pages.items():
        page = staff.get(url)
        assert page.status_code == 200, url
        for text in shown:
            assert text in page.content.decode(), (url, text)


def test_admin_portfolio_changelist(client, user, other_user):
    """Staff see every user's portfolios; their owners, who are not staff, see the admin login."""
    mine = PortfolioFactory(owner=user, name="Mine")
    yours = PortfolioFactory(owner=other_user, name="Yours")
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    page = client.get(f"{ADMIN}/portfolio/")
    assert page.status_code == 200
    assert list(page.context["cl"].result_list) == [mine, yours]
    html = page.content.decode()
    assert ">Mine</a>" in html and ">Yours</a>" in html
    assert user.email in html and other_user.email in html
    for owner in (user, other_user):
        client.force_login(owner)
        refused = client.get(f"{ADMIN}/portfolio/")
        assert refused.status_code == 302
        assert refused["Location"].startswith("/admin/login/")


def test_admin_portfolio_page_shows_open_positions_inline(staff, book):
    page = staff.get(f"{ADMIN}/portfolio/{book['core'].pk}/change/").content.decode()
    assert "open positions" in page.lower()
    assert f"{ADMIN}/position/{book['aapl'].pk}/change/" in page
    assert f"{ADMIN}/position/{book['closed'].pk}/change/" not in page


def add_books(count: int) -> None:
    """`count` owners, each with a portfolio, a tag, a tagged lot and its strategies."""
    for _ in range(count):
        portfolio = PortfolioFactory()
        position = stock(portfolio, "AAPL", "100")
        PositionTag.objects.create(position=position, tag=TagFactory(owner=portfolio.owner))
        strategies_refresh(portfolio=portfolio)
        Strategy.objects.create(
            portfolio=portfolio, name="Mine", kind="custom", is_detected=False
        ).positions.add(position)


@pytest.mark.parametrize("model", ["portfolio", "position", "tag", "strategy"])
def test_admin_changelist_queries_do_not_grow_with_rows(
    staff, django_assert_max_num_queries, model
):
    add_books(5)
    with CaptureQueriesContext(connection) as five:
        assert staff.get(f"{ADMIN}/{model}/").status_code == 200
    add_books(45)
    with django_assert_max_num_queries(len(five)):
        page = staff.get(f"{ADMIN}/{model}/")
    assert page.context["cl"].result_count >= 50


def test_admin_portfolio_page_queries_do_not_grow_with_positions(
    staff, django_assert_max_num_queries
):
    portfolio = PortfolioFactory()
    first = date(2023, 1, 2)
    for day in range(5):
        stock(portfolio, "AAPL", "10", entry_date=first + timedelta(days=day))
    url = f"{ADMIN}/portfolio/{portfolio.pk}/change/"
    with CaptureQueriesContext(connection) as five:
        assert staff.get(url).status_code == 200
    for day in range(5, 50):
        stock(portfolio, "AAPL", "10", entry_date=first + timedelta(days=day))
    with django_assert_max_num_queries(len(five)):
        page = staff.get(url)
    assert page.content.decode().count("inlineviewlink") == 50


# Position import ---------------------------------------------------------------------------------
def good_rows(book: dict, kind: str) -> list[list[object]]:
    """Three new lots and an update of MSFT; spreadsheet types for XLSX, as a user's sheet has."""
    core, hedge = book["core"].pk, book["hedge"].pk

    def day(text: str) -> object:
        return date.fromisoformat(text) if kind == "xlsx" else text

    return [
        [
            core,
            "aapl",
            100,
            150.5,
            day("2024-01-02"),
            None,
            None,
            None,
            None,
            "tech;Core",
            "custom:Income",
            "first lot",
        ],
        [core, CALL, -1, 5.25, day("2024-01-03"), None, None, None, None, None, "Income", None],
        [core, "MSFT", -50, 310, day("2024-02-01"), None, None, None, None, None, None, None],
        [
            hedge,
            "SPY",
            2,
            7.5,
            day("2024-01-04"),
            None,
            "P",
            400,
            day("2027-01-15"),
            "Core",
            None,
            "+hedge",
        ],
    ]


@pytest.mark.parametrize("kind", ["csv", "xlsx"])
def test_admin_position_import_previews_then_stores_through_the_service(staff, book, kind):
    before = admin_snapshot()
    page = preview(staff, "position", as_file(kind, good_rows(book, kind)), kind)

    assert page.status_code == 200
    result = page.context["result"]
    assert not result.has_errors() and not result.has_validation_errors()
    assert [r.import_type for r in result.rows] == ["new", "new", "update", "new"]
    content = page.content.decode()
    assert content.count('<tr class="new">') == 3 and content.count('<tr class="update">') == 1
    assert CALL in content and build_occ("SPY", EXP, "P", Decimal(400)) in content
    assert 'name="import_file_name"' in content
    assert admin_snapshot() == before, "the preview wrote something"

    logged = LogEntry.objects.count()
    response = confirm(staff, "position", page)
    assert response.status_code == 302
    done = staff.get(response["Location"])
    assert "Import finished: 3 new, 1 updated" in done.content.decode()
    assert LogEntry.objects.count() == logged + 4

    core, hedge, owner = book["core"], book["hedge"], book["owner"]
    lots = {p.symbol: p for p in core.positions.filter(closed_at__isnull=True)}
    assert set(lots) == {"AAPL", CALL, "MSFT"} | {book["call"].symbol}
    aapl = core.positions.get(symbol="AAPL", entry_date=date(2024, 1, 2))
    assert (aapl.position_type, aapl.quantity, aapl.multiplier) == ("LONG", 100, 1)
    assert aapl.security.symbol == "AAPL" and aapl.notes == "first lot"
    call = lots[CALL]
    assert (call.position_type, call.multiplier, call.underlying_symbol) == ("SC", 100, "AAPL")
    assert (call.option_type, call.strike, call.expiration) == ("C", Decimal(200), EXP)
    msft = core.positions.get(symbol="MSFT")
    assert msft.pk == book["msft"].pk and (msft.quantity, msft.position_type) == (-50, "SHORT")
    put = hedge.positions.get()
    assert (put.symbol, put.position_type, put.multiplier) == (
        build_occ("SPY", EXP, "P", Decimal(400)),
        "LP",
        100,
    )
    assert put.notes == "+hedge"
    # Tags by name per owner: "tech" is the owner's existing "Tech"; "Core" is created once.
    assert sorted(Tag.objects.filter(owner=owner).values_list("name", flat=True)) == [
        "Core",
        "Tech",
    ]
    assert sorted(t.name for t in aapl.tags.all()) == ["Core", "Tech"]
    income = Strategy.objects.get(portfolio=core, name="Income")
    assert (income.kind, income.is_detected) == ("custom", False)
    assert set(income.positions.all()) == {aapl, call}
    detected = Strategy.objects.filter(portfolio=core, is_detected=True)
    assert detected.filter(kind="covered_call", positions=call).exists()
    assert Strategy.objects.filter(portfolio=hedge, is_detected=True).exists()


def test_admin_position_import_refuses_a_bad_file_with_its_row_errors(staff, book):
    core = book["core"].pk
    rows = [
        [core, "AAPL", "10", "150", "2024-01-02", "", "", "", "", "", "", ""],
        [core, "MSFT", "0", "300", "2024-01-02", "", "", "", "", "", "", ""],
        [core, "AAPL251317C00200000", "1", "3", "2024-01-02", "", "", "", "", "", "", ""],
        ["999999", "TSLA", "5", "200", "2024-01-02", "", "", "", "", "", "", ""],
        [core, "aapl", "3", "150", "2024-01-02", "", "", "", "", "", "", ""],
    ]
    before = admin_snapshot()
    page = preview(staff, "position", as_file("csv", rows))

    assert page.status_code == 200
    assert problems(page) == {(3, "quantity"), (4, "symbol"), (5, "portfolio"), (6, "symbol")}
    content = html.unescape(page.content.decode())
    assert "The file has 4 problems; nothing was written." in content
    assert "The quantity cannot be zero" in content
    assert "'AAPL251317C00200000': '251317' is not a real expiration date." in content
    assert "There is no portfolio 999999." in content
    assert "AAPL entered 2024-01-02 already appears in row 2." in content
    assert 'name="import_file_name"' not in content
    assert admin_snapshot() == before


def test_admin_position_import_refuses_a_file_without_a_portfolio_column(staff, book):
    upload = as_file("csv", [["AAPL", "10", "150", "2024-01-02"]], header=COLUMNS[:4])
    page = preview(staff, "position", upload)
    assert page.status_code == 200
    assert problems(page) == {(1, "portfolio")}
    assert "Required column &#x27;portfolio&#x27; is missing." in page.content.decode()


def test_admin_position_import_reports_what_only_the_service_checks(staff, book):
    """The per-user tag limit is the service's: the preview runs it and rolls everything back."""
    core, hedge = book["core"].pk, book["hedge"].pk
    rows = [
        [core, "AAPL", "10", "150", "2024-01-02", "", "", "", "", "one", "", ""],
        [hedge, "MSFT", "10", "300", "2024-01-02", "", "", "", "", "two", "", ""],
    ]
    before = admin_snapshot()
    with override_settings(SIGMASIGHT_MAX_TAGS_PER_USER=2):
        page = preview(staff, "position", as_file("csv", rows))
    assert problems(page) == {(3, "tags")}
    assert "would exceed the limit of 2 tags per user" in html.unescape(page.content.decode())
    assert admin_snapshot() == before


def test_admin_position_import_confirm_refused_when_the_book_changed(staff, book):
    rows = good_rows(book, "csv")
    page = preview(staff, "position", as_file("csv", rows))
    assert 'name="import_file_name"' in page.content.decode()
    Portfolio.objects.filter(pk=book["hedge"].pk).delete()
    before = admin_snapshot()

    response = confirm(staff, "position", page)

    assert response.status_code == 200
    assert problems(response) == {(5, "portfolio")}
    assert "Nothing was imported" in response.content.decode()
    assert admin_snapshot() == before


def test_admin_position_export_is_the_upload_layout(staff, book):
    response = staff.post(f"{ADMIN}/position/export/", {"format": "0", "resource": "0"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    core = book["core"].pk
    assert rows[0] == IMPORT_HEADER
    assert rows[1:] == [
        [str(core), "AAPL", "300", "100", "2023-06-01", "", "", "", "", "Tech", "custom:Mine", ""],
        [
            str(core),
            book["call"].symbol,
            "-2",
            "5",
            "2023-06-01",
            "AAPL",
            "C",
            "250",
            "2027-01-15",
            "",
            "",
            "",
        ],
        [str(core), "MSFT", "10", "100", "2024-02-01", "", "", "", "", "", "custom:Mine", ""],
    ]


@pytest.mark.parametrize("kind", ["csv", "xlsx"])
def test_admin_position_export_imports_back_unchanged(staff, book, kind):
    page = staff.get(f"{ADMIN}/position/export/").content.decode()
    match = re.search(rf'<option value="(\d+)">{kind}</option>', page)
    assert match is not None
    value = match[1]
    response = staff.post(f"{ADMIN}/position/export/", {"format": value, "resource": "0"})
    assert response.status_code == 200
    before = admin_snapshot()

    upload = SimpleUploadedFile(f"export.{kind}", response.content, "application/octet-stream")
    page = preview(staff, "position", upload, kind)
    assert [r.import_type for r in page.context["result"].rows] == ["update"] * 3
    assert confirm(staff, "position", page).status_code == 302
    assert admin_snapshot() == before


def test_admin_position_delete_refreshes_detected_strategies(staff, book):
    call = book["call"]
    response = staff.post(f"{ADMIN}/position/{call.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not Position.objects.filter(pk=call.pk).exists()
    assert not Strategy.objects.filter(portfolio=book["core"], kind="covered_call").exists()
    assert Strategy.objects.filter(portfolio=book["core"], kind="single").count() == 2


def test_admin_positions_are_written_only_by_import(staff, book):
    assert staff.get(f"{ADMIN}/position/add/").status_code == 403
    aapl = book["aapl"]
    page = staff.get(f"{ADMIN}/position/{aapl.pk}/change/")
    assert b'name="_save"' not in page.content
    staff.post(f"{ADMIN}/position/{aapl.pk}/change/", {"quantity": "1"})
    aapl.refresh_from_db()
    assert aapl.quantity == 300


# Tags and portfolios ------------------------------------------------------------------------------
