"""Where the risk comes from (issue "Where the risk comes from", items 1 and 6): each position's
Euler component of its book's volatility, VaR and expected shortfall by the three methods of the
market_risk job, stored beside `RiskMetricSnapshot` (`risk_contributions_store`: a book's totals
and its positions' components as vectors, `PositionContributionSet`) and read by
GET /risk/contributions/ (`analytics.contribution_selectors`). The maths and its units
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
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import numpy.typing as npt
import pandas as pd
from django.db import transaction

from analytics.calculations import contributions as calc
from analytics.calculations import risk
from analytics.contribution_models import (
    PortfolioRiskContribution,
    PositionContributionSet,
    pack,
)
from analytics.montecarlo import Draws, PositionDraws
from sigmasight.db import insert_records, upsert_records

if TYPE_CHECKING:  # risk_metrics calls this module: its types only
    from analytics.risk_metrics import BookRisk, RiskInputs

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
    """One book's `PositionContributionSet` at one confidence: packed vectors (`pack`)."""

    portfolio_id: int
    date: date
    confidence: float
    horizon_days: int
    positions: bytes
    exposure: bytes
    parametric_volatility: bytes | None
    parametric_var: bytes | None
    parametric_es: bytes | None
    historical_volatility: bytes | None
    historical_var: bytes | None
    historical_es: bytes | None
    monte_carlo_volatility: bytes | None
    monte_carlo_var: bytes | None
    monte_carlo_es: bytes | None
    parametric_systematic: bytes | None
    parametric_specific: bytes | None


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
    plus the weights x the noise's (no second draws x positions array per book). The Monte
    Carlo positions come factored (`PositionDraws`), the historical ones as the array."""

    positions: FloatArray | PositionDraws
    noise: FloatArray | None = None  # (S,)
    weights: FloatArray | None = None  # (P,) summing to 1

    def tail_mean(self, rows: npt.NDArray[np.bool_]) -> FloatArray:
        mean: FloatArray = (
            self.positions.tail_mean(rows)
            if isinstance(self.positions, PositionDraws)
            else self.positions[rows].mean(axis=0)
        )
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
        covariance: FloatArray = (
            self.positions.weighted(centred)
            if isinstance(self.positions, PositionDraws)
            else self.positions.T @ centred
        )
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


def finite(value: float) -> float | None:
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
        position_rows.append(
            _position_set(portfolio_id, book.frame["id"], exposure, key, measured, volatility)
        )
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
        None if m is None else finite(m.totals[measure])
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


def _position_set(
    portfolio_id: int,
    ids: pd.Series,
    exposure: FloatArray,
    key: tuple[date, float, int],
    measured: dict[str, Measured | None],
    volatility: calc.FactorAllocation | None,
) -> PositionContributionRow:
    as_of, confidence, horizon_days = key
    columns = [
        None if m is None else pack(m.components[measure])
        for m in (measured[method] for method in METHODS)
        for measure in MEASURES
    ]
    split = [None, None] if volatility is None else [volatility.systematic, volatility.specific]
    return PositionContributionRow(
        portfolio_id,
        as_of,
        confidence,
        horizon_days,
        pack(ids.to_numpy(), "<i8"),
        pack(exposure),
        *columns,
        *(None if part is None else pack(part) for part in split),
    )


def risk_contributions_store(
    *, as_of: date, horizon_days: int, books: list[BookContributions]
) -> int:
    """Replace the books' contributions of the session and horizon (a position no longer held
    is not in the new vectors): the portfolio rows upserted, the position sets deleted and
    inserted anew. Returns the position components written (positions x confidences)."""
    ids = [book.portfolio_id for book in books]
    if not ids:
        return 0
    sets = [row for book in books for row in book.positions]
    with transaction.atomic():
        PositionContributionSet.objects.filter(
            portfolio_id__in=ids, date=as_of, horizon_days=horizon_days
        ).delete()
        upsert_records(
            PortfolioRiskContribution,
            [row for book in books for row in book.portfolio],
            unique=["portfolio_id", "date", "confidence", "horizon_days"],
        )
        # Every set of these books, session and horizon was deleted above: a plain insert.
        insert_records(PositionContributionSet, sets)
    return sum(len(row.positions) // 8 for row in sets)
