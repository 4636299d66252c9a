"""A report as plain data: titled sections of tables and charts, before any format is chosen.

Every renderer reads the same `Document`, so the numbers in a PDF, an HTML page, a CSV and a
workbook are the same numbers. Table cells keep their raw values (Decimal money, float ratios
and Greeks, dates); formatting for display happens in the renderers, by the column's `kind`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

# How a value is shown: money 2 dp with separators, number up to 4 dp (Greeks, betas), percent
# a decimal shown x 100 (0.05 -> 5.00%), integer, date, text.
KINDS = ("text", "date", "money", "number", "percent", "integer")


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    kind: str = "text"

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown column kind {self.kind!r}")


@dataclass
class Table:
    """Rows of values in column order. The first column names the row (a date, a scenario, a
    factor, a metric): it is the `key` of every value of the row in the CSV.

    `row_kinds`, for key/value tables, gives each row's kind for its value columns (a metrics
    table mixes money, ratios and counts). `printed` False keeps a long table (a daily series
    the chart already shows) out of the HTML and PDF; the CSV and the workbook hold it."""

    key: str
    title: str
    columns: list[Column]
    rows: list[list[Any]]  # cells of any kind: numbers, text, dates, None
    row_kinds: list[str] | None = None
    printed: bool = True

    def kind_of(self, row: int, column: int) -> str:
        if self.row_kinds is not None and column > 0:
            return self.row_kinds[row]
        return self.columns[column].kind


@dataclass(frozen=True)
class Chart:
    """A chart drawn only when a format shows it: `draw` returns PNG bytes."""

    title: str
    draw: Callable[[], bytes]


@dataclass
class Section:
    key: str
    title: str
    as_of: date | None = None  # the session of the stored rows shown; None: a series or nothing
    tables: list[Table] = field(default_factory=list)
    charts: list[Chart] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    empty: str = ""  # set when nothing is stored: said in place of tables and charts


@dataclass
class Document:
    kind: str
    title: str
    portfolio_id: int
    portfolio_name: str
    currency: str
    as_of: date
    generated_at: datetime
    sections: list[Section]
    data_quality: dict = field(default_factory=dict)

    def tables(self) -> list[Table]:
        return [table for section in self.sections for table in section.tables]
