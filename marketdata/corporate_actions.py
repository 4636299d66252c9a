"""Corporate actions: splits and cash dividends, fetched from the providers, imported from a CSV
or entered in the admin, and the security-level half of applying a split (its stored prices).
Applying an action to the books is the portfolios app's work (`portfolios.corporate_actions`).

CSV format: `symbol,kind,ex_date,pay_date,split_to,split_from,cash_amount`; kind `split` needs
split_to and split_from (4-for-1: 4,1), kind `cash_dividend` needs cash_amount per share.

Prices: Polygon (`adjusted=true`) and Yahoo serve split-adjusted history, so a bar they return on
or after an ex-date is already in post-split terms, while the bars cached before it are not.
When a split is applied, the stored bars before its ex-date that are not split-adjusted (fetched
before the ex-date, or from a source that never adjusts: csv, synthetic) are divided by the
ratio once, and a `PriceAdjustment` row marks it done, so a series never mixes the two.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import IO
from zoneinfo import ZoneInfo

import pandas as pd
from django.db import transaction
from django.db.models import DecimalField, ExpressionWrapper, F, Value
from django.utils import timezone

from marketdata import calendar
from marketdata.csv_files import FileProblems, csv_rows
from marketdata.fetch import securities_ensure
from marketdata.models import CorporateAction, DailyPrice, PriceAdjustment
from marketdata.providers import registry
from marketdata.providers.base import (
    ACTION_COLUMNS,
    MarketDataProvider,
    NotSupported,
    ProviderError,
)
from marketdata.symbols import SymbolError, normalize_ticker
from sigmasight.api.caching import everything_changed
from sigmasight.exceptions import ValidationFailed

NEW_YORK = ZoneInfo("America/New_York")
# Sources whose history is split-adjusted as of the day it is fetched.
SPLIT_ADJUSTED_SOURCES = ("polygon", "yfinance")
CSV_HEADER = ACTION_COLUMNS
MAX_ERRORS = 200
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_PRICE_FIELDS = ("open", "high", "low", "close", "adjusted_close")


@dataclass
class ActionFetch:
    """What `corporate_actions_fetch` stored and what it could not ask."""

    rows: int = 0
    by_source: dict[str, int] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)  # provider -> failure


def ex_date_start(ex_date: date) -> datetime:
    """The opening of the ex-date's calendar day in New York (aware)."""
    return datetime.combine(ex_date, time.min, tzinfo=NEW_YORK)


def corporate_actions_fetch(
    *,
    symbols: list[str],
    start: date,
    end: date,
    providers: list[MarketDataProvider] | None = None,
) -> ActionFetch:
    """Ask the provider chain for the symbols' splits and dividends with an ex-date in
    [start, end] and upsert them (one row per security, kind and ex-date: re-running changes
    nothing). The first provider that answers serves every symbol; one without corporate actions
    (NotSupported) or failing (ProviderError, recorded) hands over to the next."""
    report = ActionFetch()
    wanted = sorted(set(symbols))
    if not wanted:
        return report
    for provider in registry.chain() if providers is None else providers:
        try:
            frame = provider.corporate_actions(wanted, start, end)
        except NotSupported:
            continue
        except ProviderError as exc:
            report.errors[provider.name] = str(exc)[:300]
            continue
        written = corporate_actions_upsert(frame, source=provider.name)
        report.rows += written
        report.by_source[provider.name] = written
        break
    return report


def corporate_actions_upsert(frame: pd.DataFrame, *, source: str) -> int:
    """Insert or update rows in ACTION_COLUMNS (unique per security, kind and ex-date)."""
    if frame.empty:
        return 0
    ids = securities_ensure(sorted(set(frame["symbol"])))

    def number(value: object) -> Decimal | None:
        if value is None or (isinstance(value, float) and value != value):
            return None
        return Decimal(str(value))

    def day(value: object) -> date | None:
        if value is None or pd.isna(value):
            return None
        return value if isinstance(value, date) else date.fromisoformat(str(value))

    def ex_day(value: object) -> date:
        found = day(value)
        if found is None:
            raise ValueError("a corporate action without an ex-date")
        return found

    rows = [
        CorporateAction(
            security_id=ids[record["symbol"]],
            kind=record["kind"],
            ex_date=ex_day(record["ex_date"]),
            pay_date=day(record["pay_date"]),
            split_to=number(record["split_to"]),
            split_from=number(record["split_from"]),
            cash_amount=number(record["cash_amount"]),
            source=source,
        )
        for record in frame[ACTION_COLUMNS].to_dict("records")
    ]
    with transaction.atomic():
        CorporateAction.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["security", "kind", "ex_date"],
            update_fields=["pay_date", "split_to", "split_from", "cash_amount", "source"],
        )
    return len(rows)


# The CSV ---------------------------------------------------------------------------------


class ActionFileError(FileProblems):
    what = "corporate-action file"


def parse_actions(stream: IO[bytes] | IO[str]) -> pd.DataFrame:
    """Validate a whole corporate-action file; a frame in ACTION_COLUMNS or ActionFileError
    listing every problem with its row (the header is row 1) and column."""
    header, reader = csv_rows(stream, ActionFileError)
    errors = [
        {"row": 1, "column": name, "message": f"Required column '{name}' is missing."}
        for name in CSV_HEADER
        if name not in header
    ] + [
        {"row": 1, "column": name, "message": f"Unknown column '{name}'; expected {CSV_HEADER}."}
        for name in header
        if name not in CSV_HEADER
    ]
    if errors:
        raise ActionFileError(errors)
    rows: list[dict] = []
    seen: dict[tuple[str, str, date], int] = {}
    for line, cells in enumerate(reader, start=2):
        if not any(c.strip() for c in cells):
            continue
        if len(cells) != len(header):
            errors.append({"row": line, "column": "", "message": f"Expected {len(header)} fields."})
            continue
        record = dict(zip(header, (c.strip() for c in cells), strict=True))
        row, row_errors = _parse_row(record, line)
        if row is not None:
            key = (row["symbol"], row["kind"], row["ex_date"])
            first = seen.setdefault(key, line)
            if first != line:
                row_errors.append(
                    {"row": line, "column": "ex_date", "message": f"Same action as row {first}."}
                )
        errors.extend(row_errors)
        if row is not None and not row_errors:
            rows.append(row)
    if errors:
        raise ActionFileError(errors[:MAX_ERRORS])
    if not rows:
        raise ActionFileError([{"row": 2, "column": "", "message": "The file has no actions."}])
    return pd.DataFrame(rows, columns=ACTION_COLUMNS)


def _parse_row(record: dict[str, str], line: int) -> tuple[dict | None, list[dict]]:
    errors: list[dict] = []

    def fail(column: str, message: str) -> None:
        errors.append({"row": line, "column": column, "message": message})

    symbol = ""
    try:
        symbol = normalize_ticker(record["symbol"])
    except SymbolError as exc:
        fail("symbol", str(exc))
    kind = record["kind"].lower()
    if kind not in CorporateAction.Kind.values:
        fail("kind", f"'{record['kind']}' is not one of {CorporateAction.Kind.values}.")
    days: dict[str, date | None] = {}
    for column in ("ex_date", "pay_date"):
        text = record[column]
        days[column] = None
        if column == "pay_date" and text == "":
            continue
        if not _ISO_DATE.match(text):
            fail(column, f"'{text}' is not a date in YYYY-MM-DD form.")
            continue
        try:
            days[column] = date.fromisoformat(text)
        except ValueError:
            fail(column, f"'{text}' is not a date.")
    ex_date, pay_date = days["ex_date"], days["pay_date"]
    if ex_date is not None and not (
        calendar.FIRST_YEAR <= ex_date.year <= calendar.LAST_YEAR
        and calendar.is_trading_day(ex_date)
    ):
        fail("ex_date", f"{ex_date} is not an NYSE session.")
    if ex_date and pay_date and pay_date < ex_date:
        fail("pay_date", f"The pay date {pay_date} is before the ex-date {ex_date}.")
    numbers: dict[str, Decimal | None] = {}
    needed = {"split": ("split_to", "split_from"), "cash_dividend": ("cash_amount",)}.get(kind, ())
    for column in ("split_to", "split_from", "cash_amount"):
        text = record[column]
        numbers[column] = None
        if text == "":
            if column in needed:
                fail(column, f"A {kind} needs {column}.")
            continue
        if column not in needed:
            fail(column, f"A {kind or 'row'} has no {column}; leave it empty.")
            continue
        try:
            value = Decimal(text)
            if not value.is_finite():
                raise InvalidOperation
        except InvalidOperation:
            fail(column, f"'{text}' is not a number.")
            continue
        if value <= 0:
            fail(column, f"{column} must be positive, not {value}.")
        numbers[column] = value
    if errors:
        return None, errors
    return {
        "symbol": symbol,
        "kind": kind,
        "ex_date": ex_date,
        "pay_date": pay_date,
        **numbers,
    }, errors


@dataclass
class ActionImport:
    rows: int


def corporate_actions_import_csv(
    *, stream: IO[bytes] | IO[str], dry_run: bool = False
) -> ActionImport:
    """Validate the whole file and upsert it (source "csv") in one transaction, or raise
    ValidationFailed listing every bad row and write nothing."""
    try:
        frame = parse_actions(stream)
    except ActionFileError as exc:
        raise ValidationFailed(
            f"The corporate-action file has {len(exc.errors)} problem(s); nothing was imported.",
            fields={"rows": exc.errors},
        ) from exc
    if dry_run:
        return ActionImport(rows=len(frame))
    with transaction.atomic():
        rows = corporate_actions_upsert(frame, source=CorporateAction.Source.CSV)
    return ActionImport(rows=rows)


# Prices ----------------------------------------------------------------------------------


def _claim(action: CorporateAction, security_id: int, factor: Decimal) -> PriceAdjustment | None:
    """The adjustment mark for (action, security), or None when it was already made."""
    adjustment, created = PriceAdjustment.objects.get_or_create(
        action=action, security_id=security_id, defaults={"factor": factor}
    )
    return adjustment if created else None


def _divided(name: str, factor: Decimal) -> ExpressionWrapper:
    return ExpressionWrapper(
        F(name) / Value(factor, output_field=DecimalField()), output_field=DecimalField()
    )


def prices_split_adjust(
    *, action: CorporateAction, security_id: int, factor: Decimal, all_sources: bool = False
) -> int | None:
    """Divide the security's stored bars before the ex-date by `factor`, once per action and
    security (None when already done). Bars that came split-adjusted (from a source that
    adjusts, fetched on or after the ex-date) are left alone unless `all_sources` (an option
    contract's own prices, which no source adjusts). Returns the rows divided."""
    with transaction.atomic():
        adjustment = _claim(action, security_id, factor)
        if adjustment is None:
            return None
        bars = DailyPrice.objects.filter(security_id=security_id, date__lt=action.ex_date)
        if not all_sources:
            bars = bars.exclude(
                source__in=SPLIT_ADJUSTED_SOURCES, fetched_at__gte=ex_date_start(action.ex_date)
            )
        divided = bars.update(**{name: _divided(name, factor) for name in _PRICE_FIELDS})
        adjustment.rows = divided
        adjustment.save(update_fields=["rows"])
    if divided:
        transaction.on_commit(everything_changed)
    return divided


def prices_split_copy(
    *, action: CorporateAction, from_security_id: int, to_security_id: int, factor: Decimal
) -> int | None:
    """Give a contract created by a split (strike / ratio) the history of the one it replaces,
    divided by `factor`, for the sessions before the ex-date it has no bar of its own; once per
    action and new contract (None when already done). Returns the rows written."""
    with transaction.atomic():
        adjustment = _claim(action, to_security_id, factor)
        if adjustment is None:
            return None
        have = set(
            DailyPrice.objects.filter(security_id=to_security_id).values_list("date", flat=True)
        )
        now = timezone.now()
        copies = [
            DailyPrice(
                security_id=to_security_id,
                date=bar.date,
                open=None if bar.open is None else bar.open / factor,
                high=None if bar.high is None else bar.high / factor,
                low=None if bar.low is None else bar.low / factor,
                close=bar.close / factor,
                adjusted_close=None if bar.adjusted_close is None else bar.adjusted_close / factor,
                volume=bar.volume,
                implied_volatility=bar.implied_volatility,
                source=bar.source,
                fetched_at=now,
            )
            for bar in DailyPrice.objects.filter(
                security_id=from_security_id, date__lt=action.ex_date
            ).order_by("date")
            if bar.date not in have
        ]
        DailyPrice.objects.bulk_create(copies, ignore_conflicts=True)
        adjustment.rows = len(copies)
        adjustment.save(update_fields=["rows"])
    if copies:
        transaction.on_commit(everything_changed)
    return len(copies)
