"""django-import-export resources of the book: columns only; the services store and derive.

Portfolios and tags map their columns onto the model (owners by email). Tags are written by
`services.tag_create` / `tag_update`, so an import obeys the same rules as the API: names are
unique per owner regardless of case, and a user has at most SIGMASIGHT_MAX_TAGS_PER_USER tags.
Breaking either is an error on that row, never a 500.

Positions: the file is the upload CSV of API.md (`position_csv.COLUMNS`) plus a `portfolio`
column holding the portfolio id, as CSV or XLSX. The resource never builds a Position itself;
the file goes through the same validator and the same service as the API upload in append mode:

1. `before_import` turns every cell into the text a CSV would hold (spreadsheet numbers and dates
   included), splits the rows by portfolio, writes each part as a position CSV and runs
   `position_csv.parse` on it. That is the API's own validation: the header check, every row
   through `validate_record`, repeated lots, tags per position. Every problem of every row is
   collected, numbered as a row of the admin file (the header is row 1, blank lines are
   dropped). A missing, malformed or unknown portfolio id is a problem of its row.
2. With no problem at all, each part goes to `services.positions_import_csv(mode="append")`,
   which stores it exactly as an API upload does: securities (`securities_ensure`),
   position_type, multiplier, underlying and option terms, tags by name for the portfolio's
   owner, user strategies from the `strategy` column, then detected strategies re-run. What
   only the service checks (the per-user tag limit, the size limits) comes back as problems of
   their rows, and every part written so far is rolled back.
3. `import_row` reports each row as a new lot or an update of the open lot with the same
   symbol and entry date, with the lot before and after in the upload format. Writes happen
   per portfolio in the service, not per row, so rows are not saved one by one.

The library runs the preview as a dry run in a transaction it rolls back, so the preview shows
what the service really stored, and nothing stays written; confirming runs the same steps for
real. With any problem, nothing is written and the page lists the problems by row and column,
as the API does (`PositionImportResult.problems`, template admin/portfolios/position/import.html).
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any, NamedTuple

from django.conf import settings
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import transaction
from django.db.models import Prefetch, QuerySet
from import_export import fields, widgets
from import_export.resources import Diff
from import_export.results import Result, RowResult
from tablib import Dataset

from portfolios import position_csv, services
from portfolios.models import Portfolio, Position, Strategy, Tag
from sigmasight.accounts.models import User, normalize_email
from sigmasight.exceptions import PayloadTooLarge, ValidationFailed
from sigmasight.resources import SafeModelResource

PORTFOLIO = "portfolio"
POSITION_COLUMNS = (PORTFOLIO, *position_csv.COLUMNS)


class Lot(NamedTuple):
    """An open lot across portfolios."""

    portfolio_id: int
    symbol: str
    entry_date: date


class Problem(NamedTuple):
    """A problem of the admin file (the same one twice is reported once)."""

    row: int
    column: str
    message: str


class OwnerEmailWidget(widgets.ForeignKeyWidget):
    """A user named by email, compared the way logins are; an unknown email is a row error."""

    def __init__(self) -> None:
        super().__init__(User, field="email")

    def clean(self, value: object, row: dict | None = None, **kwargs: object) -> User | None:
        email = normalize_email(str(value or ""))
        if not email:
            return None
        try:
            return User.objects.get(email=email)
        except User.DoesNotExist as exc:
            raise ValueError(f"There is no user with the email {email}.") from exc


class PortfolioResource(SafeModelResource):
    owner_email = fields.Field(
        attribute="owner", column_name="owner_email", widget=OwnerEmailWidget()
    )

    class Meta:
        model = Portfolio
        fields = ("id", "owner_email", "name", "description", "base_currency", "cash")
        import_id_fields = ("id",)
        use_transactions = True
        clean_model_instances = True
        skip_unchanged = True


class TagResource(SafeModelResource):
    """Tags are identified by owner and exact name; `risk` next to an existing `Risk` is refused."""

    owner_email = fields.Field(
        attribute="owner", column_name="owner_email", widget=OwnerEmailWidget()
    )

    class Meta:
        model = Tag
        fields = ("owner_email", "name", "color", "description")
        import_id_fields = ("owner_email", "name")
        use_transactions = True
        clean_model_instances = True
        skip_unchanged = True

    def validate_instance(
        self,
        instance: Tag,
        import_validation_errors: dict | None = None,
        validate_unique: bool = True,
    ) -> None:
        # Field validators only: the name rules are the service's, checked when it saves.
        errors = dict(import_validation_errors or {})
        try:
            instance.full_clean(
                exclude=list(errors), validate_unique=False, validate_constraints=False
            )
        except ValidationError as exc:
            errors = exc.update_error_dict(errors)
        if errors:
            raise ValidationError(errors)

    def do_instance_save(self, instance: Tag, is_create: bool) -> None:
        values = {
            "name": instance.name,
            "color": instance.color,
            "description": instance.description,
        }
        try:
            if is_create:
                stored = services.tag_create(owner=instance.owner, **values)
                instance.pk, instance.created_at = stored.pk, stored.created_at
            else:
                services.tag_update(tag=instance, data=values)
        except ValidationFailed as exc:
            raise ValidationError(exc.fields or exc.message) from exc


class StrategyResource(SafeModelResource):
    """Export only: strategies are detected from the book or defined over its positions."""

    class Meta:
        model = Strategy
        fields = ("id", "portfolio", "name", "kind", "is_detected", "positions")

    def filter_export(self, queryset: QuerySet, **kwargs: object) -> QuerySet:
        return queryset.prefetch_related("positions")


class PositionImportResult(Result):
    """The library's result plus the file's problems as the API lists them (row, column, message)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.problems: list[dict] = []

    def has_validation_errors(self) -> bool:
        return bool(self.problems) or super().has_validation_errors()


class _RowDiff(Diff):
    """The library's HTML diff over two rows already in the upload format."""

    def __init__(self, before: list[object] | None, after: list[object]) -> None:
        self.new = before is None
        self.left = before or [""] * len(after)
        self.right = after


@dataclass
class _Part:
    """The rows of one portfolio id (or of one unusable portfolio cell), as a position CSV."""

    portfolio: Portfolio | None
    rows: list[int] = field(default_factory=list)  # rows of the admin file, in order
    cells: list[list[str]] = field(default_factory=list)

    def as_csv(self, header: list[str]) -> tuple[str, dict[int, int]]:
        """The part as a position CSV, and the admin file row of each row `parse` reports.

        `parse` numbers rows by line and skips blank lines, so blank lines pad each row to its
        row number in the admin file: messages that cite another row ("already appears in row
        2") then cite admin rows too. Only a cell spanning lines pushes later rows down; the
        map still gives every reported row its admin row.
        """
        out = io.StringIO()
        line = _write_csv_row(out, header)
        rows = {1: 1}
        for number, cells in zip(self.rows, self.cells, strict=True):
            padding = max(number - 1 - line, 0)
            out.write("\n" * padding)
            line += padding + _write_csv_row(out, cells)
            rows[line] = number
        return out.getvalue(), rows


def _write_csv_row(out: io.StringIO, cells: list[str]) -> int:
    """Write one CSV row; return how many lines `csv.reader` will count for it."""
    row = io.StringIO()
    csv.writer(row, lineterminator="\n").writerow(cells)
    out.write(row.getvalue())
    return len(io.StringIO(row.getvalue(), newline="").readlines())


def _with_upload_relations(positions: QuerySet) -> QuerySet:
    """What `PositionResource.upload_row` reads: tag names and user-defined strategies."""
    return positions.prefetch_related(
        Prefetch("tags", queryset=Tag.objects.only("name")),
        Prefetch("strategies", queryset=Strategy.objects.filter(is_detected=False)),
    )


class _Refused(Exception):
    """Leaves `transaction.atomic` with everything written so far undone."""


def _text(value: object) -> str:
    """A cell as the text a CSV would hold: spreadsheets give numbers and dates, not strings."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time() else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def _cell(column: str, value: object, *, native: bool) -> object:
    """A value in the upload format (as `position_csv.write` writes it); XLSX keeps numbers.
    The download neutralises text cells as every export does (`SafeModelResource`)."""
    if column in position_csv.TEXT_COLUMNS:
        return str(value)
    if value is None:
        return ""
    if native:
        return value
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


class PositionResource(SafeModelResource):
    """Open lots in the upload format plus their portfolio id; the import is described above.

    Rows are matched to open lots by the service, on (portfolio, symbol, entry_date), so the
    library's `import_id_fields` and instance loader are not used.
    """

    portfolio = fields.Field(column_name="portfolio")
    symbol = fields.Field(column_name="symbol")
    quantity = fields.Field(column_name="quantity")
    entry_price = fields.Field(column_name="entry_price")
    entry_date = fields.Field(column_name="entry_date")
    underlying = fields.Field(column_name="underlying")
    option_type = fields.Field(column_name="option_type")
    strike = fields.Field(column_name="strike")
    expiration = fields.Field(column_name="expiration")
    tags = fields.Field(column_name="tags")
    strategy = fields.Field(column_name="strategy")
    notes = fields.Field(column_name="notes")

    class Meta:
        model = Position
        fields = POSITION_COLUMNS
        use_transactions = True

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self._problems: dict[Problem, None] = {}  # an ordered set
        self._errors: dict[int, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
        self._rows: list[int] = []  # admin file row of each dataset row
        self._lots: dict[int, Lot] = {}  # admin file row -> the lot it writes
        self._before: dict[Lot, list[object]] = {}
        self._stored: dict[Lot, Position] = {}

    @classmethod
    def get_result_class(cls) -> type[PositionImportResult]:
        return PositionImportResult

    # Export ---------------------------------------------------------------------------------
    def filter_export(self, queryset: QuerySet, **kwargs: object) -> QuerySet:
        # The upload format describes open lots: a closed one would be reopened on import.
        return _with_upload_relations(queryset.filter(closed_at__isnull=True))

    def export_resource(
        self, instance: Position, selected_fields: list[str] | None = None, **kwargs: object
    ) -> list[object]:
        row = self.upload_row(instance, native=bool(kwargs.get("force_native_type")))
        return [row[f.column_name] for f in self.get_export_fields(selected_fields)]

    @staticmethod
    def upload_row(p: Position, *, native: bool = False) -> dict[str, object]:
        """The lot as the position export writes it, plus its portfolio id."""
        values = {"portfolio": p.portfolio_id, **services.position_upload_row(p)}
        return {column: _cell(column, value, native=native) for column, value in values.items()}

    # Import ---------------------------------------------------------------------------------
    def before_import(self, dataset: Dataset, **kwargs: object) -> None:
        header, rows = self._normalize(dataset)
        if not rows:
            self._problem(2, "", "The file has no positions.")
            return
        parts = self._split(header, rows)
        position_header = [h for h in header if h != PORTFOLIO]
        for part in parts:
            self._validate(part, position_header)
        if self._problems:
            return
        lots = set(self._lots.values())
        self._before = {lot: self.export_resource(p) for lot, p in self._open_lots(lots).items()}
        if self._write(parts, position_header):
            self._stored = self._open_lots(lots)

    def import_row(self, row: dict, instance_loader: object, **kwargs: Any) -> RowResult:
        row_result = self.get_row_result_class()()
        number = self._rows[kwargs["row_number"] - 1]
        lot = self._lots.get(number)
        stored = self._stored.get(lot) if lot is not None else None
        if number in self._errors:
            row_result.import_type = RowResult.IMPORT_TYPE_INVALID
            row_result.validation_error = ValidationError(dict(self._errors[number]))
        elif stored is None:  # another row's problem refused the whole file
            row_result.import_type = RowResult.IMPORT_TYPE_SKIP
        else:
            before = self._before.get(self._lots[number])
            row_result.import_type = (
                RowResult.IMPORT_TYPE_NEW if before is None else RowResult.IMPORT_TYPE_UPDATE
            )
            row_result.diff = _RowDiff(before, self.export_resource(stored)).as_html()
            row_result.add_instance_info(stored)
            row_result.instance = stored
        return row_result

    def after_import(
        self, dataset: Dataset, result: PositionImportResult, **kwargs: object
    ) -> None:
        # No sequence reset (ModelResource's): the file never gives ids.
        problems = sorted(self._problems, key=lambda p: p.row)[: position_csv.MAX_ERRORS]
        result.problems = [p._asdict() for p in problems]

    def _problem(self, row: int, column: str, message: str) -> None:
        problem = Problem(row=row, column=column, message=message)
        if problem not in self._problems:
            self._problems[problem] = None
            self._errors[row][column or NON_FIELD_ERRORS].append(message)

    def _normalize(self, dataset: Dataset) -> tuple[list[str], list[list[str]]]:
        """Lower-cased headers and text cells, without blank rows or unnamed empty columns.

        The dataset is rewritten the same way, so the library's rows are the rows imported.
        """
        header = [_text(h).strip().lower() for h in dataset.headers or []]
        numbered = [
            (number, [_text(c) for c in cells]) for number, cells in enumerate(dataset, start=2)
        ]
        numbered = [(n, cells) for n, cells in numbered if any(c.strip() for c in cells)]
        keep = [
            i for i, h in enumerate(header) if h or any(cells[i].strip() for _, cells in numbered)
        ]
        header = [header[i] for i in keep]
        rows = [[cells[i] for i in keep] for _, cells in numbered]
        self._rows = [n for n, _ in numbered]
        dataset.wipe()
        dataset.headers = header
        for cells in rows:
            dataset.append(cells)
        return header, rows

    def _split(self, header: list[str], rows: list[list[str]]) -> list[_Part]:
        """The rows by portfolio id; rows without a usable one still get every other check."""
        where = [i for i, h in enumerate(header) if h == PORTFOLIO]
        if len(where) != 1:
            message = (
                "Required column 'portfolio' is missing."
                if not where
                else "Column 'portfolio' appears twice."
            )
            self._problem(1, PORTFOLIO, message)
            part = _Part(portfolio=None)
            for number, cells in zip(self._rows, rows, strict=True):
                self._add_row(part, number, [c for i, c in enumerate(cells) if i not in where])
            return [part]
        at = where[0]
        texts = [cells[at].strip() for cells in rows]
        ids = {int(t) for t in texts if t.isascii() and t.isdigit()}
        portfolios = Portfolio.objects.select_related("owner").in_bulk(ids)
        parts: dict[object, _Part] = {}
        for number, cells, text in zip(self._rows, rows, texts, strict=True):
            pid = int(text) if text.isascii() and text.isdigit() else None
            if not text:
                self._problem(number, PORTFOLIO, "'portfolio' is required.")
            elif pid is None:
                self._problem(number, PORTFOLIO, f"'{text}' is not a portfolio id.")
            elif pid not in portfolios:
                self._problem(number, PORTFOLIO, f"There is no portfolio {pid}.")
            part = parts.setdefault(pid if pid is not None else text, _Part(portfolios.get(pid)))
            self._add_row(part, number, cells[:at] + cells[at + 1 :])
        return list(parts.values())

    def _add_row(self, part: _Part, number: int, cells: list[str]) -> None:
        if any(c.strip() for c in cells):
            part.rows.append(number)
            part.cells.append(cells)
            return
        # Only a portfolio: `parse` would skip the line as blank, so it is validated here.
        problems = position_csv.Problems()
        position_csv.validate_record({}, row=number, problems=problems, today=date.today())
        for p in problems.items:
            self._problem(p["row"], p["column"], p["message"])

    def _validate(self, part: _Part, header: list[str]) -> None:
        """`position_csv.parse` on the part, its problems renumbered as rows of the admin file."""
        if not part.rows:
            return
        text, rows = part.as_csv(header)
        try:
            records = position_csv.parse(
                text.encode(),
                today=date.today(),
                max_rows=settings.SIGMASIGHT_UPLOAD_MAX_ROWS,
                max_tags=settings.SIGMASIGHT_MAX_TAGS_PER_POSITION,
            )
        except position_csv.TooLarge as exc:
            self._problem(1, "", str(exc))
        except position_csv.PositionFileError as exc:
            self._add_problems(exc.problems, rows)
        else:
            if part.portfolio is not None:
                for record in records:
                    self._lots[rows[record.row]] = Lot(
                        portfolio_id=part.portfolio.pk,
                        symbol=record.symbol,
                        entry_date=record.entry_date,
                    )

    def _write(self, parts: Iterable[_Part], header: list[str]) -> bool:
        """Store every part through the upload service, or nothing (False) if one is refused."""
        try:
            with transaction.atomic():
                for part in parts:
                    text, rows = part.as_csv(header)
                    assert part.portfolio is not None  # a part without one has a problem
                    try:
                        services.positions_import_csv(
                            portfolio=part.portfolio, raw=text.encode(), mode="append"
                        )
                    except ValidationFailed as exc:
                        problems = exc.fields.get("rows") or [
                            {"row": 1, "column": "", "message": exc.message}
                        ]
                        self._add_problems(problems, rows)
                    except PayloadTooLarge as exc:
                        self._problem(1, "", exc.message)
                if self._problems:
                    raise _Refused
        except _Refused:
            return False
        return True

    def _add_problems(self, problems: Iterable[dict], rows: dict[int, int]) -> None:
        for p in problems:
            self._problem(rows.get(p["row"], 1), p["column"], p["message"])

    @staticmethod
    def _open_lots(lots: set[Lot]) -> dict[Lot, Position]:
        if not lots:
            return {}
        found = _with_upload_relations(
            Position.objects.filter(
                closed_at__isnull=True,
                portfolio_id__in={lot.portfolio_id for lot in lots},
                symbol__in={lot.symbol for lot in lots},
            )
        )
        return {
            lot: p
            for p in found
            if (lot := Lot(portfolio_id=p.portfolio_id, symbol=p.symbol, entry_date=p.entry_date))
            in lots
        }
