"""The evening's evaluation of risk limits (the `limits` job): every active limit against the
stored measures of the session (`modeling.limits.measures`), and the breaches it opens, updates
and resolves.

A limit applies to its portfolio, or, with no portfolio, to each of its owner's portfolios; never
to another user's. For each (limit, portfolio) on session `as_of`:
- beyond a level and no unresolved breach: a breach is opened (status open, first and last seen
  the session) with an `opened` event;
- beyond a level with an unresolved breach: the breach follows the measure (session, last seen,
  value, level, level crossed); when it worsened since the user was last told (its level rose
  from warning to hard, or at the same level its distance beyond the level grew by more than
  SIGMASIGHT_LIMIT_WORSEN_STEP x |level|), a `worsened` event, and an acknowledged breach whose
  level rose is open again (one acknowledged at the same level stays acknowledged);
- back within: the breach is resolved on the session with a `resolved` event (the breach keeps
  the last value beyond the level; the event carries the value back within).
Values and levels are in the limit's unit (share_of_equity: a decimal of the session's equity).

No going back: a session earlier than a breach's last session (its last_seen, or the session it
was resolved on) leaves it alone and opens nothing beside it. Re-running a session changes
nothing: events are unique per breach, session and kind, and a breach is written only when a
field changes. A value that cannot be found (None) leaves the breach as it is; the reason goes
into the job's warnings. An unresolved breach of a limit that no longer applies to the portfolio
(deactivated, or moved to another portfolio) is resolved by the job with no event: the user
turned the limit off, there is nothing to tell. A deleted limit's breaches go with it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from django.conf import settings
from django.db import transaction
from django.db.models import Max, Q

from analytics.selectors import ReadCache
from marketdata import calendar
from modeling.limit_models import Breach, BreachEvent, Limit
from modeling.limits.measures import measures_read
from modeling.limits.spec import MEASURES, level_of, limit_errors, severity
from portfolios.models import Portfolio

RESOLVED = Breach.Status.RESOLVED
UPDATED_FIELDS = [
    "session",
    "last_seen",
    "value",
    "level",
    "bound_value",
    "status",
    "notified_value",
    "resolved_on",
]


@dataclass
class _Changes:
    opened: list[Breach] = field(default_factory=list)
    updated: list[Breach] = field(default_factory=list)
    events: list[BreachEvent] = field(default_factory=list)
    worsened: int = 0
    resolved: int = 0
    retired: int = 0


def _beyond(bound: str, value: float, level: float) -> float:
    """How far `value` is beyond `level` (positive: beyond), in the limit's unit."""
    if bound == "min":
        return level - value
    if bound == "abs_max":
        return abs(value) - level
    return value - level


def _worsened(limit: Limit, breach: Breach, level: str, bound_value: float, value: float) -> bool:
    """Worse than when the user was last told: a higher level, or at the same level further
    beyond it by more than the step (a share of |the level|)."""
    if severity(level) > severity(breach.level):
        return True
    if level != breach.level:
        return False
    grown = _beyond(limit.bound, value, bound_value) - _beyond(
        limit.bound, breach.notified_value, bound_value
    )
    return grown > settings.SIGMASIGHT_LIMIT_WORSEN_STEP * abs(bound_value)


def _portfolios_of(limit: Limit, ids: list[int], owners: dict[int, int]) -> list[int]:
    if limit.portfolio_id is not None:
        applies = owners.get(limit.portfolio_id) == limit.owner_id
        return [limit.portfolio_id] if applies else []
    return [pk for pk in ids if owners[pk] == limit.owner_id]


def _state(breach: Breach) -> tuple:
    return tuple(getattr(breach, name) for name in UPDATED_FIELDS)


def _follow(
    limit: Limit,
    breach: Breach,
    as_of: date,
    value: float,
    level: str | None,
    bound_value: float | None,
    changes: _Changes,
) -> None:
    """An unresolved breach on a session at or after its last one: updated or resolved."""
    before = _state(breach)
    breach.session = as_of
    if level is None:
        breach.status, breach.resolved_on = RESOLVED, as_of
        changes.events.append(
            BreachEvent(breach=breach, session=as_of, kind="resolved", value=value, level="")
        )
        changes.resolved += 1
    else:
        assert bound_value is not None
        if _worsened(limit, breach, level, bound_value, value):
            if severity(level) > severity(breach.level):
                breach.status = Breach.Status.OPEN
            breach.notified_value = value
            changes.events.append(
                BreachEvent(breach=breach, session=as_of, kind="worsened", value=value, level=level)
            )
            changes.worsened += 1
        breach.last_seen, breach.value = as_of, value
        breach.level, breach.bound_value = level, bound_value
    if _state(breach) != before:
        changes.updated.append(breach)


def _limits_applying(
    ids: list[int], owners: dict[int, int], warnings: dict[int, list[str]]
) -> tuple[list[Limit], set[tuple[int, int]]]:
    """The active limits on the portfolios or on all of their owners', and the (limit,
    portfolio) pairs of those that are invalid (written around the API: reported in the
    warnings, not evaluated, their breaches left as they are)."""
    limits, invalid = [], set()
    for limit in (
        Limit.objects.filter(is_active=True)
        .filter(
            Q(portfolio_id__in=ids) | Q(portfolio__isnull=True, owner_id__in=set(owners.values()))
        )
        .order_by("id")
    ):
        errors = limit_errors(
            {
                "measure": limit.measure,
                "params": limit.params,
                "bound": limit.bound,
                "unit": limit.unit,
                "warning": limit.warning,
                "hard": limit.hard,
            }
        )
        if not errors:
            limits.append(limit)
            continue
        for pk in _portfolios_of(limit, ids, owners):
            warnings.setdefault(pk, []).append(f"limit {limit.pk} is invalid: {errors}"[:300])
            invalid.add((limit.pk, pk))
    return limits, invalid


def limits_evaluate(
    *, as_of: date, portfolio_ids: list[int], reads: ReadCache | None = None
) -> dict:
    """Evaluate every active limit applying to the portfolios on session `as_of` and move their
    breaches, in one transaction. Returns counts: limits (active limits applying), evaluated
    ((limit, portfolio) pairs with a value), opened, worsened, resolved (with an event), retired
    (breaches of limits no longer applying, resolved without one), and warnings {portfolio id:
    [why a limit was not evaluated]}. Nothing on a day NYSE is closed."""
    counts: dict = dict.fromkeys(
        ("limits", "evaluated", "opened", "worsened", "resolved", "retired"), 0
    )
    warnings: dict[int, list[str]] = {}
    ids = sorted(set(portfolio_ids))
    if not ids or not calendar.is_trading_day(as_of):
        return {**counts, "warnings": warnings}
    owners = dict(Portfolio.objects.filter(pk__in=ids).order_by("pk").values_list("pk", "owner"))
    ids = sorted(owners)
    limits, invalid = _limits_applying(ids, owners, warnings)
    measures = measures_read(
        as_of=as_of,
        portfolio_ids=ids,
        requests=[(limit.measure, limit.params) for limit in limits],
        reads=reads,
    )
    changes = _Changes()
    with transaction.atomic():
        unresolved = {
            (b.limit_id, b.portfolio_id): b
            for b in Breach.objects.select_for_update()
            .filter(portfolio_id__in=ids)
            .exclude(status=RESOLVED)
            .order_by("id")
        }
        last_resolved = {
            (limit_id, pk): day
            for limit_id, pk, day in Breach.objects.filter(
                portfolio_id__in=ids, status=RESOLVED, limit__in=limits
            )
            .values("limit_id", "portfolio_id")
            .annotate(day=Max("resolved_on"))
            .order_by("limit_id", "portfolio_id")
            .values_list("limit_id", "portfolio_id", "day")
        }
        applying = set(invalid)
        for limit in limits:
            counts["limits"] += 1
            for pk in _portfolios_of(limit, ids, owners):
                key = (limit.pk, pk)
                applying.add(key)
                found = measures.in_unit(pk, limit.measure, limit.params, limit.unit)
                if found.value is None:
                    label = f"limit {limit.pk} ({MEASURES[limit.measure].label})"
                    warnings.setdefault(pk, []).append(f"{label}: {found.reason}"[:300])
                    continue
                counts["evaluated"] += 1
                level, bound_value = level_of(limit.bound, limit.warning, limit.hard, found.value)
                breach = unresolved.get(key)
                if breach is not None:
                    if as_of >= breach.last_seen:
                        _follow(limit, breach, as_of, found.value, level, bound_value, changes)
                    continue
                gone = last_resolved.get(key)
                if level is None or (gone is not None and as_of <= gone):
                    continue
                assert bound_value is not None
                changes.opened.append(
                    Breach(
                        limit=limit,
                        portfolio_id=pk,
                        session=as_of,
                        value=found.value,
                        bound_value=bound_value,
                        level=level,
                        status=Breach.Status.OPEN,
                        first_seen=as_of,
                        last_seen=as_of,
                        notified_value=found.value,
                    )
                )
        for key, breach in unresolved.items():
            if key not in applying and as_of >= breach.last_seen:
                breach.status, breach.resolved_on, breach.session = RESOLVED, as_of, as_of
                changes.updated.append(breach)
                changes.retired += 1
        _write(changes, as_of)
    counts.update(
        opened=len(changes.opened),
        worsened=changes.worsened,
        resolved=changes.resolved,
        retired=changes.retired,
    )
    return {**counts, "warnings": warnings}


def _write(changes: _Changes, as_of: date) -> None:
    """Bulk: the updated breaches, the new ones, then every event (one already stored for its
    breach, session and kind is kept as it is)."""
    if changes.updated:
        Breach.objects.bulk_update(changes.updated, UPDATED_FIELDS)
    if changes.opened:
        Breach.objects.bulk_create(changes.opened)
        changes.events.extend(
            BreachEvent(
                breach=breach, session=as_of, kind="opened", value=breach.value, level=breach.level
            )
            for breach in changes.opened
        )
    if changes.events:
        BreachEvent.objects.bulk_create(changes.events, ignore_conflicts=True)
