"""The book's admin import flow as a browser drives it (django-import-export 4.4.3): the import
form (`resource`, `import_file`, `format`, the format's value read from the rendered page), then
the confirm form with the hidden fields read back from the preview page. And the position CSV
through the API: upload, export, and a snapshot of what a refused file must leave as it was."""

from __future__ import annotations

import csv
import html
import io
import re
from typing import TYPE_CHECKING

import openpyxl
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from marketdata.models import Security
from portfolios.models import Portfolio, Position, PositionTag, Strategy, Tag
from portfolios.position_csv import COLUMNS

if TYPE_CHECKING:
    # What the test client returns: the response with its template context and json().
    from django.test.client import _MonkeyPatchedWSGIResponse as TestResponse

ADMIN = "/admin/portfolios"
IMPORT_HEADER = ["portfolio", *COLUMNS]  # the admin import has the portfolio column


def as_file(
    kind: str, rows: list[list[object]], header: list[str] = IMPORT_HEADER
) -> SimpleUploadedFile:
    """`rows` as a CSV (cells as text) or an XLSX (numbers and dates as spreadsheet values)."""
    if kind == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(header)
        writer.writerows([["" if c is None else str(c) for c in row] for row in rows])
        return SimpleUploadedFile("positions.csv", out.getvalue().encode(), "text/csv")
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(header)
    for row in rows:
        sheet.append(row)
    data = io.BytesIO()
    workbook.save(data)
    return SimpleUploadedFile("positions.xlsx", data.getvalue(), "application/octet-stream")


def format_value(client, model: str, kind: str) -> str:
    """The `format` choice the import page offers for `kind` (csv, xlsx)."""
    page = client.get(f"{ADMIN}/{model}/import/").content.decode()
    match = re.search(rf'<option value="(\d+)">{kind}</option>', page)
    assert match, f"no {kind} format on the {model} import page"
    return match[1]


def preview(client, model: str, upload: SimpleUploadedFile, kind: str = "csv") -> TestResponse:
    form = {"resource": "0", "format": format_value(client, model, kind), "import_file": upload}
    return client.post(f"{ADMIN}/{model}/import/", form)


def confirm(client, model: str, page: TestResponse) -> TestResponse:
    """Post the confirm form of a preview page back, with the hidden fields it rendered."""
    form = page.content.decode()
    form = form[form.index("process_import") :]
    form = form[: form.index("</form>")]
    fields = {
        name: html.unescape(value)
        for name, value in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form)
    }
    assert {"import_file_name", "original_file_name", "format"} <= fields.keys()
    return client.post(f"{ADMIN}/{model}/process_import/", fields)


# --- the position CSV through the API ---------------------------------------------------------


def upload_url(portfolio: Portfolio) -> str:
    return f"/api/v1/portfolios/{portfolio.pk}/upload/"


def export_url(portfolio: Portfolio) -> str:
    return f"/api/v1/portfolios/{portfolio.pk}/export/"


def post_file(client: APIClient, portfolio: Portfolio, raw: bytes, mode: str = "append"):
    return client.post(
        upload_url(portfolio),
        {"file": SimpleUploadedFile("positions.csv", raw, content_type="text/csv"), "mode": mode},
        format="multipart",
    )


def snapshot(portfolio: Portfolio) -> dict:
    held = Position.objects.filter(portfolio=portfolio).order_by("id")
    return {
        "positions": Position.objects.count(),
        "tags": Tag.objects.count(),
        "strategies": Strategy.objects.count(),
        "strategy_members": Strategy.positions.through.objects.count(),
        "position_tags": PositionTag.objects.count(),
        "securities": Security.objects.count(),
        "held": list(held.values()),
        "held_tags": list(PositionTag.objects.order_by("id").values("position_id", "tag_id")),
        "held_strategies": list(
            Strategy.objects.filter(portfolio=portfolio).order_by("id").values("id", "name", "kind")
        ),
    }


def problem_cells(error: dict) -> list[tuple[int, str]]:
    rows = error["fields"]["rows"]
    for problem in rows:
        assert set(problem) == {"row", "column", "message"}
        assert problem["message"]
    return [(p["row"], p["column"]) for p in rows]


def admin_snapshot() -> dict[str, object]:
    """What an import may write: compared before and after a refused or previewed file."""
    return {
        "positions": sorted(
            Position.objects.values_list("portfolio_id", "symbol", "entry_date", "quantity")
        ),
        "tags": sorted(Tag.objects.values_list("owner_id", "name")),
        "position_tags": PositionTag.objects.count(),
        "strategies": sorted(Strategy.objects.values_list("portfolio_id", "name", "is_detected")),
        "securities": Security.objects.count(),
    }


def problems(page: TestResponse) -> set[tuple[int, str]]:
    return {(p["row"], p["column"]) for p in page.context["result"].problems}
