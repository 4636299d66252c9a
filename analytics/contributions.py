"""Where the risk comes from (issue "Where the risk comes from", items 1 and 6): each position's
Euler component of its book's volatility, VaR and expected shortfall by the three methods of the
market_risk job, stored beside `RiskMetricSnapshot` (`risk_contributions_store`) and read by
GET /risk/contributions/, by position or grouped (`risk_contributions`). The maths and its units
and signs are `analytics.calculations.contributions`': currency, a loss positive, a hedge's
component negative, the components of a measure summing to its total.

Each method allocates the P&L its stored measure is computed from:
- historical: each position's one-day P&L, units x the change of its own symbol's close between
  the complete sessions `book_path` uses (positions sharing a symbol share its P&L by units; an
  option by its own closes); VaR and ES one-day x sqrt(horizon) (`risk.scale_to_horizon`).
- Monte Carlo: the very draws of the stored VaR (revalued once, `SameDraws`): a stock's linear
  P&L, each option leg's full revaluation (`revaluation.revalue`, by leg), 0 for an option that
  cannot be revalued (no volatility). The residual noise, one aggregate draw per scenario, goes
  to the positions in proportion to their specific variances s_i: E[eps_i | sum eps] =
  s_i / sum s x sum eps for independent normal residuals, the conditional expectation given the
  sum the tail sees, so a position's ES component (a tail mean) is exact in expectation and the
  positions' P&L still add up to the draws' book P&L.
- parametric: the delta-normal factor model, an option by its delta (its delta-adjusted factor
  exposure): the stored per-position dollar exposures and the specific variances (factor
  exposure x residual vol)^2 the stored parametric VaR sums.
Historical and Monte Carlo VaR and ES select their scenarios on the book P&L the stored measures
rank (VaR: a position's loss in the VaR scenario, ties averaged; ES: its mean loss over the
tail), not on the row sums of the position P&L, which differ from it by rounding: a tie between
two days' P&L (closes move in cents) broken by rounding would move a day in or out of the tail.
So the VaR and ES totals are the stored ones, exactly, and the components sum to them to
rounding. Volatility is the one-day standard deviation of the book's P&L by every method (Monte
Carlo draws at a horizon scaled back by its square root). Every method's marginals c_i / e_i
share one e_i per position, its signed exposure (an option at its premium).

A method the book cannot be measured by (no factor covariance: parametric and Monte Carlo) is
null with the reason; an empty book has zero totals and no positions; a book with too little
history of its own closes is skipped, as by the stored metrics.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import numpy.typing as npt
import pandas as pd
from django.db import transaction
from django.db.models import Subquery
from scipy import stats

from analytics.calculations import contributions as calc
from analytics.calculations import risk
from analytics.contribution_models import PortfolioRiskContribution, PositionRiskContribution
from analytics.liquidity import classifications
from portfolios.models import Portfolio, PositionTag, Strategy
from sigmasight.db import insert_records, records, upsert_records
from sigmasight.exceptions import ValidationFailed

if TYPE_CHECKING:  # risk_metrics calls this module: its types only
    from analytics.risk_metrics import BookRisk, Draws, RiskInputs

FloatArray = npt.NDArray[np.float64]
METHODS = ("parametric", "historical", "monte_carlo")
MEASURES = ("volatility", "var", "es")
BY = ("position", "underlying", "tag", "strategy", "sector", "industry", "factor")
UNTAGGED = "untagged"  # the tag group of the positions without a tag
NO_STRATEGY = "none"  # the strategy group of the positions in no strategy
SPECIFIC = "specific"  # the by=factor row of the specific (idiosyncratic) risk


@dataclass(frozen=True)
class Measured:
    """One method's allocations at one confidence: totals and (P,) components by measure."""

    totals: dict[str, float]
    components: dict[str, FloatArray]
    observations: int | None  # scenarios (historical sessions, Monte Carlo draws)


class PortfolioContributionRow(NamedTuple):
    portfolio_id: int
    date: date
    confidence: float
    horizon_days: int
    parametric_volatility: float | None
    parametric_var: float | None
    parametric_es: float | None
    historical_volatility: float | None
    historical_var: float | None
    historical_es: float | None
    monte_carlo_volatility: float | None
    monte_carlo_var: float | None
    monte_carlo_es: float | None
    by_factor: str
    factor_exposures: str
    specific: float | None
    observations: str
    unavailable: str


class PositionContributionRow(NamedTuple):
    position_id: int
    date: date
    confidence: float
    horizon_days: int
    exposure: float
    parametric_volatility: float | None
    parametric_var: float | None
    parametric_es: float | None
    historical_volatility: float | None
    historical_var: float | None
    historical_es: float | None
    monte_carlo_volatility: float | None
    monte_carlo_var: float | None
    monte_carlo_es: float | None
    parametric_systematic: float | None
    parametric_specific: float | None


@dataclass(frozen=True)
class BookContributions:
    portfolio_id: int
    portfolio: list[PortfolioContributionRow]
    positions: list[PositionContributionRow]


# --- compute -----------------------------------------------------------------------------------


def historical_position_pnl(
    frame: pd.DataFrame, closes: pd.DataFrame, sessions: list[date]
) -> FloatArray:
    """(S, P) each position's P&L between consecutive `sessions`: units (quantity x multiplier,
    signed) x the change of its symbol's close, currency, gains positive (NaN where a close is
    missing). Indexed positionally: `reindex` of the whole closes frame per book cost more than
    the maths."""
    rows = closes.index.get_indexer(sessions)
    columns = closes.columns.get_indexer(frame["symbol"])
    values = closes.to_numpy(dtype=float)
    prices = values[np.ix_(np.maximum(rows, 0), np.maximum(columns, 0))]
    prices[rows < 0, :] = np.nan
    prices[:, columns < 0] = np.nan
    units = (frame["quantity"] * frame["multiplier"]).to_numpy(dtype=float)
    pnl: FloatArray = np.diff(prices, axis=0) * units
    return pnl


@dataclass(frozen=True)
class ScenarioPnl:
    """(S, P) position P&L per scenario, `positions` + outer(`noise`, `weights`) without forming
    the sum: the Monte Carlo residual noise (one aggregate draw per scenario) allocated by
    specific variance. Tail means and covariances are linear in it, so each is the positions'
    plus the weights x the noise's (no second draws x positions array per book)."""

    positions: FloatArray
    noise: FloatArray | None = None  # (S,)
    weights: FloatArray | None = None  # (P,) summing to 1

    def tail_mean(self, rows: npt.NDArray[np.bool_]) -> FloatArray:
        mean: FloatArray = self.positions[rows].mean(axis=0)
        if self.noise is not None and self.weights is not None:
            mean = mean + self.weights * float(self.noise[rows].mean())
        return mean

    def volatility(self, book: FloatArray, exposure: FloatArray) -> calc.Allocation:
        """The Euler components of std(book, ddof=1), `book` the row sums (to rounding):
        cov(X_i, book) / std(book), as `calc.scenario_volatility_contributions`."""
        n = book.size
        total = float(np.std(book, ddof=1))
        if total == 0.0:
            zero = np.zeros(self.positions.shape[1])
            return calc.Allocation("volatility", 0.0, zero, np.full_like(zero, np.nan))
        centred = book - book.mean()
        covariance: FloatArray = self.positions.T @ centred
        if self.noise is not None and self.weights is not None:
            covariance = covariance + self.weights * float(self.noise @ centred)
        components = covariance / ((n - 1) * total)
        marginals = np.full_like(components, np.nan)
        np.divide(components, exposure, out=marginals, where=exposure != 0.0)
        return calc.Allocation("volatility", total, components, marginals)


def _scenarios(
    pnl: ScenarioPnl,
    book: FloatArray,
    volatility: calc.Allocation,
    confidence: float,
    scale: float,
    one_day: float = 1.0,
) -> Measured:
    """VaR and ES of `book` (the P&L the stored measures rank) x `scale`, and their components:
    each position's -mean P&L over the VaR scenario(s) (book P&L = x_(k)) and over the tail
    (book <= x_(k)), x `scale`; `volatility` x `one_day`."""
    var = risk.historical_var(book, confidence)
    quantile = -var  # x_(k) itself: negation is exact
    return Measured(
        totals={
            "volatility": volatility.total * one_day,
            "var": var * scale,
            "es": risk.expected_shortfall(book, confidence) * scale,
        },
        components={
            "volatility": volatility.components * one_day,
            "var": -pnl.tail_mean(book == quantile) * scale,
            "es": -pnl.tail_mean(book <= quantile) * scale,
        },
        observations=int(book.size),
    )


def _monte_carlo_pnl(draws: Draws, specific: FloatArray) -> ScenarioPnl:
    """The draws' position P&L with the residual noise allocated by specific variance."""
    assert draws.positions is not None  # revalued by_position
    residual = float(specific.sum())
    if residual > 0.0:
        return ScenarioPnl(draws.positions, draws.noise, specific / residual)
    return ScenarioPnl(draws.positions)


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def book_contributions(
    inputs: RiskInputs, portfolio_id: int, book: BookRisk | None, metrics: dict[float, dict]
) -> BookContributions:
    """The book's portfolio and position rows at each confidence of its `metrics` (the
    `book_metrics` of the same `book`, which ran its Monte Carlo draws): see the module
    docstring."""
    first = next(iter(metrics.values()))
    horizon_days = first["horizon_days"]
    why = {m: first["unavailable"].get(f"var_{m}", "") for m in METHODS}
    if book is None:  # nothing held: no risk by any method
        zeros = Measured(dict.fromkeys(MEASURES, 0.0), {}, None)
        return BookContributions(
            portfolio_id,
            [
                _portfolio_row(
                    portfolio_id, (inputs.as_of, c, horizon_days), dict.fromkeys(METHODS, zeros)
                )
                for c in metrics
            ],
            [],
        )
    exposure = np.nan_to_num(book.frame["exposure"].to_numpy(dtype=float))
    historical = historical_position_pnl(book.frame, inputs.closes, book.path.sessions)
    one_day = calc.scenario_volatility_contributions(historical, exposures=exposure)
    draws = book.revalue.draws if book.revalue is not None else None
    simulated = mc_volatility = None
    if draws is not None and book.specific is not None:
        simulated = _monte_carlo_pnl(draws, book.specific)
        mc_volatility = simulated.volatility(draws.pnl, exposure)
    factors: dict[str, float] | None = None  # None: no factor model for the book
    parametric = None
    if inputs.cov is not None and book.position_dollar is not None:
        d = book.position_dollar.sum(axis=0)  # the `dollar` the stored parametric VaR uses
        factors = dict(zip(inputs.factors, d.tolist(), strict=True))
    portfolio_rows, position_rows = [], []
    for confidence in metrics:
        key = (inputs.as_of, confidence, horizon_days)
        measured: dict[str, Measured | None] = dict.fromkeys(METHODS)
        measured["historical"] = _scenarios(
            ScenarioPnl(historical),
            book.path.pnl,
            one_day,
            confidence,
            float(risk.scale_to_horizon(1.0, horizon_days)),
        )
        if simulated is not None and mc_volatility is not None and draws is not None:
            # The draws are at the horizon; volatility is one day.
            root_h = math.sqrt(horizon_days)
            measured["monte_carlo"] = _scenarios(
                simulated, draws.pnl, mc_volatility, confidence, 1.0, one_day=1.0 / root_h
            )
        if factors is not None:
            assert inputs.cov is not None and book.position_dollar is not None
            assert book.specific is not None  # built with the covariance
            parametric = calc.parametric_contributions(
                book.position_dollar,
                inputs.cov,
                book.specific,
                exposures=exposure,
                confidence=confidence,
                horizon_days=horizon_days,
            )
            allocations = [getattr(parametric, m) for m in MEASURES]
            measured["parametric"] = Measured(
                totals={a.measure: a.total for a in allocations},
                components={a.measure: a.components for a in allocations},
                observations=None,
            )
        volatility = None if parametric is None else parametric.volatility
        portfolio_rows.append(_portfolio_row(portfolio_id, key, measured, why, volatility, factors))
        position_rows.extend(_position_rows(book.frame["id"], exposure, key, measured, volatility))
    return BookContributions(portfolio_id, portfolio_rows, position_rows)


def _portfolio_row(
    portfolio_id: int,
    key: tuple[date, float, int],
    measured: dict[str, Measured | None],
    why: dict[str, str] | None = None,
    volatility: calc.FactorAllocation | None = None,
    factors: dict[str, float] | None = None,
) -> PortfolioContributionRow:
    """`factors`: the book's dollar exposure to each factor of the model, in its order."""
    as_of, confidence, horizon_days = key
    totals = [
        None if m is None else _finite(m.totals[measure])
        for m in (measured[method] for method in METHODS)
        for measure in MEASURES
    ]
    by_factor: dict[str, float] = {}
    exposures = factors or {}
    specific: float | None = 0.0  # nothing held
    if volatility is not None:
        by_factor = dict(zip(exposures, volatility.factors.tolist(), strict=True))
        specific = volatility.specific_total
    elif measured["parametric"] is None:
        specific = None
    return PortfolioContributionRow._make(
        (
            portfolio_id,
            as_of,
            confidence,
            horizon_days,
            *totals,
            json.dumps(by_factor),
            json.dumps(exposures),
            specific,
            json.dumps({k: m.observations for k, m in measured.items() if m and m.observations}),
            json.dumps({k: (why or {}).get(k, "") for k, m in measured.items() if m is None}),
        )
    )


def _nullable(values: FloatArray | None, positions: int) -> list[float | None]:
    """A stored column: the values, None where unavailable or not finite (vectorized: a
    Python call per value cost more than the maths at 10,000 positions)."""
    if values is None:
        return [None] * positions
    column = values.astype(object)
    column[~np.isfinite(values)] = None
    listed: list[float | None] = column.tolist()
    return listed


def _position_rows(
    ids: pd.Series,
    exposure: FloatArray,
    key: tuple[date, float, int],
    measured: dict[str, Measured | None],
    volatility: calc.FactorAllocation | None,
) -> list[PositionContributionRow]:
    as_of, confidence, horizon_days = key
    positions = len(ids)
    columns = [
        _nullable(None if m is None else m.components[measure], positions)
        for m in (measured[method] for method in METHODS)
        for measure in MEASURES
    ]
    return records(
        PositionContributionRow,
        position_id=ids.astype(int).tolist(),
        date=[as_of] * positions,
        confidence=[confidence] * positions,
        horizon_days=[horizon_days] * positions,
        exposure=exposure.tolist(),
        **dict(zip(PositionContributionRow._fields[5:14], columns, strict=True)),
        parametric_systematic=_nullable(
            None if volatility is None else volatility.systematic, positions
        ),
        parametric_specific=_nullable(
            None if volatility is None else volatility.specific, positions
        ),
    )


def risk_contributions_store(
    *, as_of: date, horizon_days: int, books: list[BookContributions]
) -> int:
    """Replace the books' contributions of the session and horizon (a position no longer held
    loses its row): the portfolio rows upserted, the position rows deleted and inserted anew.
    Returns the position rows written."""
    ids = [book.portfolio_id for book in books]
    if not ids:
        return 0
    with transaction.atomic():
        PositionRiskContribution.objects.filter(
            position__portfolio_id__in=ids, date=as_of, horizon_days=horizon_days
        ).delete()
        upsert_records(
            PortfolioRiskContribution,
            [row for book in books for row in book.portfolio],
            unique=["portfolio_id", "date", "confidence", "horizon_days"],
        )
        # Every row of these books, session and horizon was deleted above: a plain insert.
        return insert_records(
            PositionRiskContribution, [row for book in books for row in book.positions]
        )


# --- read --------------------------------------------------------------------------------------


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
    stored = list(
        PositionRiskContribution.objects.filter(
            position__portfolio=portfolio,
            date=row.date,
            confidence=row.confidence,
            horizon_days=row.horizon_days,
        )
        .order_by("position_id")
        .values_list(
            "position_id", "position__symbol", "position__underlying_symbol", "exposure", column
        )
    )
    ids = [pk for pk, *_ in stored]
    labels = _labels({pk: symbol for pk, symbol, *_ in stored})
    membership = _membership(portfolio, by, ids, [u for _, _, u, _, _ in stored], labels)
    exposure = np.array([e for *_, e, _ in stored], dtype=float)
    # A method the book could not be measured by: its groups and exposures, without numbers.
    known = total is not None
    components = np.array([c if known else 0.0 for *_, c in stored], dtype=float)
    position = {label: pk for pk, label in labels.items()} if by == "position" else {}
    return [
        ContributionRow(
            key=group.name,
            position=position.get(group.name),
            positions=group.positions,
            exposure=group.exposure,
            component=group.component if known else None,
            marginal=_ratio(group.component, group.exposure) if known else None,
            percent=_finite(group.share) if known else None,
        )
        for group in calc.group_contributions(
            components, membership, exposures=exposure, total=total or 0.0
        )
    ]
