"""Stress runs: every scenario for every portfolio of a session, evaluated on whole arrays.

Shocks are raw moves, as people state them: a proxy's own price change ("oil -65%"), a yield
change for Rates (0.01 = +100bp), and for style factors their move relative to the market (as the
factor model defines them). The EWMA covariance of the raw daily moves (lambda from settings)
gives the conditional moves of the factors a scenario does not shock, so a VIX spike alone drags
the market too. Positions' betas: the factor model's Market and style betas, and per macro factor
the coefficient from a regression on [Market, macro] (stored beside the style betas). Because that
coefficient holds the market fixed, it applies to the macro's move beyond what the market
explains: each raw macro move is reduced by the factor's own market beta times the market move,
so a scenario shocking Market and Technology never counts the market twice. (The rate scenarios
of the factor model keep the plain IR beta on yield changes, as specified.)
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import date
from typing import NamedTuple

import numpy as np
import pandas as pd
from django.conf import settings
from django.db import transaction
from django.db.models import Subquery

from analytics.calculations import factors as fx
from analytics.calculations import risk
from analytics.calculations.aggregation import book_return_base
from analytics.calculations.revaluation import ChangeUnder, OptionLegs, change_under
from analytics.models import FactorDefinition, PositionFactorExposure
from analytics.risk_services import (
    factor_exposure,
    factors_compute,
    factors_left_out,
    ir_betas_compute,
)
from analytics.selectors import ReadCache, book_frame, closes_panel, stored_betas
from marketdata import calendar
from portfolios.models import Portfolio, Position
from sigmasight.db import upsert_records
from sigmasight.exceptions import InsufficientHistory
from stress.calculations.stress import conditional_moves, nearest_psd, position_pnl
from stress.models import FactorCorrelation, StressScenario, StressTestResult

logger = logging.getLogger("sigmasight.batch")
RATES = "Rates"
WORST = 5


@dataclass(frozen=True)
class FactorModel:
    names: list[str]
    moves: pd.DataFrame  # sessions x factors, daily factor moves
    cov: np.ndarray  # EWMA covariance of the raw moves, repaired to PSD
    corr: np.ndarray
    market_beta: np.ndarray  # each factor's own beta to the market (0 for Market and styles)
    left_out: dict[str, str] = field(default_factory=dict)  # factor -> why it is not modeled

    def beyond_market(self, raw: np.ndarray) -> np.ndarray:
        """(S, K) raw moves -> the moves the positions' partial betas apply to: macro moves less
        what their market beta explains of the market move (Frisch-Waugh: a position's macro
        coefficient next to Market is the same for the raw or the residual factor)."""
        raw = np.atleast_2d(raw)
        market = raw[:, self.names.index(fx.MARKET)][:, None]
        return raw - market * self.market_beta[None, :]


def stress_factors() -> list[FactorDefinition]:
    return list(
        FactorDefinition.objects.filter(is_active=True)
        .exclude(etf_proxy="")
        .order_by("display_order", "id")
    )


def factor_model(
    as_of: date, lookback: int | None = None, *, reads: ReadCache | None = None
) -> FactorModel:
    """Raw daily factor moves (Market and macro proxies: their returns; Rates: yield changes;
    styles: residual to the market, as the factor model defines them), their EWMA covariance,
    and each factor's own market beta (to turn a raw move into the move beyond the market)."""
    lookback = lookback or settings.SIGMASIGHT_FACTOR_WINDOW
    factors = stress_factors()
    closes = closes_panel([f.etf_proxy for f in factors], as_of, lookback + 1, reads=reads)
    moves = pd.DataFrame(index=closes.index[1:])
    for f in factors:
        series = closes[f.etf_proxy]
        moves[f.name] = (
            series.diff().iloc[1:] if f.name == RATES else (series / series.shift(1) - 1).iloc[1:]
        )
    # A factor whose proxy has too little history in the window (the style ETFs before
    # 2004-2013, USO before 2006...) is left out, not allowed to empty the whole model.
    left_out = factors_left_out(factors, moves, as_of, lookback, "daily moves")
    if fx.MARKET in left_out:
        moves = moves.iloc[:0, :0]
    moves = moves.drop(columns=[c for c in left_out if c in moves]).dropna(how="any")
    if len(moves) < 20:
        why = f" (left out: {'; '.join(left_out.values())})" if left_out else ""
        raise InsufficientHistory(
            f"Only {len(moves)} sessions of factor history; 20 are needed for the correlation matrix{why}.",
            fields={"sessions": len(moves), "required": 20, "factors_left_out": left_out},
        )
    factors = [f for f in factors if f.name not in left_out]
    styles = [f.name for f in factors if f.factor_type == "style" and f.name != fx.MARKET]
    if styles:
        moves[styles] = fx.residualize(moves[[fx.MARKET, *styles]], market=fx.MARKET)[styles]
    market = moves[fx.MARKET].to_numpy()
    centered = market - market.mean()
    market_beta = np.array(
        [
            0.0
            if name == fx.MARKET or name in styles
            else float(
                centered @ (moves[name].to_numpy() - moves[name].mean()) / (centered @ centered)
            )
            for name in moves.columns
        ]
    )
    cov = nearest_psd(risk.ewma_covariance(moves.to_numpy(), lam=settings.SIGMASIGHT_EWMA_LAMBDA))
    return FactorModel(
        names=list(moves.columns),
        moves=moves,
        cov=cov,
        corr=risk.ewma_correlation(cov),
        market_beta=market_beta,
        left_out=left_out,
    )


def correlation_store(as_of: date, model: FactorModel, lookback: int) -> FactorCorrelation:
    row, _ = FactorCorrelation.objects.update_or_create(
        date=as_of,
        lookback=lookback,
        lam=settings.SIGMASIGHT_EWMA_LAMBDA,
        defaults={
            "factors": model.names,
            "matrix": model.corr.tolist(),
            "covariance": model.cov.tolist(),
        },
    )
    return row


@dataclass(frozen=True)
class StressPnl:
    dollar: np.ndarray  # (P, K) dollar factor exposures
    all_moves: np.ndarray  # (S, K) raw factor moves: the shocks and the others' conditional moves
    all_effective: np.ndarray  # (S, K) those moves beyond the market (what the betas apply to)
    direct_pnl: np.ndarray  # (S, P) only the shocked factors moving
    full_pnl: np.ndarray  # (S, P) with the correlated moves


def stress_pnl(
    frame: pd.DataFrame,
    betas: np.ndarray,
    model: FactorModel,
    scenarios: list[StressScenario],
    change: ChangeUnder = change_under,
) -> StressPnl:
    """Every scenario's P&L per row of a book frame (stored or pro forma), given the rows' betas
    on the model's factors (rows x model.names); options fully revalued (through `change`: a
    memo shared with other chunks holding the same contracts)."""
    names = model.names
    dollar = factor_exposure(frame)[:, None] * betas
    legs = OptionLegs.from_frame(frame)
    position = {name: i for i, name in enumerate(names)}
    direct_moves, all_moves = [], []
    for scenario in scenarios:
        shocked = [(position[k], v) for k, v in scenario.shocks.items() if k in position]
        idx = np.array([i for i, _ in shocked], dtype=int)
        values = np.array([v for _, v in shocked], dtype=float)
        direct = np.zeros(len(names))
        direct[idx] = values
        direct_moves.append(direct)
        all_moves.append(conditional_moves(model.cov, idx, values) if len(idx) else direct)
    direct_raw, all_raw = np.array(direct_moves), np.array(all_moves)
    # Direct: only the shocked factors move (an unshocked factor stays put, not "market-explained").
    direct_effective = np.where(direct_raw != 0, model.beyond_market(direct_raw), 0.0)
    all_effective = model.beyond_market(all_raw)
    return StressPnl(
        dollar=dollar,
        all_moves=all_raw,
        all_effective=all_effective,
        direct_pnl=position_pnl(
            direct_effective, dollar=dollar, betas=betas, options=legs, change=change
        ),
        full_pnl=position_pnl(
            all_effective, dollar=dollar, betas=betas, options=legs, change=change
        ),
    )


@dataclass(frozen=True)
class StressInputs:
    """What a stress run reads for a session, prepared once (`stress_prepare`)."""

    model: FactorModel
    betas_computed_for: list[int]  # portfolios the factor job had not covered: computed here


def stress_session_prepare(as_of: date) -> None:
    """The stress job's step before its chunks: the session's correlation stored once, so the
    chunks (in parallel on workers) only read it instead of each upserting the same row and
    waiting on each other's lock. Too little factor history: nothing to store (the chunks say)."""
    lookback = settings.SIGMASIGHT_FACTOR_WINDOW
    try:
        model = factor_model(as_of, lookback)
    except InsufficientHistory:
        return
    correlation_store(as_of, model, lookback)


def stress_prepare(
    *,
    as_of: date,
    portfolio_ids: list[int],
    reads: ReadCache | None = None,
    store_correlation: bool = True,
) -> StressInputs:
    """The session's factor model, its correlation stored (the stress correlation API reads it),
    and factor and IR betas computed for the portfolios the factor job did not cover (a book
    created after the day's batch): said in `betas_computed_for`, never silently. The batch's
    chunks pass `store_correlation=False`: their job stored it before them
    (`stress_session_prepare`), and they store it only when it is missing."""
    lookback = settings.SIGMASIGHT_FACTOR_WINDOW
    model = factor_model(as_of, lookback, reads=reads)
    lam = settings.SIGMASIGHT_EWMA_LAMBDA
    stored = FactorCorrelation.objects.filter(date=as_of, lookback=lookback, lam=lam).exists()
    if store_correlation or not stored:
        correlation_store(as_of, model, lookback)
    missing, _ = _betas_ensure(as_of, portfolio_ids, reads)
    return StressInputs(model=model, betas_computed_for=missing)


def _betas_ensure(
    as_of: date, portfolio_ids: list[int], reads: ReadCache | None
) -> tuple[list[int], int]:
    """Factor and IR betas computed for the portfolios that have none for the session: those
    portfolios, and the rows written."""
    # Driven by the portfolios' positions (a subquery): both databases then read each
    # position's row from the unique key, whatever they know of the table's sizes.
    positions = Position.objects.filter(portfolio_id__in=portfolio_ids).values("id")
    have_betas = set(
        PositionFactorExposure.objects.filter(
            position_id__in=Subquery(positions), date=as_of, factor__name=fx.MARKET
        ).values_list("position__portfolio_id", flat=True)
    )
    missing = [pk for pk in portfolio_ids if pk not in have_betas]
    written = 0
    if missing:
        written += factors_compute(as_of=as_of, portfolio_ids=missing, reads=reads).written
        written += ir_betas_compute(as_of=as_of, portfolio_ids=missing, reads=reads).written
    return missing, written


class StressResultRow(NamedTuple):
    """One stress result, a `StressTestResult` row as upserted (the breakdown as its JSON)."""

    portfolio_id: int
    scenario_id: int
    date: date
    direct_pnl: float
    correlated_pnl: float
    total_pnl: float
    pnl_pct: float
    breakdown: str

    def stored_as(self, stored: StressTestResult) -> bool:
        """Whether `stored` holds these numbers already (compared as JSON, as they are stored)."""
        numbers = (self.direct_pnl, self.correlated_pnl, self.total_pnl, self.pnl_pct)
        held = (stored.direct_pnl, stored.correlated_pnl, stored.total_pnl, stored.pnl_pct)
        return json.dumps([numbers, json.loads(self.breakdown)], sort_keys=True) == json.dumps(
            [held, stored.breakdown], sort_keys=True
        )


def stress_run(
    *,
    as_of: date | None = None,
    portfolio_ids: list[int],
    scenarios: list[StressScenario] | None = None,
    reads: ReadCache | None = None,
    inputs: StressInputs | None = None,
) -> list[StressTestResult]:
    """Run scenarios (default: every active library scenario) for the portfolios and store them
    (`stress_write`); the stored results. `inputs` from `stress_prepare` for the session
    (prepared here when not given)."""
    as_of = calendar.session_for(as_of)
    if scenarios is None:
        scenarios = _library()
    if not stress_write(
        as_of=as_of, portfolio_ids=portfolio_ids, scenarios=scenarios, reads=reads, inputs=inputs
    ):
        return []
    return list(
        StressTestResult.objects.filter(
            portfolio_id__in=portfolio_ids, date=as_of, scenario__in=scenarios
        )
        .select_related("scenario")
        .order_by("portfolio_id", "scenario_id")
    )


def stress_write(
    *,
    as_of: date | None = None,
    portfolio_ids: list[int],
    scenarios: list[StressScenario] | None = None,
    reads: ReadCache | None = None,
    inputs: StressInputs | None = None,
) -> int:
    """`stress_run` without reading the stored results back (the batch job): rows written."""
    as_of = calendar.session_for(as_of)
    if inputs is None:
        inputs = stress_prepare(as_of=as_of, portfolio_ids=portfolio_ids, reads=reads)
    if scenarios is None:
        scenarios = _library()
    rows = _result_rows(as_of, portfolio_ids, scenarios, inputs.model, reads)
    if not rows:
        return 0
    with transaction.atomic():
        upsert_records(StressTestResult, rows, unique=["portfolio_id", "scenario_id", "date"])
    logger.info(
        "stress run",
        extra={
            "as_of": as_of.isoformat(),
            "portfolios": len(portfolio_ids),
            "scenarios": len(scenarios),
        },
    )
    return len(rows)


def _library() -> list[StressScenario]:
    """Every active library scenario, in order."""
    return list(StressScenario.objects.filter(owner__isnull=True, is_active=True).order_by("id"))


def _result_rows(
    as_of: date,
    portfolio_ids: list[int],
    scenarios: list[StressScenario],
    model: FactorModel,
    reads: ReadCache | None,
) -> list[StressResultRow]:
    """Every scenario's result for every portfolio on the session, not stored (none for an empty
    book or no scenario)."""
    frame, _ = book_frame(portfolio_ids, as_of, reads=reads)
    if frame.empty or not scenarios:
        return []
    names = model.names
    result = stress_pnl(
        frame,
        stored_betas(frame["id"].tolist(), as_of, names, reads=reads),
        model,
        scenarios,
        change=reads.legs.change if reads is not None else change_under,
    )
    dollar, all_moves, all_effective = result.dollar, result.all_moves, result.all_effective
    direct_pnl, full_pnl = result.direct_pnl, result.full_pnl
    rows: list[StressResultRow] = []
    cash_of = dict(Portfolio.objects.filter(pk__in=portfolio_ids).values_list("pk", "cash"))
    for portfolio_id, group in frame.groupby("portfolio_id"):
        members = group.index.to_numpy()
        cash = float(cash_of[portfolio_id])
        base = book_return_base(cash, group["exposure"])
        ids, symbols = group["id"].tolist(), group["symbol"].tolist()
        keys = [str(pid) for pid in ids]
        book_dollar = dollar[members].sum(axis=0)
        pnl_of, direct_of = full_pnl[:, members], direct_pnl[:, members]
        for s, scenario in enumerate(scenarios):
            pnl = pnl_of[s]
            correlated = float(pnl.sum())
            breakdown = {
                "factor_moves": dict(zip(names, all_moves[s].tolist(), strict=True)),
                "by_factor": dict(
                    zip(names, (book_dollar * all_effective[s]).tolist(), strict=True)
                ),
                "worst_positions": [
                    {"position": ids[j], "symbol": symbols[j], "pnl": float(pnl[j])}
                    for j in np.argsort(pnl)[:WORST].tolist()
                ],
                "by_position": dict(zip(keys, pnl.tolist(), strict=True)),
                "normalized_by": base.normalized_by,
                "shocks_not_applied": {
                    k: {"shock": v, "why": model.left_out[k]}
                    for k, v in scenario.shocks.items()
                    if k in model.left_out
                },
            }
            rows.append(
                StressResultRow(
                    portfolio_id=int(portfolio_id),
                    scenario_id=scenario.pk,
                    date=as_of,
                    direct_pnl=float(direct_of[s].sum()),
                    correlated_pnl=correlated,
                    total_pnl=correlated,
                    pnl_pct=correlated / base.amount,
                    breakdown=json.dumps(breakdown),
                )
            )
    return rows


def stress_replay(
    *, portfolio_id: int, scenario: StressScenario, as_of: date | None = None
) -> tuple[StressTestResult | None, bool]:
    """One scenario on one portfolio for a read (the historical replays): computed afresh, as
    `stress_run` does, but the session's correlation matrix and the result are stored only when
    what is stored is missing or differs, so asking again writes nothing. Returns the stored
    result (None for an empty book) and whether anything was written (betas included)."""
    as_of = calendar.session_for(as_of)
    lookback = settings.SIGMASIGHT_FACTOR_WINDOW
    model = factor_model(as_of, lookback)
    written = _correlation_store_changed(as_of, model, lookback)
    _, betas_written = _betas_ensure(as_of, [portfolio_id], None)
    written = bool(betas_written) or written
    rows = _result_rows(as_of, [portfolio_id], [scenario], model, None)
    if not rows:
        return None, written
    results = StressTestResult.objects.filter(
        portfolio_id=portfolio_id, scenario=scenario, date=as_of
    ).select_related("scenario")
    stored = results.first()
    if stored is not None and rows[0].stored_as(stored):
        return stored, written
    with transaction.atomic():
        upsert_records(StressTestResult, rows[:1], unique=["portfolio_id", "scenario_id", "date"])
    return results.get(), True


def _correlation_store_changed(as_of: date, model: FactorModel, lookback: int) -> bool:
    """`correlation_store` unless the session's matrix is stored already; whether it wrote."""
    stored = FactorCorrelation.objects.filter(
        date=as_of, lookback=lookback, lam=settings.SIGMASIGHT_EWMA_LAMBDA
    ).first()
    fresh = [model.names, model.corr.tolist(), model.cov.tolist()]
    if stored is not None and json.dumps(fresh) == json.dumps(
        [stored.factors, stored.matrix, stored.covariance]
    ):
        return False
    correlation_store(as_of, model, lookback)
    return True
