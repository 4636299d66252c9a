"""Writes to the book: positions (one at a time or a whole CSV), tags and strategies.

Every path validates with `position_csv.validate_record`, derives the stored fields the same way
(`_position_fields`), runs in one transaction, and re-detects the portfolio's strategies after
the book changes.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import NamedTuple

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from marketdata.services import securities_ensure
from portfolios import position_csv
from portfolios.calculations.strategies import Leg, detect_strategies
from portfolios.models import Portfolio, Position, PositionTag, Strategy, Tag
from portfolios.rows import (
    ChangedPosition,
    NewPosition,
    PositionTagRow,
    StrategyLegRow,
    StrategyRow,
)
from sigmasight.accounts.models import User
from sigmasight.accounts.services import user_create
from sigmasight.api.caching import book_changed, results_changed
from sigmasight.db import db_timestamp, insert_records, update_records
from sigmasight.exceptions import ConflictError, PayloadTooLarge, ValidationFailed

logger = logging.getLogger("sigmasight.api")


def user_register(*, email: str, password: str, full_name: str) -> tuple[User, Portfolio]:
    """Create a user and their first portfolio, or raise ValidationFailed with field messages
    (nothing is written then)."""
    with transaction.atomic():
        user = user_create(email=email, password=password, full_name=full_name)
        portfolio = Portfolio.objects.create(owner=user, name="Main portfolio")
    return user, portfolio


def owner_changed(owner_id: int) -> None:
    """Something shown in every portfolio of one user changed (a tag's name, their scenario):
    the cached reads of all of them are stale."""
    results_changed(Portfolio.objects.filter(owner_id=owner_id).values_list("pk", flat=True))


EDITABLE_FIELDS = ("quantity", "entry_price", "entry_date", "notes")


class TagMention(NamedTuple):
    """A tag name as a file first spells it, and the row that does."""

    name: str
    row: int


@dataclass(frozen=True)
class ImportResult:
    created: int
    updated: int
    total: int


def _position_type(option_type: str, quantity) -> str:
    if not option_type:
        return Position.PositionType.LONG if quantity > 0 else Position.PositionType.SHORT
    side = "L" if quantity > 0 else "S"
    return f"{side}{option_type}"


def _position_fields(record: position_csv.PositionRecord, security_id: int) -> dict:
    return {
        "security_id": security_id,
        "symbol": record.symbol,
        "underlying_symbol": record.underlying,
        "position_type": _position_type(record.option_type, record.quantity),
        "quantity": record.quantity,
        "entry_price": record.entry_price,
        "entry_date": record.entry_date,
        "option_type": record.option_type,
        "strike": record.strike,
        "expiration": record.expiration,
        "multiplier": 100 if record.option_type else 1,
        "notes": record.notes,
    }


def _invalid(problems: list[dict], what: str = "position file") -> ValidationFailed:
    return ValidationFailed(
        f"The {what} has {len(problems)} problem(s); nothing was written.",
        fields={"rows": problems},
    )


def positions_import_csv(*, portfolio: Portfolio, raw: bytes, mode: str = "append") -> ImportResult:
    """Import a whole position file into `portfolio`, or change nothing.

    `append` updates open lots with the same (symbol, entry_date) and adds the others; `replace`
    swaps the portfolio's positions for the file's. Either way in one transaction, after every
    row validated. Tags named in the file are created for the owner when new.
    """
    if mode not in ("append", "replace"):
        raise ValidationFailed(
            "mode must be append or replace.", fields={"mode": ["Use append or replace."]}
        )
    if len(raw) > settings.SIGMASIGHT_UPLOAD_MAX_BYTES:
        raise PayloadTooLarge(
            f"The file is {len(raw):,} bytes; the limit is {settings.SIGMASIGHT_UPLOAD_MAX_BYTES:,}."
        )
    try:
        records = position_csv.parse(
            raw,
            today=date.today(),
            max_rows=settings.SIGMASIGHT_UPLOAD_MAX_ROWS,
            max_tags=settings.SIGMASIGHT_MAX_TAGS_PER_POSITION,
        )
    except position_csv.TooLarge as exc:
        raise PayloadTooLarge(str(exc)) from exc
    except position_csv.PositionFileError as exc:
        raise _invalid(exc.problems) from exc
    with transaction.atomic():
        result = _store(portfolio, records, replace=(mode == "replace"))
        strategies_refresh(portfolio=portfolio)
        book_changed([portfolio.pk])
    transaction.on_commit(
        lambda: logger.info(
            "positions imported",
            extra={
                "portfolio_id": portfolio.pk,
                "mode": mode,
                "positions_created": result.created,
                "positions_updated": result.updated,
            },
        )
    )
    return result


def _store(
    portfolio: Portfolio, records: list[position_csv.PositionRecord], *, replace: bool
) -> ImportResult:
    tags_by_name = _tags_ensure(portfolio.owner, records)
    security_ids = securities_ensure(sorted({r.symbol for r in records}))
    Portfolio.objects.select_for_update().filter(pk=portfolio.pk).first()
    if replace:
        portfolio.positions.all().delete()
        portfolio.strategies.filter(is_detected=False).delete()
        existing: dict[position_csv.Lot, Position] = {}
    else:
        existing = {
            position_csv.Lot(symbol=p.symbol, entry_date=p.entry_date): p
            for p in portfolio.positions.filter(
                closed_at__isnull=True, symbol__in={r.symbol for r in records}
            )
        }
    now = timezone.now()
    stamp = db_timestamp(Position, "created_at", now)
    new_rows: list[NewPosition] = []
    changed: list[Position] = []
    for record in records:
        fields = _position_fields(record, security_ids[record.symbol])
        position = existing.get(record.lot)
        if position is None:
            new_rows.append(
                NewPosition(portfolio_id=portfolio.pk, **fields, created_at=stamp, updated_at=stamp)
            )
        else:
            for name, value in fields.items():
                setattr(position, name, value)
            changed.append(position)
    insert_records(Position, new_rows)
    _update_positions(changed)
    lots = {r.lot for r in records}
    by_lot = {
        lot: p.id
        for p in Position.objects.filter(
            portfolio_id=portfolio.pk,
            closed_at__isnull=True,
            symbol__in={r.symbol for r in records},
        ).values_list("id", "symbol", "entry_date", named=True)
        if (lot := position_csv.Lot(symbol=p.symbol, entry_date=p.entry_date)) in lots
    }
    tagged = [r for r in records if r.tags is not None]
    PositionTag.objects.filter(position_id__in=[by_lot[r.lot] for r in tagged]).delete()
    insert_records(
        PositionTag,
        [
            PositionTagRow(
                position_id=by_lot[r.lot], tag_id=tags_by_name[name.lower()].pk, created_at=stamp
            )
            for r in tagged
            for name in r.tags or ()
        ],
    )
    _user_strategies_from_file(portfolio, records, by_lot)
    return ImportResult(created=len(new_rows), updated=len(changed), total=len(records))


def _update_positions(positions: list[Position]) -> None:
    """The changed positions in one executemany (`update_records`; bulk_update is far slower)."""
    if not positions:
        return
    stamp = db_timestamp(Position, "updated_at", timezone.now())
    rows = [
        ChangedPosition(
            security_id=p.security_id,
            underlying_symbol=p.underlying_symbol,
            position_type=p.position_type,
            quantity=p.quantity,
            entry_price=p.entry_price,
            option_type=p.option_type,
            strike=p.strike,
            expiration=p.expiration,
            multiplier=p.multiplier,
            notes=p.notes,
            updated_at=stamp,
            id=p.pk,
        )
        for p in positions
    ]
    update_records(Position, rows)


def _tags_ensure(owner, records: Iterable[position_csv.PositionRecord]) -> dict[str, Tag]:
    """The owner's tags by lower-cased name, creating the ones the file names for the first time."""
    wanted: dict[str, TagMention] = {}
    for record in records:
        for name in record.tags or ():
            wanted.setdefault(name.lower(), TagMention(name=name, row=record.row))
    have = {t.name.lower(): t for t in Tag.objects.filter(owner=owner)}
    missing = [key for key in wanted if key not in have]
    limit = settings.SIGMASIGHT_MAX_TAGS_PER_USER
    if len(have) + len(missing) > limit:
        first_over = wanted[missing[limit - len(have)]]
        raise _invalid(
            [
                {
                    "row": first_over.row,
                    "column": "tags",
                    "message": f"'{first_over.name}' would exceed the limit of {limit} tags per user.",
                }
            ]
        )
    if missing:
        Tag.objects.bulk_create([Tag(owner=owner, name=wanted[key].name) for key in missing])
        have = {t.name.lower(): t for t in Tag.objects.filter(owner=owner)}
    return have


def _user_strategies_from_file(
    portfolio: Portfolio,
    records: list[position_csv.PositionRecord],
    by_lot: dict[position_csv.Lot, int],
) -> None:
    groups: dict[position_csv.StrategyName, list[int]] = defaultdict(list)
    for record in records:
        if record.strategy:
            groups[record.strategy].append(by_lot[record.lot])
    for named, positions in groups.items():
        strategy, _ = Strategy.objects.get_or_create(
            portfolio=portfolio, name=named.name, is_detected=False, defaults={"kind": named.kind}
        )
        strategy.positions.add(*positions)


def strategies_refresh(*, portfolio: Portfolio) -> int:
    """Re-detect the portfolio's strategies from its open positions (user-defined ones stay)."""
    legs = [
        Leg(
            id=p.id,
            underlying=p.underlying_symbol,
            quantity=p.quantity,
            option_type=p.option_type or None,
            strike=p.strike,
            expiration=p.expiration,
        )
        # Not `portfolio.positions`: the related manager reads each row's portfolio_id, which
        # `only()` defers, costing one query per position.
        for p in Position.objects.filter(portfolio_id=portfolio.pk, closed_at__isnull=True).only(
            "id", "underlying_symbol", "quantity", "option_type", "strike", "expiration"
        )
    ]
    detected = detect_strategies(legs)
    detected_strategies = Strategy.objects.filter(portfolio_id=portfolio.pk, is_detected=True)
    detected_strategies.delete()
    stamp = db_timestamp(Strategy, "created_at", timezone.now())
    insert_records(
        Strategy,
        [
            StrategyRow(
                portfolio_id=portfolio.pk,
                name=d.name,
                kind=d.kind,
                is_detected=True,
                created_at=stamp,
            )
            for d in detected
        ],
    )
    # Inserted by this transaction alone, so the new ids ascend in insertion order.
    ids = list(detected_strategies.order_by("id").values_list("id", flat=True))
    insert_records(
        Strategy.positions.through,
        [
            StrategyLegRow(strategy_id=strategy_id, position_id=position_id)
            for strategy_id, found in zip(ids, detected, strict=True)
            for position_id in found.position_ids
        ],
    )
    return len(ids)


def _record(data: dict, *, today: date, row: int = 0) -> position_csv.PositionRecord:
    problems = position_csv.Problems()
    strings = {k: "" if v is None else str(v) for k, v in data.items()}
    record = position_csv.validate_record(
        strings, row=row, problems=problems, today=today, has_tags=False
    )
    if record is None:
        fields: dict[str, list[str]] = defaultdict(list)
        for problem in problems.items:
            fields[problem["column"] or "non_field_errors"].append(problem["message"])
        raise ValidationFailed("The position is not valid.", fields=dict(fields))
    return record


def position_create(
    *, portfolio: Portfolio, data: dict, tag_ids: list[int] | None = None
) -> Position:
    """One position from API fields (strings or numbers), validated as a CSV row would be."""
    record = _record(data, today=date.today())
    with transaction.atomic():
        security_id = securities_ensure([record.symbol])[record.symbol]
        try:
            with transaction.atomic():
                position = Position.objects.create(
                    portfolio=portfolio, **_position_fields(record, security_id)
                )
        except IntegrityError as exc:
            raise ConflictError(
                f"An open {record.symbol} lot entered {record.entry_date} already exists in this portfolio.",
                code="duplicate_lot",
            ) from exc
        if tag_ids is not None:
            position_set_tags(position=position, tag_ids=tag_ids)
        strategies_refresh(portfolio=portfolio)
        book_changed([portfolio.pk])
    return position


def position_update(*, position: Position, data: dict) -> Position:
    """Change quantity, entry price, entry date or notes; the instrument itself is fixed."""
    fixed = {k for k in data if k not in EDITABLE_FIELDS}
    if fixed:
        raise ValidationFailed(
            "Only quantity, entry_price, entry_date and notes can change; close the lot and open "
            "another to change the instrument.",
            fields={k: ["This field cannot be changed."] for k in sorted(fixed)},
        )
    current = {
        "symbol": position.symbol,
        "quantity": position.quantity,
        "entry_price": position.entry_price,
        "entry_date": position.entry_date.isoformat(),
        "notes": position.notes,
    }
    record = _record({**current, **data}, today=date.today())
    with transaction.atomic():
        position.quantity = record.quantity
        position.entry_price = record.entry_price
        position.entry_date = record.entry_date
        position.notes = record.notes
        position.position_type = _position_type(position.option_type, record.quantity)
        try:
            with transaction.atomic():
                position.save()
        except IntegrityError as exc:
            raise ConflictError(
                "Another open lot of this symbol has that entry date.", code="duplicate_lot"
            ) from exc
        strategies_refresh(portfolio=position.portfolio)
        book_changed([position.portfolio_id])
    return position


def position_delete(*, position: Position) -> None:
    portfolio = position.portfolio
    with transaction.atomic():
        position.delete()
        strategies_refresh(portfolio=portfolio)
        book_changed([portfolio.pk])


def position_set_tags(*, position: Position, tag_ids: list[int]) -> Position:
    """Replace a position's tags with the owner's tags `tag_ids` (another user's ids are unknown)."""
    ids = list(dict.fromkeys(tag_ids))
    limit = settings.SIGMASIGHT_MAX_TAGS_PER_POSITION
    if len(ids) > limit:
        raise ValidationFailed(
            "Too many tags.", fields={"tag_ids": [f"At most {limit} tags per position."]}
        )
    owner_id = position.portfolio.owner_id
    found = set(Tag.objects.filter(owner_id=owner_id, id__in=ids).values_list("id", flat=True))
    unknown = [i for i in ids if i not in found]
    if unknown:
        raise ValidationFailed(
            "Unknown tags.", fields={"tag_ids": [f"No tag with id {i}." for i in unknown]}
        )
    with transaction.atomic():
        PositionTag.objects.filter(position=position).exclude(tag_id__in=ids).delete()
        present = set(
            PositionTag.objects.filter(position=position).values_list("tag_id", flat=True)
        )
        PositionTag.objects.bulk_create(
            [PositionTag(position=position, tag_id=i) for i in ids if i not in present]
        )
        book_changed([position.portfolio_id])
    return position


def tag_create(*, owner, name: str, color: str | None = None, description: str = "") -> Tag:
    limit = settings.SIGMASIGHT_MAX_TAGS_PER_USER
    with transaction.atomic():
        if Tag.objects.filter(owner=owner).count() >= limit:
            raise ValidationFailed(
                "Tag limit reached.", fields={"name": [f"At most {limit} tags per user."]}
            )
        _tag_name_free(owner, name)
        extra = {"color": color} if color else {}
        return Tag.objects.create(owner=owner, name=name, description=description, **extra)


def tag_update(*, tag: Tag, data: dict) -> Tag:
    if "name" in data:
        _tag_name_free(tag.owner, data["name"], exclude=tag.pk)
    for key in ("name", "color", "description"):
        if key in data:
            setattr(tag, key, data[key])
    tag.save()
    owner_changed(tag.owner_id)  # positions show their tags' names
    return tag


def _tag_name_free(owner, name: str, exclude: int | None = None) -> None:
    clash = Tag.objects.filter(owner=owner, name__iexact=name)
    if exclude is not None:
        clash = clash.exclude(pk=exclude)
    if clash.exists():
        raise ValidationFailed(
            "Tag names are unique.", fields={"name": [f"You already have a tag named '{name}'."]}
        )


def strategy_legs_problem(kind: str | None, quantities: list) -> str | None:
    """Why these legs cannot make a user-defined strategy of `kind`, or None."""
    if kind == Strategy.Kind.PAIRS and (
        len(quantities) != 2 or {q > 0 for q in quantities} != {True, False}
    ):
        return "A pairs trade is one long and one short position."
    return None


def _strategy_legs(portfolio: Portfolio, kind: str, position_ids: list[int]) -> list[int]:
    """The distinct position ids of a user-defined strategy, checked: every one in `portfolio`,
    and a pairs trade one long and one short."""
    ids = list(dict.fromkeys(position_ids))
    found = set(portfolio.positions.filter(id__in=ids).values_list("id", flat=True))
    unknown = [i for i in ids if i not in found]
    if unknown:
        raise ValidationFailed(
            "Unknown positions.",
            fields={"position_ids": [f"No position {i} in this portfolio." for i in unknown]},
        )
    if kind == Strategy.Kind.PAIRS:
        sides = {
            q > 0 for q in portfolio.positions.filter(id__in=ids).values_list("quantity", flat=True)
        }
        if len(ids) != 2 or sides != {True, False}:
            raise ValidationFailed(
                "A pairs trade is one long and one short position.",
                fields={"position_ids": ["Give one long and one short position."]},
            )
    return ids


def strategy_create(
    *, portfolio: Portfolio, name: str, kind: str, position_ids: list[int]
) -> Strategy:
    """A user-defined strategy (pairs or custom) over positions of the same portfolio."""
    ids = _strategy_legs(portfolio, kind, position_ids)
    with transaction.atomic():
        strategy = Strategy.objects.create(
            portfolio=portfolio, name=name, kind=kind, is_detected=False
        )
        strategy.positions.set(ids)
        book_changed([portfolio.pk])
    return strategy


def strategy_update(
    *, strategy: Strategy, name: str | None = None, position_ids: list[int] | None = None
) -> Strategy:
    """Rename a user-defined strategy or change its legs; detected strategies follow the book
    and are refused."""
    if strategy.is_detected:
        raise ValidationFailed(
            "Detected strategies follow the book; change positions instead.",
            code="strategy_detected",
        )
    ids = (
        None
        if position_ids is None
        else _strategy_legs(strategy.portfolio, strategy.kind, position_ids)
    )
    with transaction.atomic():
        if name is not None:
            strategy.name = name
            strategy.save(update_fields=["name"])
        if ids is not None:
            strategy.positions.set(ids)
        book_changed([strategy.portfolio_id])
    return strategy


def position_upload_row(p: Position) -> dict:
    """A lot as a row of the upload format (tags and its user-defined strategy included).
    Expects `tags` and `strategies` prefetched."""
    user = [st for st in p.strategies.all() if not st.is_detected]
    return {
        "symbol": p.symbol,
        "quantity": p.quantity,
        "entry_price": p.entry_price,
        "entry_date": p.entry_date,
        "underlying": p.underlying_symbol if p.option_type else "",
        "option_type": p.option_type,
        "strike": p.strike,
        "expiration": p.expiration,
        "tags": ";".join(sorted((t.name for t in p.tags.all()), key=str.lower)),
        "strategy": f"{user[0].kind}:{user[0].name}" if user else "",
        "notes": p.notes,
    }


def positions_for_export(portfolio: Portfolio) -> Iterable[dict]:
    """Open positions as rows of the upload format."""
    positions = (
        Position.objects.filter(portfolio_id=portfolio.pk, closed_at__isnull=True)
        .prefetch_related("tags", "strategies")
        .order_by("id")
    )
    return (position_upload_row(p) for p in positions)
