"""A `Document` in each format a report comes in.

- HTML: `templates/reports/report.html`, self-contained (charts are base64 PNG data URIs).
- PDF: the same template through xhtml2pdf (pure Python on ReportLab: no system libraries),
  with page rules for print.
- CSV: one tidy table, `table,as_of,key,field,value`: a row per value of every table, the key
  being the value's row label (a date, a scenario, a factor, a metric). Values are raw: money as
  stored (Decimal text), ratios and Greeks at full float precision, dates ISO.
- XLSX: a "Report" sheet (what the workbook is, and the index of its sheets), then one sheet
  per table, headers in row 1, numbers as numbers with a display format per column kind.

Every CSV and XLSX cell goes through `sigmasight.exports.safe_cell` (the CSV by `csv_writer`):
names users wrote (the portfolio, scenarios, factors of a breakdown) are text that never runs;
in a workbook, string cells, never formulas.
"""

from __future__ import annotations

import base64
import io
import math
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.template.loader import render_to_string
from django.utils import timezone

from modeling.reports.document import Document, Table
from sigmasight.exports import csv_writer, safe_cell

if TYPE_CHECKING:
    from openpyxl.worksheet.worksheet import Worksheet

CONTENT_TYPES = {
    "pdf": "application/pdf",
    "html": "text/html; charset=utf-8",
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
CSV_HEADER = ["table", "as_of", "key", "field", "value"]
TEMPLATE = "reports/report.html"


class RenderError(RuntimeError):
    pass


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and not math.isfinite(value))


def display(value: Any, kind: str) -> str:
    """A value as the HTML and PDF show it."""
    if _missing(value):
        return "n/a"
    if kind == "money":
        return f"{float(value):,.2f}"
    if kind == "number":
        number = float(value)
        return f"{number:,.2f}" if abs(number) >= 1000 else f"{number:,.4f}"
    if kind == "percent":
        return f"{float(value):.2%}"
    if kind == "integer":
        return f"{int(value):,}"
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def raw(value: object) -> str:
    """A value as the CSV holds it: exact, unformatted."""
    if _missing(value):
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


# HTML and PDF -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Cell:
    text: str
    numeric: bool
    negative: bool


NUMERIC = {"money", "number", "percent", "integer"}


def _headers(table: Table, rows: list[list[Cell]]) -> list[dict]:
    """Labels, alignment and a width per column in proportion to its longest text (PDF tables
    otherwise split the page evenly, and a long option symbol runs into the next column)."""
    lengths = [
        max([len(word) for word in column.label.split()] + [len(row[c].text) for row in rows])
        for c, column in enumerate(table.columns)
    ]
    total = sum(min(max(n, 4), 32) for n in lengths)
    return [
        {
            "label": column.label,
            "numeric": c > 0 and (column.kind in NUMERIC or table.row_kinds is not None),
            "width": f"{100 * min(max(lengths[c], 4), 32) / total:.0f}%",
        }
        for c, column in enumerate(table.columns)
    ]


def _cells(table: Table) -> list[list[Cell]]:
    rows = []
    for r, values in enumerate(table.rows):
        row = []
        for c, value in enumerate(values):
            kind = table.kind_of(r, c)
            numeric = c > 0 and kind in NUMERIC
            negative = kind in NUMERIC and not _missing(value) and float(value) < 0
            row.append(Cell(display(value, kind), numeric, negative))
        rows.append(row)
    return rows


def _context(document: Document, *, pdf: bool) -> dict:
    sections = []
    for section in document.sections:
        charts = [
            {
                "title": chart.title,
                "src": "data:image/png;base64," + base64.b64encode(chart.draw()).decode("ascii"),
            }
            for chart in ([] if section.empty else section.charts)
        ]
        tables = []
        for table in section.tables:
            if table.printed:
                rows = _cells(table)
                tables.append(
                    {
                        "title": table.title,
                        "headers": _headers(table, rows),
                        "rows": rows,
                        "key_value": table.row_kinds is not None,
                    }
                )
        sections.append({"section": section, "charts": charts, "tables": tables})
    quality = document.data_quality
    return {
        "document": document,
        "sections": sections,
        "pdf": pdf,
        "generated": timezone.localtime(document.generated_at).strftime("%Y-%m-%d %H:%M %Z"),
        "quality": {
            "source": quality.get("source", "unknown"),
            "stale": quality.get("stale", False),
            "fallbacks": quality.get("fallbacks", 0),
            "missing_greeks": quality.get("missing_greeks", 0),
        },
    }


def render_html(document: Document) -> bytes:
    return render_to_string(TEMPLATE, _context(document, pdf=False)).encode("utf-8")


def render_pdf(document: Document) -> bytes:
    from xhtml2pdf import pisa

    html = render_to_string(TEMPLATE, _context(document, pdf=True))
    out = io.BytesIO()
    status = pisa.CreatePDF(html, dest=out, encoding="utf-8")
    if status.err:
        raise RenderError(f"xhtml2pdf reported {status.err} error(s) rendering the report")
    return out.getvalue()


# CSV --------------------------------------------------------------------------------------------
def _metadata(document: Document) -> list[tuple[str, object]]:
    return [
        ("kind", document.kind),
        ("title", document.title),
        ("portfolio_id", document.portfolio_id),
        ("portfolio", document.portfolio_name),
        ("currency", document.currency),
        ("generated_at", document.generated_at.isoformat()),
        *_flat("data_quality", document.data_quality),
    ]


def _flat(prefix: str, value: object) -> list[tuple[str, object]]:
    """Nested data-quality parts as dotted cells: sources.book -> "csv, polygon"."""
    if isinstance(value, dict):
        return [item for k, v in sorted(value.items()) for item in _flat(f"{prefix}.{k}", v)]
    if isinstance(value, list | tuple):
        return [(prefix, ", ".join(map(str, value)))]
    return [(prefix, value)]


def render_csv(document: Document) -> bytes:
    out = io.StringIO()
    writer = csv_writer(out)
    writer.writerow(CSV_HEADER)
    as_of = document.as_of.isoformat()
    for field, value in _metadata(document):
        writer.writerow(["report", as_of, "report", field, raw(value)])
    for section in document.sections:
        day = raw(section.as_of)
        if section.empty:
            writer.writerow([section.key, day, "", "empty", section.empty])
        for table in section.tables:
            fields = [column.key for column in table.columns[1:]]
            for values in table.rows:
                key = raw(values[0])
                for field, value in zip(fields, values[1:], strict=True):
                    writer.writerow([table.key, day, key, field, raw(value)])
    return out.getvalue().encode("utf-8")


# XLSX -------------------------------------------------------------------------------------------
NUMBER_FORMATS = {
    "money": "#,##0.00",
    "number": "0.0000",
    "percent": "0.00%",
    "integer": "#,##0",
    "date": "yyyy-mm-dd",
}


def sheet_name(table: Table) -> str:
    """A table's sheet: its key in words (keys are unique and short, so names are too)."""
    return table.key.replace("_", " ").capitalize()[:31]


def _cell_value(value: object) -> object:
    if _missing(value):
        return None
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime):
        return value.replace(tzinfo=None)
    return safe_cell(value)


def _append(sheet: Worksheet, values: list[object]) -> None:
    """A row of the workbook: numbers and dates native, text through `safe_cell`, so no string
    becomes a formula."""
    sheet.append([_cell_value(v) for v in values])


def render_xlsx(document: Document) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    workbook = Workbook()
    cover = workbook.active
    cover.title = "Report"
    bold = Font(bold=True)
    _append(cover, [document.title, document.portfolio_name])
    cover["A1"].font = Font(bold=True, size=14)
    _append(cover, ["As of", document.as_of])
    cover["B2"].number_format = NUMBER_FORMATS["date"]
    for field, value in _metadata(document):
        _append(cover, [field, value])
    cover.append([])
    _append(cover, ["Sheet", "Table", "Section", "As of", "Note"])
    for cell in cover[cover.max_row]:
        cell.font = bold
    for section in document.sections:
        note = section.empty or " ".join(section.notes)
        if section.empty:
            _append(cover, ["", "", section.title, section.as_of, note])
        for table in section.tables:
            _append(cover, [sheet_name(table), table.title, section.title, section.as_of, note])
    cover.column_dimensions["A"].width = 28
    cover.column_dimensions["B"].width = 40
    cover.column_dimensions["C"].width = 30
    for table in document.tables():
        sheet = workbook.create_sheet(sheet_name(table))
        _append(sheet, [column.label for column in table.columns])
        for cell in sheet[1]:
            cell.font = bold
        for r, values in enumerate(table.rows):
            _append(sheet, values)
            for c, cell in enumerate(sheet[sheet.max_row]):
                kind = table.kind_of(r, c)
                if kind in NUMBER_FORMATS:
                    cell.number_format = NUMBER_FORMATS[kind]
        sheet.freeze_panes = "B2"
        for c, column in enumerate(table.columns, start=1):
            sheet.column_dimensions[get_column_letter(c)].width = max(12, len(column.label) + 2)
        sheet.column_dimensions["A"].width = 26
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


RENDERERS = {"pdf": render_pdf, "html": render_html, "csv": render_csv, "xlsx": render_xlsx}


def render(document: Document, fmt: str) -> bytes:
    return RENDERERS[fmt](document)
