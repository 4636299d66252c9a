"""Bounded storage: position-level results are kept for SIGMASIGHT_POSITION_RESULTS_RETENTION
sessions (default 63, a quarter of a year), applied by the evening's `retention` job.

Position-level results are most of what an evening writes: at 10,000 positions about 180,000
rows a session (Greeks, 17 factor exposures, IR betas; the risk contributions are one row of
vectors per book and confidence), 45 million a year. What reads them needs the latest sessions only: the API and pages serve a
session's own rows, the attribution job reads the previous session's exposures and Greeks, what-if
freezes the latest. Portfolio-level results (risk metrics, factor exposures of the book, market
scenarios, contributions, stress results) and snapshots keep their own retention (snapshots and
the attribution rows read beside them: SIGMASIGHT_SNAPSHOT_RETENTION_DAYS).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from django.conf import settings
from django.db import models
from django.db.models import Subquery

from analytics.models import (
    PositionContributionSet,
    PositionFactorExposure,
    PositionGreeks,
    PositionInterestRateBeta,
)
from marketdata import calendar
from portfolios.models import Position

# The tables the retention applies to: each has `date` and `position` (or `portfolio`: a book's
# position components are one row of vectors).
POSITION_RESULTS: tuple[type[models.Model], ...] = (
    PositionGreeks,
    PositionFactorExposure,
    PositionInterestRateBeta,
    PositionContributionSet,
)


@dataclass(frozen=True)
class Pruned:
    cutoff: date | None  # the oldest session kept; None: the calendar is shorter than the setting
    rows: dict[str, int]  # table -> rows deleted


def of_portfolios(model: type[models.Model], portfolio_ids: list[int]) -> models.QuerySet:
    """One POSITION_RESULTS table's rows of these portfolios. Their positions as a subquery on
    `position_id`, not a join: Django deletes a joined queryset as `id IN (SELECT .. JOIN ..)`,
    which PostgreSQL answered by scanning the whole table for the semi-join (one session's
    17,000 factor exposures out of 1.36 million rows: 0.186 s), where the subquery lets the
    delete use the table's (date, ...) key itself (0.014 s)."""
    if model is PositionContributionSet:
        return model._default_manager.filter(portfolio_id__in=portfolio_ids)
    positions = Position.objects.filter(portfolio_id__in=portfolio_ids).values("id")
    return model._default_manager.filter(position_id__in=Subquery(positions))


def retention_cutoff(as_of: date, sessions: int | None = None) -> date | None:
    """The oldest session whose position-level results are kept on `as_of`."""
    keep = sessions if sessions is not None else settings.SIGMASIGHT_POSITION_RESULTS_RETENTION
    kept = calendar.sessions_back(as_of, keep)
    return kept[0] if len(kept) == keep else None


def position_results_prune(*, as_of: date, portfolio_ids: list[int]) -> Pruned:
    """Delete the portfolios' position-level results of sessions before the retention's cutoff
    (one DELETE per table, through the positions' index)."""
    cutoff = retention_cutoff(as_of)
    rows: dict[str, int] = {}
    if cutoff is None or not portfolio_ids:
        return Pruned(cutoff, rows)
    for model in POSITION_RESULTS:
        old = of_portfolios(model, portfolio_ids).filter(date__lt=cutoff)
        deleted, _ = old.delete()  # no signals, no relations: Django's fast path, one DELETE
        rows[model._meta.db_table] = deleted
    return Pruned(cutoff, rows)
