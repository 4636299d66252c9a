"""Factor exposures, interest-rate betas and market and rate scenarios (risk metrics and the
history-based measures are in analytics.risk_metrics).

Each job reads the book, one returns panel and the stored Greeks in a fixed number of queries,
computes on arrays (calculations/), and upserts its rows for the session."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
import pandas as pd
from django.conf import settings
from django.db import transaction

from analytics.calculations import factors as fx
from analytics.calculations.aggregation import book_return_base
from analytics.calculations.revaluation import ChangeUnder, OptionLegs, change_under
from analytics.calculations.scenarios import market_scenarios, rate_scenarios
from analytics.models import (
    FactorDefinition,
    MarketRiskScenario,
    PortfolioFactorExposure,
    PositionFactorExposure,
    PositionInterestRateBeta,
)
from analytics.rows import PortfolioFactorRow, PositionFactorRow, RateBetaRow, ScenarioRow
from analytics.selectors import ReadCache, book_frame, closes_panel, stored_factor_rows
from marketdata import calendar
from marketdata.providers.base import RATE_10Y
from portfolios.models import Portfolio
from sigmasight.db import records, upsert_records

logger = logging.getLogger("sigmasight.batch")
MARKET_MOVES = (-0.01, 0.01)
RATE_MOVES = (-0.005, 0.005)


@dataclass
class FactorReport:
    as_of: date
    positions: int = 0
    with_beta: int = 0
    without_beta: dict[str, str] = field(default_factory=dict)  # symbol -> reason
    written: int = 0  # rows upserted (portfolio and position)
    left_out: dict[str, str] = field(default_factory=dict)  # factor -> why not in the model


def active_factors(factor_type: str = "style") -> list[FactorDefinition]:
    """The factor model's regressors: active factors of a type (style by default; the stress
    engine models the macro factors separately) that have a proxy series."""
    return list(
        FactorDefinition.objects.filter(is_active=True, factor_type=factor_type)
        .exclude(etf_proxy="")
        .order_by("display_order", "id")
    )


def factor_returns(as_of: date, window: int, *, reads: ReadCache | None = None) -> pd.DataFrame:
    """Daily returns of the active factors that have history in the window (columns = factor
    names), styles residual to Market; see `factor_model_returns`."""
    returns, _ = factor_model_returns(as_of, window, reads=reads)
    return returns


def factors_left_out(
    factors: Sequence[FactorDefinition], moves: pd.DataFrame, as_of: date, window: int, what: str
) -> dict[str, str]:
    """The factors whose column of `moves` (sessions x factor names) has fewer than
    SIGMASIGHT_FACTOR_MIN_OBSERVATIONS values in the window, each with why: the one rule of the
    factor model and the stress model for a proxy without enough history."""
    needed = settings.SIGMASIGHT_FACTOR_MIN_OBSERVATIONS
    have = moves.notna().sum(axis=0)
    return {
        f.name: f"{f.etf_proxy} has {int(have.get(f.name, 0))} {what} in the {window} sessions "
        f"to {as_of.isoformat()}; {needed} are needed"
        for f in factors
        if int(have.get(f.name, 0)) < needed
    }


def factor_model_returns(
    as_of: date, window: int, *, reads: ReadCache | None = None
) -> tuple[pd.DataFrame, dict[str, str]]:
    """The factor model's regressors over the last `window` sessions, and the factors left out.

    A factor enters when its proxy has at least SIGMASIGHT_FACTOR_MIN_OBSERVATIONS daily returns
    in the window (the style ETFs start 2004-2013: a window before a proxy existed models with
    the factors that did); the rows are the sessions where every factor that entered has a
    return. The styles are residual to Market, so without Market's history none enters. Returns
    (sessions x factor names, decimal daily returns) and {factor name: why it was left out}."""
    factors = active_factors()
    closes = closes_panel([f.etf_proxy for f in factors], as_of, window + 1, reads=reads)
    returns = fx.simple_returns(closes).rename(columns={f.etf_proxy: f.name for f in factors})
    left_out = factors_left_out(factors, returns, as_of, window, "daily returns")
    residual = not settings.SIGMASIGHT_RAW_STYLE_FACTORS and any(
        f.name == fx.MARKET for f in factors
    )
    if residual and fx.MARKET in left_out:
        for f in factors:
            left_out.setdefault(f.name, f"residual to {fx.MARKET}, which has too little history")
    kept = list(dict.fromkeys(f.name for f in factors if f.name not in left_out))
    if not kept:
        return returns.iloc[:0, :0], left_out
    returns = returns[kept].dropna(how="any")
    if residual and fx.MARKET in returns:
        returns = fx.residualize(returns, market=fx.MARKET)
    return returns, left_out


def factor_exposure(frame: pd.DataFrame) -> np.ndarray:
    """The exposure a position's factor betas apply to: stocks their exposure; options their
    delta-adjusted exposure (DESIGN.md) unless settings choose dollar exposure. Unvalued -> 0."""
    if settings.SIGMASIGHT_OPTION_FACTOR_EXPOSURE == "dollar":
        return np.nan_to_num(frame["exposure"].to_numpy(dtype=float))
    return np.nan_to_num(
        np.where(frame["is_option"], frame["dollar_delta"], frame["exposure"]).astype(float)
    )


def style_betas(
    symbols: list[str], as_of: date, X: pd.DataFrame, *, reads: ReadCache | None = None
) -> fx.BetaResult:
    """The factor model's OLS of the symbols' daily returns on the style factor returns `X`
    (from `factor_returns`) over the window: betas capped, reasons where not solved."""
    window = settings.SIGMASIGHT_FACTOR_WINDOW
    Y = fx.simple_returns(closes_panel(symbols, as_of, window + 1, reads=reads)).reindex(X.index)
    return fx.batched_ols(
        Y.to_numpy(dtype=float),
        X.to_numpy(dtype=float),
        list(X.columns),
        min_obs=settings.SIGMASIGHT_FACTOR_MIN_OBSERVATIONS,
        cap=settings.SIGMASIGHT_BETA_CAP,
    )


def factors_compute(
    *, as_of: date | None = None, portfolio_ids: list[int], reads: ReadCache | None = None
) -> FactorReport:
    as_of = calendar.session_for(as_of)
    window = settings.SIGMASIGHT_FACTOR_WINDOW
    frame, _ = book_frame(portfolio_ids, as_of, reads=reads)
    report = FactorReport(as_of=as_of, positions=len(frame))
    factors = active_factors()
    X, report.left_out = factor_model_returns(as_of, window, reads=reads)
    if frame.empty:
        return report
    if X.empty:
        reason = "no factor has enough history: " + "; ".join(report.left_out.values())
        report.without_beta = dict.fromkeys(sorted(set(frame["underlying_symbol"])), reason)
        return report
    symbols = sorted(set(frame["underlying_symbol"]))
    result = style_betas(symbols, as_of, X, reads=reads)
    row_of = {s: i for i, s in enumerate(symbols)}
    index = frame["underlying_symbol"].map(row_of).to_numpy()
    betas = result.betas[index]
    exposure = factor_exposure(frame)
    dollar = fx.dollar_exposures(exposure, betas)
    by_name = {f.name: f.pk for f in factors}
    has_beta = np.array([not result.reason[r] for r in index], dtype=bool)
    for p in np.flatnonzero(~has_beta):
        report.without_beta[symbols[index[p]]] = result.reason[index[p]]
    report.with_beta = int(has_beta.sum())
    position_ids = frame["id"].to_numpy()
    position_rows = _position_factor_rows(
        as_of,
        position_ids[has_beta],
        [by_name[name] for name in result.factors],
        result,
        index[has_beta],
        slice(None),
        dollar[has_beta],
    )
    portfolio_rows: list[PortfolioFactorRow] = []
    macro_dollar, macro_ids = _macro_exposures(
        as_of, window, symbols, index, position_ids, exposure, position_rows, reads
    )
    if macro_dollar is not None:
        dollar = np.concatenate([dollar, macro_dollar], axis=1)
        result_factors = [*result.factors, *macro_ids]
        by_name = {**by_name, **macro_ids}
    else:
        result_factors = list(result.factors)
    cash = dict(Portfolio.objects.filter(pk__in=portfolio_ids).values_list("pk", "cash"))
    for portfolio_id, group in frame.groupby("portfolio_id"):
        members = group.index.to_numpy()
        equity = float(cash[portfolio_id]) + float(np.nansum(group["exposure"]))
        gross = float(np.nansum(np.abs(group["exposure"])))
        totals = np.nansum(dollar[members], axis=0)
        if equity <= 0 and gross <= 0:
            continue  # nothing valued and no cash: no portfolio beta to normalize
        portfolio_betas, normalized = fx.portfolio_betas(dollar[members], equity, gross)
        with_beta = int(has_beta[members].sum())
        without_beta = int((~has_beta[members]).sum())
        for k, name in enumerate(result_factors):
            portfolio_rows.append(
                PortfolioFactorRow(
                    portfolio_id=int(portfolio_id),
                    factor_id=by_name[name],
                    date=as_of,
                    beta=float(portfolio_betas[k]),
                    dollar_exposure=float(totals[k]),
                    normalized_by=normalized,
                    positions_with_beta=with_beta,
                    positions_without_beta=without_beta,
                )
            )
    if reads is not None:
        reads.factors_changed()
    with transaction.atomic():
        report.written = upsert_records(
            PositionFactorExposure, position_rows, unique=["date", "position_id", "factor_id"]
        )
        report.written += upsert_records(
            PortfolioFactorExposure, portfolio_rows, unique=["portfolio_id", "factor_id", "date"]
        )
    logger.info(
        "factor exposures computed",
        extra={"as_of": as_of.isoformat(), "with_beta": report.with_beta},
    )
    return report


def macro_betas(
    symbols: list[str], as_of: date, window: int, *, reads: ReadCache | None = None
) -> tuple[list[FactorDefinition], list[fx.BetaResult]]:
    """Per active macro factor, the OLS of the symbols' returns on [Market, the macro's raw move]
    (Rates: yield changes); the macro's beta is column 1. Each macro uses the sessions where the
    market and it both moved; a macro whose proxy has too little history in the window (USO
    before 2006, say) is left out. Empty when there is no macro factor or no Market factor."""
    macros = active_factors("macro")
    market = next((f for f in active_factors() if f.name == fx.MARKET), None)
    if not macros or market is None:
        return [], []
    wanted = list(dict.fromkeys([market.etf_proxy, *symbols, *[m.etf_proxy for m in macros]]))
    closes = closes_panel(wanted, as_of, window + 1, reads=reads)
    returns = closes / closes.shift(1) - 1
    limits: dict[str, Any] = {
        "min_obs": settings.SIGMASIGHT_FACTOR_MIN_OBSERVATIONS,
        "cap": settings.SIGMASIGHT_BETA_CAP,
    }
    kept, results = [], []
    for m in macros:
        series = closes[m.etf_proxy]
        move = series.diff() if m.etf_proxy == RATE_10Y else returns[m.etf_proxy]
        pair = pd.DataFrame({fx.MARKET: returns[market.etf_proxy], m.name: move}).iloc[1:]
        pair = pair.dropna(how="any")
        if len(pair) < limits["min_obs"]:
            continue
        Y = returns[symbols].reindex(pair.index).to_numpy(dtype=float)
        results.append(fx.batched_ols(Y, pair.to_numpy(), [fx.MARKET, m.name], **limits))
        kept.append(m)
    return kept, results


def _position_factor_rows(
    as_of: date,
    position_ids: np.ndarray,
    factor_ids: list[int],
    result: fx.BetaResult,
    rows: np.ndarray,
    columns: slice,
    dollar: np.ndarray,
) -> list[PositionFactorRow]:
    """One row per position and factor, the factors within a position: position i's betas are
    row `rows[i]` of `result` (the factors in its `columns`), its dollar exposures `dollar[i]`."""
    n, k = len(position_ids), len(factor_ids)

    def per_factor(values: np.ndarray) -> list[Any]:  # a (P,) result: each position k times
        return np.repeat(values[rows], k).tolist()

    def matrix(values: np.ndarray) -> list[Any]:  # a (P, K) result: position-major
        return values[rows][:, columns].ravel().tolist()

    return records(
        PositionFactorRow,
        position_id=np.repeat(position_ids, k).tolist(),
        factor_id=np.tile(np.asarray(factor_ids, dtype=np.int64), n).tolist(),
        date=[as_of] * (n * k),
        beta=matrix(result.betas),
        raw_beta=matrix(result.raw_betas),
        std_error=matrix(result.std_errors),
        dollar_exposure=np.asarray(dollar, dtype=float).reshape(n, k).ravel().tolist(),
        r_squared=per_factor(result.r_squared),
        observations=per_factor(result.observations),
        capped=matrix(result.capped),
    )


def _macro_exposures(
    as_of: date,
    window: int,
    symbols: list[str],
    index: np.ndarray,
    position_ids: np.ndarray,
    exposure: np.ndarray,
    position_rows: list[PositionFactorRow],
    reads: ReadCache | None = None,
) -> tuple[np.ndarray | None, dict[str, int]]:
    """Each position's beta to each macro factor: the coefficient on the macro's raw move in a
    regression on [Market, macro] (Rates: yield changes). Holding the market fixed, it applies to
    the macro's move beyond what the market explains (the stress engine's convention). Appends
    the position rows; returns the (positions, macros) dollar exposures and name -> id."""
    macros, results = macro_betas(symbols, as_of, window, reads=reads)
    if not macros:
        return None, {}
    dollar = np.zeros((len(position_ids), len(macros)))
    for k, (m, result) in enumerate(zip(macros, results, strict=True)):
        beta = np.where(
            [not result.reason[r] for r in range(len(symbols))], result.betas[:, 1], np.nan
        )
        held = ~np.isnan(beta[index])
        dollar[held, k] = exposure[held] * beta[index[held]]
        position_rows.extend(
            _position_factor_rows(
                as_of, position_ids[held], [m.pk], result, index[held], slice(1, 2), dollar[held, k]
            )
        )
    return dollar, {m.name: m.pk for m in macros}


def ir_betas(
    symbols: list[str], as_of: date, window: int, *, reads: ReadCache | None = None
) -> fx.BetaResult:
    """OLS slope (uncapped) of the symbols' daily returns on daily changes of the 10-year yield."""
    closes = closes_panel([*symbols, RATE_10Y], as_of, window + 1, reads=reads)
    yield_change = closes[RATE_10Y].diff().iloc[1:]
    Y = fx.simple_returns(closes[symbols])
    usable = yield_change.notna()
    return fx.batched_ols(
        Y[usable].to_numpy(dtype=float),
        yield_change[usable].to_numpy(dtype=float)[:, None],
        ["rates"],
        min_obs=settings.SIGMASIGHT_FACTOR_MIN_OBSERVATIONS,
        cap=np.inf,
    )


def ir_betas_compute(
    *, as_of: date | None = None, portfolio_ids: list[int], reads: ReadCache | None = None
) -> FactorReport:
    """OLS slope of each position's returns (options: the underlying's) on daily changes of the
    10-year yield, over the factor window."""
    as_of = calendar.session_for(as_of)
    window = settings.SIGMASIGHT_FACTOR_WINDOW
    frame, _ = book_frame(portfolio_ids, as_of, reads=reads)
    report = FactorReport(as_of=as_of, positions=len(frame))
    if frame.empty:
        return report
    symbols = sorted(set(frame["underlying_symbol"]))
    result = ir_betas(symbols, as_of, window, reads=reads)
    row_of = {s: i for i, s in enumerate(symbols)}
    rows: list[RateBetaRow] = []
    for position_id, symbol in zip(frame["id"].tolist(), frame["underlying_symbol"], strict=True):
        r = row_of[symbol]
        if result.reason[r]:
            report.without_beta[symbol] = result.reason[r]
            continue
        report.with_beta += 1
        rows.append(
            RateBetaRow(
                position_id=position_id,
                date=as_of,
                ir_beta=float(result.betas[r, 0]),
                r_squared=float(result.r_squared[r]),
                observations=int(result.observations[r]),
            )
        )
    report.written = upsert_records(PositionInterestRateBeta, rows, unique=["position_id", "date"])
    return report


def scenario_betas(
    frame: pd.DataFrame, as_of: date, *, reads: ReadCache | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Stored market beta and IR beta per frame row (NaN where none; with `reads`, the market
    betas from its factor rows of the session)."""
    ids = frame["id"].tolist()
    rows = stored_factor_rows(ids, as_of, [fx.MARKET], reads=reads)
    market = dict(zip(rows["position_id"].tolist(), rows["beta"].tolist(), strict=True))
    rates = dict(
        PositionInterestRateBeta.objects.filter(position_id__in=ids, date=as_of).values_list(
            "position_id", "ir_beta"
        )
    )
    return (
        frame["id"].map(market).astype(float).to_numpy(),
        frame["id"].map(rates).astype(float).to_numpy(),
    )


def scenarios_for(
    portfolio: Portfolio,
    as_of: date,
    *,
    market_moves: Sequence[float] = MARKET_MOVES,
    rate_moves: Sequence[float] = RATE_MOVES,
) -> dict[str, list[dict]]:
    """Market moves with options fully revalued (and the delta-only P&L beside), and rate moves."""
    frame, _ = book_frame([portfolio.pk], as_of)
    market_beta, ir_beta = (
        scenario_betas(frame, as_of) if len(frame) else (np.zeros(0), np.zeros(0))
    )
    return scenarios_of_frame(
        frame, market_beta, ir_beta, float(portfolio.cash), market_moves, rate_moves
    )


def scenarios_of_frame(
    frame: pd.DataFrame,
    market_beta: np.ndarray,
    ir_beta: np.ndarray,
    cash: float,
    market_moves: Sequence[float],
    rate_moves: Sequence[float],
    change: ChangeUnder = change_under,
) -> dict[str, list[dict]]:
    base = book_return_base(cash, frame["exposure"]).amount
    stocks = ~frame["is_option"].to_numpy(dtype=bool)
    legs = OptionLegs.from_frame(frame)
    moves = np.asarray(market_moves, dtype=float)
    market = market_scenarios(
        moves,
        stock_exposure=np.nan_to_num(frame["exposure"].to_numpy(dtype=float)[stocks]),
        stock_beta=market_beta[stocks],
        options=legs,
        option_beta=market_beta[legs.rows],
        change=change,
    )
    values = factor_exposure(frame) if len(frame) else np.zeros(0)
    rates = rate_scenarios(np.asarray(rate_moves, dtype=float), values=values, ir_betas=ir_beta)
    return {
        "market": [
            {
                "scenario": f"market {m:+.2%}",
                "move": float(m),
                "predicted_pnl": float(full),
                "delta_only_pnl": float(delta),
                "predicted_return": float(full / base),
            }
            for m, full, delta in zip(moves, market.full, market.delta_only, strict=True)
        ],
        "rates": [
            {
                "scenario": f"rates {m * 10_000:+.0f}bp",
                "move": float(m),
                "predicted_pnl": float(pnl),
                "delta_only_pnl": None,
                "predicted_return": float(pnl / base),
            }
            for m, pnl in zip(rate_moves, rates, strict=True)
        ],
    }


def scenarios_compute(
    *, as_of: date | None = None, portfolio_ids: list[int], reads: ReadCache | None = None
) -> int:
    """Every portfolio's stored scenarios for the session, from one book frame (fixed queries)."""
    as_of = calendar.session_for(as_of)
    frame, _ = book_frame(portfolio_ids, as_of, reads=reads)
    market_beta, ir_beta = (
        scenario_betas(frame, as_of, reads=reads) if len(frame) else (np.zeros(0), np.zeros(0))
    )
    cash = dict(Portfolio.objects.filter(pk__in=portfolio_ids).values_list("pk", "cash"))
    rows: list[ScenarioRow] = []
    for portfolio_id in sorted(cash):
        mine = (frame["portfolio_id"] == portfolio_id).to_numpy()
        scenarios = scenarios_of_frame(
            frame[mine].reset_index(drop=True),
            market_beta[mine],
            ir_beta[mine],
            float(cash[portfolio_id]),
            MARKET_MOVES,
            RATE_MOVES,
            change=reads.legs.change if reads is not None else change_under,
        )
        for kind, items in scenarios.items():
            for item in items:
                rows.append(
                    ScenarioRow(
                        portfolio_id=portfolio_id,
                        date=as_of,
                        kind=kind,
                        move=item["move"],
                        predicted_pnl=item["predicted_pnl"],
                        delta_only_pnl=item["delta_only_pnl"],
                        predicted_return=item["predicted_return"],
                    )
                )
    return upsert_records(MarketRiskScenario, rows, unique=["portfolio_id", "date", "kind", "move"])
