"""The position CSV of API.md: parse, validate every row, and write it back.

Columns: symbol, quantity, entry_price, entry_date (required); underlying, option_type, strike,
expiration, tags (";"-separated), strategy, notes (optional). Order is free; unknown or repeated
columns are errors. Rows are numbered as lines of the file (the header is row 1).

`validate_record` is the single validation of one position, used by the CSV upload, the admin
import, the `import_positions` command and the positions API, so every entry point gives the same
messages. Nothing here touches the database.

Spreadsheet safety: `write` passes every cell through `sigmasight.exports.safe_cell` (`csv_writer`: text that
starts with = + - @, a tab or a carriage return gets a leading apostrophe, so a spreadsheet never
runs it); reading removes that one apostrophe from the text cells (tags, strategy, notes) again,
so export then import round-trips. Text cells refuse control characters (the one validator,
`sigmasight.validators`); notes may hold tabs and line breaks.
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import NamedTuple

from django.core.exceptions import ValidationError

from marketdata.symbols import SymbolError, build_occ, looks_like_occ, normalize_ticker, parse_occ
from sigmasight.exports import TextSink, csv_writer, unescape_cell
from sigmasight.validators import no_control_characters, no_control_characters_multiline

REQUIRED = ["symbol", "quantity", "entry_price", "entry_date"]
OPTIONAL = ["underlying", "option_type", "strike", "expiration", "tags", "strategy", "notes"]
COLUMNS = [*REQUIRED, *OPTIONAL]
TEXT_COLUMNS = ("tags", "strategy", "notes")
MAX_ERRORS = 500
MAX_CELL = 2_000
MAX_NOTES = 1_000
MAX_STRATEGY_NAME = 120
MAX_TAG_LENGTH = 50
QUANTITY_PLACES = 6
PRICE_PLACES = 6
LIMIT = Decimal("1e12")
USER_STRATEGY_KINDS = ("pairs", "custom")
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
MAX_HEADER_COLUMNS = 2 * len(COLUMNS)
_OPTION_TYPES = {"C": "C", "CALL": "C", "P": "P", "PUT": "P"}


@dataclass(frozen=True)
class PositionRecord:
    """One validated position, ready for the service to store."""

    row: int
    symbol: str  # ticker, or the compact OCC symbol for options
    underlying: str
    option_type: str  # "" for stocks
    strike: Decimal | None
    expiration: date | None
    quantity: Decimal
    entry_price: Decimal
    entry_date: date
    tags: tuple[str, ...] | None  # None: the file has no tags column (keep existing tags)
    strategy: StrategyName | None  # a user-defined strategy
    notes: str

    @property
    def lot(self) -> Lot:
        return Lot(symbol=self.symbol, entry_date=self.entry_date)


class Lot(NamedTuple):
    """What tells a portfolio's open lots apart (a key, equal to the plain tuple)."""

    symbol: str
    entry_date: date


class StrategyName(NamedTuple):
    """A user-defined strategy as the strategy column names it (`kind:name`)."""

    kind: str
    name: str


class Instrument(NamedTuple):
    """What a row holds: a ticker, or an option's OCC symbol and terms."""

    symbol: str | None  # None when unreadable (a problem is recorded)
    underlying: str
    option_type: str  # "" for stocks
    strike: Decimal | None
    expiration: date | None


NO_INSTRUMENT = Instrument(symbol=None, underlying="", option_type="", strike=None, expiration=None)


@dataclass
class Problems:
    items: list[dict] = field(default_factory=list)

    def add(self, row: int, column: str, message: str) -> None:
        if len(self.items) < MAX_ERRORS:
            self.items.append({"row": row, "column": column, "message": message})


class PositionFileError(Exception):
    def __init__(self, problems: list[dict]) -> None:
        super().__init__(f"{len(problems)} problem(s) in the position file")
        self.problems = problems


class TooLarge(Exception):
    """The file exceeds the row or size limit (answered with 413)."""


def _decimal(text: str, column: str, places: int, fail) -> Decimal | None:
    try:
        value = Decimal(text)
    except InvalidOperation:
        fail(column, f"'{text}' is not a number.")
        return None
    if not value.is_finite():
        fail(column, f"'{text}' is not a finite number.")
        return None
    if abs(value) >= LIMIT:
        fail(column, f"{text} is out of range.")
        return None
    if value != value.quantize(Decimal(1).scaleb(-places)):
        fail(column, f"{text} has more than {places} decimal places.")
        return None
    return value


def _date(text: str, column: str, fail) -> date | None:
    # fromisoformat alone also takes 20240102 and 2024-W01-2; the format is YYYY-MM-DD only.
    try:
        if not ISO_DATE.match(text):
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        fail(column, f"'{text}' is not a date in YYYY-MM-DD form.")
        return None


def validate_record(
    record: Mapping[str, str | None],
    *,
    row: int,
    problems: Problems,
    today: date,
    has_tags: bool = True,
) -> PositionRecord | None:
    """Validate one position given as strings (a CSV row, or an API body turned into strings)."""
    before = len(problems.items)

    def fail(column: str, message: str) -> None:
        problems.add(row, column, message)

    cells = {k: (record.get(k) or "").strip() for k in COLUMNS}
    for column in TEXT_COLUMNS:
        cells[column] = unescape_cell(cells[column])
    for column, text in cells.items():
        if "\x00" in text:
            fail(column, "The value contains a NUL character.")
            cells[column] = ""
        elif len(text) > MAX_CELL:
            fail(
                column, f"The value is {len(text)} characters long; at most {MAX_CELL} are allowed."
            )
            cells[column] = ""
        elif column in TEXT_COLUMNS:
            validator = (
                no_control_characters_multiline if column == "notes" else no_control_characters
            )
            try:
                validator(text)
            except ValidationError as exc:
                fail(column, exc.messages[0])
                cells[column] = ""
    for column in REQUIRED:
        if not cells[column]:
            fail(column, f"'{column}' is required.")

    instrument = _instrument(cells, fail)
    quantity = (
        _decimal(cells["quantity"], "quantity", QUANTITY_PLACES, fail)
        if cells["quantity"]
        else None
    )
    if quantity is not None:
        if quantity == 0:
            fail("quantity", "The quantity cannot be zero (use a negative quantity for a short).")
        elif instrument.option_type and quantity != quantity.to_integral_value():
            fail("quantity", "Options are held in whole contracts.")
    entry_price = (
        _decimal(cells["entry_price"], "entry_price", PRICE_PLACES, fail)
        if cells["entry_price"]
        else None
    )
    if entry_price is not None and entry_price < 0:
        fail("entry_price", f"The entry price cannot be negative ({entry_price}).")
    entry_date = _date(cells["entry_date"], "entry_date", fail) if cells["entry_date"] else None
    if entry_date is not None:
        if entry_date > today:
            fail("entry_date", f"{entry_date} is in the future.")
        elif entry_date.year < 1900:
            fail("entry_date", f"{entry_date} is implausibly old.")
        elif instrument.expiration is not None and instrument.expiration < entry_date:
            fail(
                "expiration",
                f"The option expired ({instrument.expiration}) before it was entered ({entry_date}).",
            )

    tags = _tags(cells["tags"], fail) if has_tags else None
    strategy = _strategy(cells["strategy"], fail)
    if len(cells["notes"]) > MAX_NOTES:
        fail("notes", f"Notes are limited to {MAX_NOTES} characters.")

    if len(problems.items) > before or instrument.symbol is None:
        return None
    # Required cells: a missing or unreadable one is a problem, returned above.
    assert quantity is not None and entry_price is not None and entry_date is not None
    return PositionRecord(
        row=row,
        symbol=instrument.symbol,
        underlying=instrument.underlying,
        option_type=instrument.option_type,
        strike=instrument.strike,
        expiration=instrument.expiration,
        quantity=quantity,
        entry_price=entry_price,
        entry_date=entry_date,
        tags=tags,
        strategy=strategy,
        notes=cells["notes"],
    )


def _instrument(cells: dict[str, str], fail) -> Instrument:
    """Symbol and option terms, from an OCC symbol or from the option columns (which must agree)."""
    raw_symbol = cells["symbol"]
    if not raw_symbol:
        return NO_INSTRUMENT
    given = {k: cells[k] for k in ("option_type", "strike", "expiration") if cells[k]}
    column_type = _OPTION_TYPES.get(cells["option_type"].upper()) if cells["option_type"] else None
    if cells["option_type"] and column_type is None:
        fail("option_type", f"'{cells['option_type']}' is not C or P.")
        return NO_INSTRUMENT
    column_strike = _decimal(cells["strike"], "strike", 4, fail) if cells["strike"] else None
    if column_strike is not None and column_strike <= 0:
        fail("strike", "The strike must be positive.")
        return NO_INSTRUMENT
    column_expiration = (
        _date(cells["expiration"], "expiration", fail) if cells["expiration"] else None
    )
    if looks_like_occ(raw_symbol):
        try:
            occ = parse_occ(raw_symbol)
        except SymbolError as exc:
            fail("symbol", str(exc))
            return NO_INSTRUMENT
        for column, mine, theirs in (
            ("option_type", column_type, occ.option_type),
            ("strike", column_strike, occ.strike),
            ("expiration", column_expiration, occ.expiration),
        ):
            if cells[column] and mine != theirs:
                fail(column, f"{column} {cells[column]} disagrees with the OCC symbol ({theirs}).")
        if cells["underlying"] and cells["underlying"].upper() != occ.root:
            fail(
                "underlying",
                f"The underlying {cells['underlying']} disagrees with the OCC symbol ({occ.root}).",
            )
        return Instrument(
            symbol=occ.symbol,
            underlying=occ.root,
            option_type=occ.option_type,
            strike=occ.strike,
            expiration=occ.expiration,
        )
    try:
        ticker = normalize_ticker(raw_symbol)
    except SymbolError as exc:
        fail("symbol", f"{exc} Options use an OCC symbol such as AAPL250117C00200000.")
        return NO_INSTRUMENT
    if not given:
        if cells["underlying"] and normalize_ticker_or_none(cells["underlying"]) != ticker:
            fail("underlying", "A stock's underlying is the stock itself; leave it empty.")
            return NO_INSTRUMENT
        return Instrument(
            symbol=ticker, underlying=ticker, option_type="", strike=None, expiration=None
        )
    missing = [k for k in ("option_type", "strike", "expiration") if k not in given]
    if missing:
        fail(
            missing[0],
            "An option in columns needs option_type, strike and expiration "
            f"({', '.join(missing)} missing).",
        )
        return NO_INSTRUMENT
    if column_type is None or column_strike is None or column_expiration is None:
        return NO_INSTRUMENT
    root = normalize_ticker_or_none(cells["underlying"]) or ticker
    if not 2000 <= column_expiration.year <= 2099:
        fail("expiration", "An OCC option symbol holds expirations from 2000 to 2099 only.")
        return NO_INSTRUMENT
    try:
        symbol = build_occ(root, column_expiration, column_type, column_strike)
    except SymbolError as exc:
        fail("symbol", str(exc))
        return NO_INSTRUMENT
    return Instrument(
        symbol=symbol,
        underlying=root,
        option_type=column_type,
        strike=column_strike,
        expiration=column_expiration,
    )


def normalize_ticker_or_none(text: str) -> str | None:
    try:
        return normalize_ticker(text) if text else None
    except SymbolError:
        return None


def _tags(text: str, fail) -> tuple[str, ...]:
    names: dict[str, str] = {}
    for part in text.split(";"):
        name = part.strip()
        if not name:
            continue
        if len(name) > MAX_TAG_LENGTH:
            fail("tags", f"The tag '{name[:20]}...' is longer than {MAX_TAG_LENGTH} characters.")
            continue
        names.setdefault(name.lower(), name)
    return tuple(names.values())


def _strategy(text: str, fail) -> StrategyName | None:
    if not text:
        return None
    kind, separator, name = text.partition(":")
    if not separator or kind.strip().lower() not in USER_STRATEGY_KINDS:
        kind, name = "custom", text
    name = name.strip()
    if not name or len(name) > MAX_STRATEGY_NAME:
        fail("strategy", f"A strategy name is 1 to {MAX_STRATEGY_NAME} characters.")
        return None
    return StrategyName(kind=kind.strip().lower(), name=name)


def decode(raw: bytes) -> str:
    """The file as text, or PositionFileError saying why it cannot be read."""
    if raw.startswith(b"\xef\xbb\xbf"):
        raise PositionFileError(
            [
                {
                    "row": 1,
                    "column": "",
                    "message": "The file starts with a byte-order mark (BOM); "
                    "save it as plain UTF-8 CSV.",
                }
            ]
        )
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise PositionFileError(
            [{"row": line, "column": "", "message": "The file is not UTF-8 text."}]
        ) from exc


def parse(raw: bytes, *, today: date, max_rows: int, max_tags: int) -> list[PositionRecord]:
    """Every position of a file, or PositionFileError listing every problem, or TooLarge."""
    text = decode(raw)
    if not text.strip():
        raise PositionFileError([{"row": 1, "column": "", "message": "The file is empty."}])
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    problems = Problems()
    try:
        header = [h.strip().lower() for h in next(reader)]
        _check_header(header, problems)
        if problems.items:
            raise PositionFileError(problems.items)
        records: list[PositionRecord] = []
        lots: dict[Lot, int] = {}
        has_tags = "tags" in header
        data_rows = 0
        last_line = reader.line_num
        for cells in reader:
            # A quoted cell may span lines: report the line where the record starts.
            row, last_line = last_line + 1, reader.line_num
            if not any(c.strip() for c in cells):
                continue
            data_rows += 1
            if data_rows > max_rows:
                raise TooLarge(f"The file has more than {max_rows:,} positions.")
            if len(cells) != len(header):
                problems.add(row, "", f"Expected {len(header)} fields, found {len(cells)}.")
                continue
            record = validate_record(
                dict(zip(header, cells, strict=True)),
                row=row,
                problems=problems,
                today=today,
                has_tags=has_tags,
            )
            if record is None:
                continue
            if record.tags and len(record.tags) > max_tags:
                problems.add(
                    row, "tags", f"At most {max_tags} tags per position ({len(record.tags)} given)."
                )
                continue
            first = lots.setdefault(record.lot, row)
            if first != row:
                problems.add(
                    row,
                    "symbol",
                    f"{record.symbol} entered {record.entry_date} already appears in row {first}.",
                )
                continue
            records.append(record)
    except csv.Error as exc:
        problems.add(reader.line_num, "", f"The file is not valid CSV: {exc}.")
    if problems.items:
        raise PositionFileError(problems.items)
    if not records:
        raise PositionFileError([{"row": 2, "column": "", "message": "The file has no positions."}])
    return records


def _check_header(header: list[str], problems: Problems) -> None:
    if len(header) == 1 and (";" in header[0] or "\t" in header[0]):
        separator = "semicolons" if ";" in header[0] else "tabs"
        problems.add(1, "", f"Columns are separated by {separator}; use commas.")
        return
    if len(header) > MAX_HEADER_COLUMNS:
        problems.add(
            1, "", f"The header has {len(header):,} columns; the format has {len(COLUMNS)}."
        )
        return
    for name, count in sorted(Counter(header).items()):
        if count > 1:
            problems.add(1, name, f"Column '{name}' appears {count} times.")
    for name in header:
        if name not in COLUMNS:
            problems.add(1, name, f"Unknown column '{name}'; allowed: {', '.join(COLUMNS)}.")
    for name in REQUIRED:
        if name not in header:
            problems.add(1, name, f"Required column '{name}' is missing.")


def _plain(value: Decimal | None) -> str:
    if value is None:
        return ""
    return format(value.normalize(), "f")


def write(rows: Iterable[Mapping[str, object]], out: TextSink) -> int:
    """Write positions (mappings with the COLUMNS keys) in the upload format."""
    writer = csv_writer(out)
    writer.writerow(COLUMNS)
    count = 0
    for row in rows:
        values = []
        for column in COLUMNS:
            value = row.get(column)
            if isinstance(value, Decimal):
                text = _plain(value)
            elif isinstance(value, date):
                text = value.isoformat()
            else:
                text = "" if value is None else str(value)
            values.append(text)
        writer.writerow(values)
        count += 1
    return count
