"""The value of every limit measure (`spec.MEASURES`) for a set of portfolios on one session,
read from what the evening's jobs stored, never recomputed: the limits job compares the numbers
the API shows. Units and signs are `spec`'s: exposures signed (short negative), Greeks summed over
the book, VaR, ES and a stress loss positive for a loss, drawdown positive, concentration a
decimal share of gross, days to liquidate the book's slowest position.

Where each one comes from (all for the session `as_of`):
- gross, net, long and short exposure, equity, delta, dollar delta, gamma, vega: the portfolio
  snapshot (`PortfolioSnapshot`, the snapshots job: the valued book and its stored Greeks summed
  as `aggregation.greeks` sums them; the summary's numbers);
- beta: the stored portfolio market beta (`PortfolioFactorExposure` of the Market factor);
- var, es: the market_risk job's one-day totals (`PortfolioRiskContribution`) at the limit's
  method and confidence, scaled to its horizon by the square root of time;
- stress_loss: minus the correlated P&L of the named scenario's stored result (the user's own
  scenario of that name before the library's);
- name and sector concentration, days to liquidate: `analytics.liquidity`'s rules on the stored
  valued book, stored volumes and classifications (a name or sector the book does not hold has
  a share of 0; without a name or sector, the largest);
- drawdown: the highest stored snapshot equity up to the session less the session's equity.

A value that cannot be found (nothing stored for the session, an empty book, a position without
a price or Greeks, no result of the scenario) is None with the reason, never a silent 0. The
reads are one set per kind of measure for all the portfolios at once: a fixed number of queries,
however many portfolios and limits.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from django.conf import settings
from django.db.models import F, Max, Q

from analytics.calculations import liquidity as liquidity_calc
from analytics.calculations.factors import MARKET
from analytics.calculations.risk import scale_to_horizon
from analytics.contribution_models import PortfolioRiskContribution
from analytics.liquidity import (
    BEYOND_RANGE,
    INSUFFICIENT_VOLUME,
    MIN_VOLUMES,
    MISSING_GREEKS,
    NO_TRADED_VOLUME,
    REASONS,
    classifications,
    volumes_panel,
)
from analytics.models import PortfolioFactorExposure, PortfolioSnapshot
from analytics.selectors import ReadCache, book_frame
from modeling.limits.spec import normalized_params
from stress.models import StressTestResult

SNAPSHOT_MEASURES = {
    "gross_exposure": "gross_exposure",
    "net_exposure": "net_exposure",
    "long_exposure": "long_exposure",
    "short_exposure": "short_exposure",
}
GREEK_MEASURES = ("delta", "dollar_delta", "gamma", "vega")
BOOK_MEASURES = ("name_concentration", "sector_concentration", "days_to_liquidate")
EMPTY = "the book holds no positions"


class Measured(NamedTuple):
    value: float | None
    reason: str | None = None  # why the value is None


@dataclass(frozen=True)
class _Snapshot:
    equity: float
    exposures: dict[str, float]
    greeks: dict[str, float]
    positions: int
    unvalued: int
    missing_greeks: int


@dataclass
class Measures:
    """Every requested measure of the portfolios on one session (`measures_read`)."""

    as_of: date
    snapshots: dict[int, _Snapshot] = field(default_factory=dict)
    peaks: dict[int, float] = field(default_factory=dict)
    betas: dict[int, float] = field(default_factory=dict)
    # (portfolio, confidence rounded to 6 places): the one-day totals
    risk: dict[tuple[int, float], PortfolioRiskContribution] = field(default_factory=dict)
    stress: dict[tuple[int, str], float] = field(default_factory=dict)
    books: dict[int, _Book] = field(default_factory=dict)

    def equity(self, portfolio_id: int) -> Measured:
        snapshot = self.snapshots.get(portfolio_id)
        if snapshot is None:
            return Measured(None, self._no_snapshot())
        return Measured(snapshot.equity)

    def value(self, portfolio_id: int, measure: str, params: dict[str, Any]) -> Measured:
        """The measure in its own unit (money, number or days)."""
        params = normalized_params(measure, params)
        if measure in BOOK_MEASURES:
            return self._book_measure(portfolio_id, measure, params)
        if measure == "beta":
            beta = self.betas.get(portfolio_id)
            if beta is None:
                return Measured(None, f"no {MARKET} beta stored for {self.as_of} (factors job)")
            return Measured(beta)
        if measure in ("var", "es"):
            return self._risk(portfolio_id, measure, params)
        snapshot = self.snapshots.get(portfolio_id)
        if measure == "stress_loss":
            return self._stress(portfolio_id, params["scenario"], snapshot)
        if snapshot is None:
            return Measured(None, self._no_snapshot())
        if measure in SNAPSHOT_MEASURES:
            if snapshot.unvalued:
                return Measured(
                    None, f"{snapshot.unvalued} position(s) without a price on {self.as_of}"
                )
            return Measured(snapshot.exposures[measure])
        if measure in GREEK_MEASURES:
            if snapshot.missing_greeks:
                return Measured(
                    None,
                    f"{snapshot.missing_greeks} option(s) without stored Greeks on {self.as_of}",
                )
            return Measured(snapshot.greeks[measure])
        if measure == "drawdown":
            # The session's own equity is among the snapshots the peak is taken over.
            peak = self.peaks.get(portfolio_id, snapshot.equity)
            return Measured(max(peak, snapshot.equity) - snapshot.equity)
        raise ValueError(f"unknown measure {measure!r}")

    def in_unit(
        self, portfolio_id: int, measure: str, params: dict[str, Any], unit: str
    ) -> Measured:
        """The measure in a limit's unit: share_of_equity divides the money value by the
        session's equity (a decimal), which must be positive."""
        found = self.value(portfolio_id, measure, params)
        if unit != "share_of_equity" or found.value is None:
            return found
        equity = self.equity(portfolio_id)
        if equity.value is None:
            return equity
        if equity.value <= 0:
            return Measured(None, f"equity is not positive ({equity.value:.2f}) on {self.as_of}")
        return Measured(found.value / equity.value)

    def _no_snapshot(self) -> str:
        return f"no portfolio snapshot stored for {self.as_of} (snapshots job)"

    def _empty(self, portfolio_id: int) -> bool:
        snapshot = self.snapshots.get(portfolio_id)
        return snapshot is not None and snapshot.positions == 0

    def _risk(self, portfolio_id: int, measure: str, params: dict[str, Any]) -> Measured:
        method, confidence = params["method"], float(params["confidence"])
        label = f"{measure} ({method}, {confidence:g})"
        if self._empty(portfolio_id):
            return Measured(None, f"{label}: {EMPTY}")
        row = self.risk.get((portfolio_id, round(confidence, 6)))
        if row is None:
            return Measured(
                None,
                f"{label}: nothing stored for {self.as_of} by the market_risk job "
                "(too little history of the book's closes, or the job has not run)",
            )
        one_day = getattr(row, f"{method}_{measure}")
        if one_day is None:
            why = row.unavailable.get(method) or "not computed"
            return Measured(None, f"{label}: unavailable ({why})"[:300])
        return Measured(float(scale_to_horizon(float(one_day), int(params["horizon_days"]))))

    def _stress(self, portfolio_id: int, scenario: str, snapshot: _Snapshot | None) -> Measured:
        pnl = self.stress.get((portfolio_id, scenario))
        if pnl is not None:
            return Measured(-pnl)
        if snapshot is not None and snapshot.positions == 0:
            return Measured(None, f"stress loss of {scenario!r}: {EMPTY}")
        return Measured(
            None, f"no stored result of stress scenario {scenario!r} for {self.as_of} (stress job)"
        )

    def _book_measure(self, portfolio_id: int, measure: str, params: dict[str, Any]) -> Measured:
        book = self.books.get(portfolio_id)
        if book is None:
            return Measured(None, EMPTY)
        if measure == "days_to_liquidate":
            return book.days
        if book.gross == 0:
            return Measured(None, "the book has no valued gross exposure")
        if measure == "name_concentration":
            shares, wanted = book.names, params.get("name")
            wanted = wanted.strip().upper() if wanted else None
        else:
            shares, wanted = book.sectors, params.get("sector")
            wanted = wanted.strip().casefold() if wanted else None
        if wanted is None:
            return Measured(max(shares.values()))
        fold = str.upper if measure == "name_concentration" else str.casefold
        return Measured(sum(v for k, v in shares.items() if fold(k) == wanted))


@dataclass(frozen=True)
class _Book:
    """A book's concentration and liquidity on the session (`analytics.liquidity`'s rules)."""

    gross: float
    names: dict[str, float]  # underlying -> share of gross
    sectors: dict[str, float]
    days: Measured  # the slowest position's days to liquidate


def measures_read(
    *,
    as_of: date,
    portfolio_ids: list[int],
    requests: Iterable[tuple[str, dict[str, Any]]],
    reads: ReadCache | None = None,
) -> Measures:
    """Read what the (measure, params) `requests` need for the portfolios: the snapshots always
    (equity), the rest only for the kinds asked (a user's own stress scenario shadows a library
    one of the same name)."""
    ids = sorted(set(portfolio_ids))
    wanted = [(m, normalized_params(m, p)) for m, p in requests]
    kinds = {m for m, _ in wanted}
    found = Measures(as_of=as_of, snapshots=_snapshots(ids, as_of))
    if "drawdown" in kinds:
        found.peaks = _peaks(ids, as_of)
    if "beta" in kinds:
        found.betas = dict(
            PortfolioFactorExposure.objects.filter(
                portfolio_id__in=ids, date=as_of, factor__name=MARKET
            )
            .order_by("portfolio_id")
            .values_list("portfolio_id", "beta")
        )
    if kinds & {"var", "es"}:
        found.risk = {
            (row.portfolio_id, round(row.confidence, 6)): row
            for row in PortfolioRiskContribution.objects.filter(
                portfolio_id__in=ids, date=as_of, horizon_days=1
            ).order_by("portfolio_id", "confidence")
        }
    scenarios = sorted({p["scenario"] for m, p in wanted if m == "stress_loss"})
    if scenarios:
        found.stress = _stress_results(ids, as_of, scenarios)
    if kinds & set(BOOK_MEASURES):
        found.books = _books(ids, as_of, reads)
    return found


def _snapshots(ids: list[int], as_of: date) -> dict[int, _Snapshot]:
    rows = PortfolioSnapshot.objects.filter(portfolio_id__in=ids, date=as_of).order_by(
        "portfolio_id"
    )
    return {
        row.portfolio_id: _Snapshot(
            equity=float(row.equity),
            exposures={
                measure: float(getattr(row, column))
                for measure, column in SNAPSHOT_MEASURES.items()
            },
            greeks={name: float(row.greeks.get(name, 0.0)) for name in GREEK_MEASURES},
            positions=row.position_count,
            unvalued=int(row.data_quality.get("unvalued", 0)),
            missing_greeks=int(row.data_quality.get("missing_greeks", 0)),
        )
        for row in rows
    }


def _peaks(ids: list[int], as_of: date) -> dict[int, float]:
    """The highest stored snapshot equity per portfolio up to the session (one query)."""
    rows = (
        PortfolioSnapshot.objects.filter(portfolio_id__in=ids, date__lte=as_of)
        .values("portfolio_id")
        .annotate(peak=Max("equity"))
        .order_by("portfolio_id")
        .values_list("portfolio_id", "peak")
    )
    return {pk: float(peak) for pk, peak in rows}


def _stress_results(
    ids: list[int], as_of: date, scenarios: list[str]
) -> dict[tuple[int, str], float]:
    """Correlated P&L of the named scenarios' stored results (the portfolio owner's own
    scenario of a name before the library's), one query."""
    rows = (
        StressTestResult.objects.filter(
            portfolio_id__in=ids, date=as_of, scenario__name__in=scenarios
        )
        .filter(Q(scenario__owner__isnull=True) | Q(scenario__owner_id=F("portfolio__owner_id")))
        .order_by("portfolio_id", "scenario_id")
        .values_list("portfolio_id", "scenario__name", "scenario__owner_id", "correlated_pnl")
    )
    found: dict[tuple[int, str], float] = {}
    for pk, name, owner, pnl in rows:
        if owner is not None or (pk, name) not in found:
            found[(pk, name)] = float(pnl)
    return found


def _books(ids: list[int], as_of: date, reads: ReadCache | None) -> dict[int, _Book]:
    """Concentration and liquidity of every non-empty book from one valued frame, one volume
    panel and one classification read (`analytics.liquidity`'s rules)."""
    frame, _ = book_frame(ids, as_of, reads=reads)
    if frame.empty:
        return {}
    underlyings = sorted(set(frame["underlying_symbol"]))
    sectors = classifications(underlyings)
    volume = liquidity_calc.average_daily_volume(
        volumes_panel(underlyings, as_of).to_numpy(dtype=float), min_observations=MIN_VOLUMES
    )
    at = frame["underlying_symbol"].map({s: i for i, s in enumerate(underlyings)})
    adv = volume.adv[at.to_numpy(dtype=np.intp)]
    shares = np.abs(frame["delta"].to_numpy(dtype=float))
    days = liquidity_calc.days_to_liquidate(
        shares, adv, settings.SIGMASIGHT_LIQUIDITY_PARTICIPATION
    )
    frame = frame.assign(_days=days, _adv=adv)
    books = {}
    for pk, book in frame.groupby("portfolio_id", sort=True):
        keys = book["underlying_symbol"].astype(str).tolist()
        exposure = book["exposure"].to_numpy(dtype=float)
        names = liquidity_calc.name_concentration(keys, exposure)
        groups = liquidity_calc.group_exposures([sectors[k][0] for k in keys], exposure)
        books[int(pk)] = _Book(
            gross=names.total,
            names=dict(zip(names.keys, map(float, names.weights), strict=True))
            if names.total
            else {},
            sectors=dict(zip(groups.keys, map(float, groups.share), strict=True)),
            days=_slowest(book),
        )
    return books


def _slowest(book: pd.DataFrame) -> Measured:
    """The book's slowest position's days to liquidate; None when any position's is unknown
    (the slowest could be that one)."""
    days = book["_days"].to_numpy(dtype=float)
    unknown = ~np.isfinite(days)
    if not unknown.any():
        return Measured(float(days.max()))
    shares, adv = book["delta"].to_numpy(dtype=float), book["_adv"].to_numpy(dtype=float)
    why = np.select(
        [np.isnan(shares), np.isnan(adv), adv == 0, np.isinf(days)],
        [REASONS[k] for k in (MISSING_GREEKS, INSUFFICIENT_VOLUME, NO_TRADED_VOLUME, BEYOND_RANGE)],
        default="unknown",
    )
    symbols = book["underlying_symbol"].astype(str).to_numpy()
    listed = "; ".join(
        f"{s}: {w}" for s, w in dict.fromkeys(zip(symbols[unknown], why[unknown], strict=True))
    )
    return Measured(None, f"days to liquidate unknown for {listed}"[:300])
