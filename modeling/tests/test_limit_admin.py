"""The limits admin: staff list, search, add, change and delete limits, checked as the API checks
them and audited; breaches are listed read-only; limits import from a CSV (previewed, then
confirmed) and export to one that imports back, and a file with one bad row writes nothing."""

from __future__ import annotations

import csv
import html
import io
import re
from datetime import date

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from modeling.models import Breach, Limit
from portfolios.tests.factories import PortfolioFactory
from sigmasight.accounts.tests.factories import UserFactory
from sigmasight.audit.models import AuditEvent
from stress.models import StressScenario

pytestmark = pytest.mark.django_db

ADMIN = "/admin/modeling"
HEADER = [
    "id",
    "owner_email",
    "portfolio",
    "name",
    "measure",
    "params",
    "bound",
    "unit",
    "warning",
    "hard",
    "is_active",
]


@pytest.fixture
def staff(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def owner():
    return UserFactory(email="pm@example.com")


@pytest.fixture
def book(owner):
    return PortfolioFactory(owner=owner, name="Core")


def _limit(owner, portfolio=None, **fields) -> Limit:
    values = {"measure": "gross_exposure", "unit": "money", "hard": 1_000_000.0, **fields}
    return Limit.objects.create(owner=owner, portfolio=portfolio, **values)


def _form(owner, portfolio=None, **fields) -> dict:
    return {
        "owner": owner.pk,
        "portfolio": portfolio.pk if portfolio else "",
        "name": "VaR",
        "measure": "var",
        "params": '{"confidence": 0.99}',
        "bound": "max",
        "unit": "share_of_equity",
        "warning": "0.04",
        "hard": "0.06",
        "is_active": "on",
        **fields,
    }


# --- pages, add, change, delete -----------------------------------------------------------------


def test_limit_admin_pages_list_and_search(staff, owner, book):
    named = _limit(owner, book, name="Gross cap")
    _limit(UserFactory(), None, measure="beta", unit="number", hard=1.5)

    page = staff.get(f"{ADMIN}/limit/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "Gross cap" in text and "2 limits" in text
    found = staff.get(f"{ADMIN}/limit/", {"q": "pm@example.com"}).content.decode()
    assert "Gross cap" in found and "1 limit" in found
    filtered = staff.get(f"{ADMIN}/limit/", {"measure": "beta"}).content.decode()
    assert "Gross cap" not in filtered
    assert staff.get(f"{ADMIN}/limit/{named.pk}/change/").status_code == 200
    assert staff.get(f"{ADMIN}/limit/add/").status_code == 200


def test_limit_admin_add_is_checked_and_audited(staff, owner, book):
    response = staff.post(f"{ADMIN}/limit/add/", _form(owner, book))

    assert response.status_code == 302, response.context["adminform"].form.errors
    limit = Limit.objects.get()
    assert (limit.owner_id, limit.portfolio_id, limit.measure) == (owner.pk, book.pk, "var")
    assert limit.params == {"method": "historical", "confidence": 0.99, "horizon_days": 1}
    [event] = AuditEvent.objects.filter(action="limit.create")
    assert (event.object_id, event.details["via"]) == (str(limit.pk), "admin")


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"unit": "days"}, "unit"),
        ({"params": '{"confidence": 0.9}'}, "params"),
        ({"params": '{"scenario": "Nowhere"}'}, "params"),
        ({"warning": "0.08"}, "warning"),
        ({"measure": "sharpe"}, "measure"),
    ],
)
def test_limit_admin_refuses_what_the_api_refuses(staff, owner, book, changes, field):
    response = staff.post(f"{ADMIN}/limit/add/", _form(owner, book, **changes))

    assert response.status_code == 200
    assert field in response.context["adminform"].form.errors
    assert not Limit.objects.exists() and not AuditEvent.objects.exists()


def test_limit_admin_refuses_a_portfolio_of_another_owner(staff, owner):
    theirs = PortfolioFactory(owner=UserFactory())
    response = staff.post(f"{ADMIN}/limit/add/", _form(owner, theirs))
    assert "portfolio" in response.context["adminform"].form.errors
    assert not Limit.objects.exists()


def test_limit_admin_change_and_delete_are_audited(staff, owner, book):
    limit = _limit(owner, book)
    form = _form(owner, book, measure="gross_exposure", params="{}", unit="money")
    form |= {"warning": "", "hard": "2000000"}

    response = staff.post(f"{ADMIN}/limit/{limit.pk}/change/", form)

    assert response.status_code == 302, response.context["adminform"].form.errors
    limit.refresh_from_db()
    assert limit.hard == 2_000_000.0
    [update] = AuditEvent.objects.filter(action="limit.update")
    assert "hard" in update.details["fields"]

    response = staff.post(f"{ADMIN}/limit/{limit.pk}/delete/", {"post": "yes"})

    assert response.status_code == 302
    assert not Limit.objects.exists()
    [delete] = AuditEvent.objects.filter(action="limit.delete")
    assert delete.object_id == str(limit.pk)


def test_limit_admin_bulk_delete_is_audited(staff, owner):
    limits = [_limit(owner, name=f"l{n}") for n in range(2)]
    response = staff.post(
        f"{ADMIN}/limit/",
        {"action": "delete_selected", "_selected_action": [x.pk for x in limits], "post": "yes"},
    )
    assert response.status_code == 302
    assert not Limit.objects.exists()
    assert AuditEvent.objects.filter(action="limit.delete").count() == 2


def test_breach_admin_lists_read_only(staff, owner, book):
    limit = _limit(owner, book, name="Gross cap")
    breach = Breach.objects.create(
        limit=limit,
        portfolio=book,
        session=date(2026, 11, 20),
        value=1.2e6,
        bound_value=1e6,
        level="hard",
        first_seen=date(2026, 11, 18),
        last_seen=date(2026, 11, 20),
        notified_value=1.2e6,
    )

    page = staff.get(f"{ADMIN}/breach/", {"status__exact": "open"})

    assert page.status_code == 200
    assert "Gross cap" in page.content.decode() and "1 breach" in page.content.decode()
    assert staff.get(f"{ADMIN}/breach/add/").status_code == 403
    view = staff.get(f"{ADMIN}/breach/{breach.pk}/change/")
    assert view.status_code == 200 and 'name="_save"' not in view.content.decode()


def test_limit_admin_refuses_a_non_staff_user(client, owner):
    client.force_login(owner)
    for model in ("limit", "breach"):
        response = client.get(f"{ADMIN}/{model}/")
        assert response.status_code == 302 and "/admin/login/" in response["Location"]


# --- import and export ---------------------------------------------------------------------------


def _csv(rows: list[list[object]]) -> SimpleUploadedFile:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    writer.writerows([["" if c is None else str(c) for c in row] for row in rows])
    return SimpleUploadedFile("limits.csv", out.getvalue().encode(), "text/csv")


def _preview(client, upload: SimpleUploadedFile):
    page = client.get(f"{ADMIN}/limit/import/").content.decode()
    match = re.search(r'<option value="(\d+)">csv</option>', page)
    assert match, "no csv format on the import page"
    form = {"resource": "0", "format": match[1], "import_file": upload}
    return client.post(f"{ADMIN}/limit/import/", form)


def _confirm(client, page):
    form = page.content.decode()
    form = form[form.index("process_import") :]
    form = form[: form.index("</form>")]
    fields = {
        name: html.unescape(value)
        for name, value in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form)
    }
    return client.post(f"{ADMIN}/limit/process_import/", fields)


def _good_rows(owner, book, existing: Limit) -> list[list[object]]:
    var = ["var", '{"confidence": 0.99}', "max", "share_of_equity", 0.04, 0.06, 1]
    gross = ["gross_exposure", "{}", "max", "money", 900000, 2000000, 0]
    return [
        ["", owner.email, book.pk, "VaR", *var],
        ["", owner.email.upper(), "", "Beta", "beta", "", "abs_max", "number", "", 1.5, 1],
        [existing.pk, owner.email, book.pk, "Gross", *gross],
    ]


def test_limit_admin_import_previews_then_stores(staff, owner, book):
    existing = _limit(owner, book)

    page = _preview(staff, _csv(_good_rows(owner, book, existing)))

    assert page.status_code == 200
    result = page.context["result"]
    assert not result.has_errors() and not result.has_validation_errors()
    assert [row.import_type for row in result.rows] == ["new", "new", "update"]
    assert Limit.objects.count() == 1  # the preview keeps nothing

    response = _confirm(staff, page)

    assert response.status_code == 302
    limits = {x.name: x for x in Limit.objects.all()}
    assert set(limits) == {"VaR", "Beta", "Gross"}
    assert limits["VaR"].params == {"method": "historical", "confidence": 0.99, "horizon_days": 1}
    assert (limits["Beta"].portfolio_id, limits["Beta"].warning) == (None, None)
    assert limits["Beta"].params == {}
    gross = limits["Gross"]
    assert (gross.pk, gross.hard, gross.warning, gross.is_active) == (
        existing.pk,
        2e6,
        9e5,
        False,
    )
    [event] = AuditEvent.objects.filter(action="limit.import")
    assert (event.details["created"], event.details["updated"]) == (2, 1)


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({5: '{"confidence": 0.9}'}, "params"),  # not a confidence the batch computes
        ({5: '{"scenario": "Nowhere"}', 4: "stress_loss", 7: "money"}, "params"),
        ({7: "days"}, "unit"),
        ({8: 0.09}, "warning"),
        ({4: "sharpe"}, "measure"),
        ({1: "nobody@example.com"}, "owner"),
        ({2: 999999}, "portfolio"),
        ({5: "{not json"}, "params"),
    ],
)
def test_limit_admin_import_refuses_a_file_with_one_bad_row(staff, owner, book, bad, field):
    existing = _limit(owner, book)
    rows = _good_rows(owner, book, existing)
    for column, value in bad.items():
        rows[0][column] = value
    before = list(Limit.objects.values())

    page = _preview(staff, _csv(rows))

    assert page.status_code == 200
    result = page.context["result"]
    assert result.has_validation_errors() and not result.has_errors()
    assert 'name="import_file_name"' not in page.content.decode()  # nothing to confirm
    [invalid] = result.invalid_rows
    assert invalid.number == 1 and field in invalid.field_specific_errors
    assert list(Limit.objects.values()) == before
    assert not AuditEvent.objects.exists()


def test_limit_admin_import_confirm_refused_whole_when_a_row_went_bad(staff, owner, book):
    """Between the preview and the confirm the scenario a row names was retired: the confirm
    writes none of the rows, the good ones included."""
    existing = _limit(owner, book)
    crash = StressScenario.objects.create(
        name="Admin test crash", category="market", shocks={"Market": -0.3}
    )
    rows = _good_rows(owner, book, existing)
    crash_row = ["stress_loss", '{"scenario": "Admin test crash"}', "max", "money", "", 1e5, 1]
    rows.append(["", owner.email, "", "Crash", *crash_row])
    page = _preview(staff, _csv(rows))
    assert 'name="import_file_name"' in page.content.decode()
    crash.is_active = False
    crash.save()
    before = list(Limit.objects.values())

    response = _confirm(staff, page)

    assert response.status_code == 200
    assert "Nothing was imported" in response.content.decode()
    assert list(Limit.objects.values()) == before
    assert not AuditEvent.objects.exists()


def test_limit_admin_import_refuses_another_owners_portfolio(staff, owner, book):
    theirs = PortfolioFactory(owner=UserFactory())
    rows = [["", owner.email, theirs.pk, "x", "beta", "", "max", "number", "", 1, 1]]
    page = _preview(staff, _csv(rows))
    [invalid] = page.context["result"].invalid_rows
    assert "portfolio" in invalid.field_specific_errors
    assert not Limit.objects.exists()


def test_limit_admin_export_imports_back_unchanged(staff, owner, book):
    _limit(owner, book, name="=cmd|' /C calc'!A0", warning=9e5)
    _limit(owner, None, measure="var", unit="money", hard=5e4, params={"confidence": 0.95})
    before = list(Limit.objects.order_by("id").values())

    response = staff.post(f"{ADMIN}/limit/export/", {"format": "0", "resource": "0"})

    assert response.status_code == 200
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == HEADER
    assert rows[1][1:4] == [owner.email, str(book.pk), "'=cmd|' /C calc'!A0"]  # formula-safe
    page = _preview(staff, SimpleUploadedFile("limits.csv", response.content, "text/csv"))
    assert not page.context["result"].has_validation_errors()
    assert _confirm(staff, page).status_code == 302
    assert list(Limit.objects.order_by("id").values("name", "params", "hard", "warning")) == [
        {k: row[k] for k in ("name", "params", "hard", "warning")} for row in before
    ]
