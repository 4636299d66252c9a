"""Where the risk comes from, read (issue "Where the risk comes from", item 6): the stored
contributions of `analytics.contributions` served by GET /risk/contributions/ and the reports,
by position or grouped by underlying, tag, strategy, sector, industry or factor
(`risk_contributions`). Units and signs as stored: currency, a loss positive, a hedge's
component negative, the components of a measure summing to its total."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
from django.db.models import Subquery
from scipy import stats

from analytics.calculations import contributions as calc
from analytics.contribution_models import (
    PortfolioRiskContribution,
    PositionContributionSet,
    vector,
)
from analytics.contributions import (
    BY,
    MEASURES,
    METHODS,
    NO_STRATEGY,
    SPECIFIC,
    UNTAGGED,
    finite,
)
from analytics.liquidity import classifications
from portfolios.models import Portfolio, PositionTag, Strategy
from sigmasight.exceptions import ValidationFailed


@dataclass(frozen=True)
class ContributionRow:
    key: str
    position: int | None  # the position's id (by=position)
    positions: int  # positions in the group
    exposure: float | None
    component: float | None
    marginal: float | None
    percent: float | None


@dataclass(frozen=True)
class ContributionReport:
    portfolio: int
    as_of: date
    measure: str
    method: str
    by: str
    confidence: float
    horizon_days: int
    total: float | None
    systematic: float | None
    specific: float | None
    observations: int | None
    unavailable: str | None
    contributions: list[ContributionRow]


def parametric_scale(measure: str, confidence: float, horizon_days: int) -> float:
    """What turns a one-day parametric volatility (component) into the measure's: 1, z_c sqrt(h)
    for VaR, phi(z_c) / (1 - c) sqrt(h) for ES (`calc.parametric_contributions`)."""
    if measure == "volatility":
        return 1.0
    z = float(stats.norm.ppf(confidence))
    tail = z if measure == "var" else float(stats.norm.pdf(z)) / (1.0 - confidence)
    return tail * math.sqrt(horizon_days)


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def _stored(portfolio: Portfolio, as_of: date) -> list[PortfolioRiskContribution]:
    """The portfolio's rows of its latest stored session on or before `as_of` (one query)."""
    stored = PortfolioRiskContribution.objects.filter(portfolio=portfolio)
    latest = stored.filter(date__lte=as_of).order_by("-date").values("date")[:1]
    return list(stored.filter(date=Subquery(latest)).order_by("confidence", "horizon_days"))


def _choose(rows: list[PortfolioRiskContribution], confidence: float) -> PortfolioRiskContribution:
    for row in rows:  # the shortest stored horizon (the job stores one day)
        if math.isclose(row.confidence, confidence, rel_tol=0.0, abs_tol=1e-9):
            return row
    stored = ", ".join(dict.fromkeys(f"{row.confidence:g}" for row in rows))
    raise ValidationFailed(
        f"No contributions at confidence {confidence:g} are stored; stored: {stored}.",
        fields={"confidence": [f"One of the stored confidences: {stored}."]},
    )


def _labels(symbols: dict[int, str]) -> dict[int, str]:
    """A position's key: its symbol, or "symbol #id" when several positions share it."""
    count = Counter(symbols.values())
    return {pk: s if count[s] == 1 else f"{s} #{pk}" for pk, s in symbols.items()}


def _membership(
    portfolio: Portfolio, by: str, ids: list[int], underlyings: list[str], labels: dict[int, str]
) -> list[Any]:
    """Each position's group: one key (position, underlying, sector, industry) or its tags or
    strategies (a position in several counts in each; none: UNTAGGED / NO_STRATEGY)."""
    if by == "position":
        return [labels[pk] for pk in ids]
    if by == "underlying":
        return underlyings
    if by in ("sector", "industry"):
        classes = classifications(sorted(set(underlyings)))
        return [classes[u][by == "industry"] for u in underlyings]
    if by == "tag":
        pairs = list(
            PositionTag.objects.filter(position__portfolio=portfolio).values_list(
                "position_id", "tag__name"
            )
        )
        empty = UNTAGGED
    else:
        pairs = list(
            Strategy.positions.through.objects.filter(strategy__portfolio=portfolio).values_list(
                "position_id", "strategy__name"
            )
        )
        empty = NO_STRATEGY
    groups: dict[int, list[str]] = {}
    for pk, name in pairs:
        groups.setdefault(pk, []).append(name)
    return [groups.get(pk) or [empty] for pk in ids]


def _factor_rows(
    row: PortfolioRiskContribution, scale: float, total: float
) -> list[ContributionRow]:
    parts = [
        (name, row.factor_exposures.get(name), component * scale)
        for name, component in row.by_factor.items()
    ]
    if row.specific is not None:
        parts.append((SPECIFIC, None, row.specific * scale))
    return [
        ContributionRow(
            key=key,
            position=None,
            positions=0,
            exposure=exposure,
            component=component,
            marginal=_ratio(component, exposure),
            percent=_ratio(component, total),
        )
        for key, exposure, component in sorted(parts, key=lambda p: (-p[2], p[0]))
    ]


def risk_contributions(
    *,
    portfolio: Portfolio,
    as_of: date,
    measure: str = "var",
    method: str = "historical",
    by: str = "position",
    confidence: float = 0.95,
) -> ContributionReport | None:
    """The stored contributions of the latest session on or before `as_of` (None: none stored),
    by position or grouped `by` (`calc.group_contributions`): tag and strategy groups overlap
    (a position in two tags counts in both, so they may add up to more than the total), the
    other groups partition the book. by=factor is parametric only. Three queries at most."""
    if method not in METHODS or measure not in MEASURES or by not in BY:
        raise ValueError(f"unknown method, measure or by: {method!r}, {measure!r}, {by!r}")
    if by == "factor" and method != "parametric":
        raise ValidationFailed(
            "Contributions by factor are parametric only.",
            fields={"by": ["by=factor needs method=parametric (the factor model)."]},
        )
    rows = _stored(portfolio, as_of)
    if not rows:
        return None
    row = _choose(rows, confidence)
    column = f"{method}_{measure}"
    total = getattr(row, column)
    systematic = specific = None
    scale = parametric_scale(measure, row.confidence, row.horizon_days)
    if method == "parametric" and total is not None and row.specific is not None:
        systematic, specific = sum(row.by_factor.values()) * scale, row.specific * scale
    if by == "factor":
        found = [] if total is None else _factor_rows(row, scale, total)
    else:
        found = _grouped(portfolio, row, column, by, total)
    return ContributionReport(
        portfolio=portfolio.pk,
        as_of=row.date,
        measure=measure,
        method=method,
        by=by,
        confidence=row.confidence,
        horizon_days=row.horizon_days,
        total=total,
        systematic=systematic,
        specific=specific,
        observations=row.observations.get(method),
        unavailable=row.unavailable.get(method),
        contributions=found,
    )


def unmeasured(
    *, portfolio: Portfolio, as_of: date, horizon_days: int, reason: str, **asked: Any
) -> ContributionReport:
    """The answer for a book the job could not measure (too little history of its own): the
    query's `measure`, `method`, `by` and `confidence`, no numbers, the reason."""
    unknown: dict[str, Any] = dict.fromkeys(("total", "systematic", "specific", "observations"))
    return ContributionReport(
        portfolio=portfolio.pk,
        as_of=as_of,
        horizon_days=horizon_days,
        unavailable=reason,
        contributions=[],
        **asked,
        **unknown,
    )


def _grouped(
    portfolio: Portfolio, row: PortfolioRiskContribution, column: str, by: str, total: float | None
) -> list[ContributionRow]:
    """The stored vectors of the row's session joined to the book's positions (one query
    each; a position deleted since drops out), grouped `by`."""
    stored = (
        PositionContributionSet.objects.filter(
            portfolio=portfolio,
            date=row.date,
            confidence=row.confidence,
            horizon_days=row.horizon_days,
        )
        .only("positions", "exposure", column)
        .first()
    )
    if stored is None:
        return []
    known = total is not None  # else: the groups and exposures, without numbers
    values = stored.column(column) if known else None
    names = {
        pk: (symbol, underlying)
        for pk, symbol, underlying in portfolio.positions.values_list(
            "id", "symbol", "underlying_symbol"
        )
    }
    every = stored.ids()
    kept = [i for i in np.argsort(every, kind="stable").tolist() if every[i] in names]
    ids = [every[i] for i in kept]
    labels = _labels({pk: names[pk][0] for pk in ids})
    membership = _membership(portfolio, by, ids, [names[pk][1] for pk in ids], labels)
    exposure = np.nan_to_num(vector(stored.exposure)[kept])
    components = np.zeros(len(kept)) if values is None else values[kept]
    position = {label: pk for pk, label in labels.items()} if by == "position" else {}
    return [
        ContributionRow(
            key=group.name,
            position=position.get(group.name),
            positions=group.positions,
            exposure=group.exposure,
            component=group.component if known else None,
            marginal=_ratio(group.component, group.exposure) if known else None,
            percent=finite(group.share) if known else None,
        )
        for group in calc.group_contributions(
            components, membership, exposures=exposure, total=total or 0.0
        )
    ]
