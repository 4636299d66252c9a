"""Factor exposures, interest-rate betas, market and rate scenarios, and risk metrics.

Each job reads the book, one returns panel and the stored Greeks in a fixed number of queries,
computes on arrays (calculations/), and upserts its rows for the session."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pandas as pd
from django.conf import settings
from django.db import transaction
from django.db.models import FloatField
from django.db.models.functions import Cast

from analytics.calculations import factors as fx
from analytics.calculations import risk
from analytics.calculations.scenarios import OptionBook, accuracy, market_scenarios, rate_scenarios
from analytics.models import (
    FactorDefinition,
    MarketRiskScenario,
    PortfolioFactorExposure,
    PositionFactorExposure,
    PositionInterestRateBeta,
    RiskMetricSnapshot,
)
from analytics.services import book_frame, memo, session_for
from marketdata import calendar
from marketdata.calculations import black_scholes as bs
from marketdata.models import DailyPrice
from marketdata.providers.base import RATE_10Y, RATE_SHORT
from portfolios.models import Portfolio
from sigmasight.db import fetch_frame, upsert_rows
from sigmasight.exceptions import InsufficientHistory

logger = logging.getLogger("sigmasight.batch")
MARKET = "Market"
MARKET_MOVES = (-0.01, 0.01)
RATE_MOVES = (-0.005, 0.005)


@dataclass
class FactorReport:
    as_of: date
    positions: int = 0
    with_beta: int = 0
    without_beta: dict[str, str] = field(default_factory=dict)  # symbol -> reason


def closes_panel(symbols: Sequence[str], as_of: date, sessions: int) -> pd.DataFrame:
    """Closes (sessions x symbols) over the last `sessions` NYSE sessions to `as_of` (one query;
    inside `read_memo`, only symbols not read yet for that span are queried). A symbol asked
    twice is one column."""
    symbols = list(dict.fromkeys(symbols))
    if not symbols:
        return pd.DataFrame(index=calendar.sessions_back(as_of, sessions), dtype=float)
    shared = memo()
    if shared is None:
        return _read_closes(symbols, as_of, sessions)
    key = ("closes", as_of, sessions)
    have = shared.get(key)
    missing = symbols if have is None else [s for s in symbols if s not in have.columns]
    if missing:
        fresh = _read_closes(missing, as_of, sessions)
        have = fresh if have is None else pd.concat([have, fresh], axis=1)
        shared[key] = have
    return have[symbols].copy()


def closes_known(as_of: date, sessions: int) -> pd.DataFrame | None:
    """Inside `read_memo`: every close read so far for that span (sessions x symbols)."""
    shared = memo()
    return None if shared is None else shared.get(("closes", as_of, sessions))


def closes_remember(panel: pd.DataFrame, as_of: date, sessions: int) -> None:
    """Inside `read_memo`: closes known without a read (a what-if session's frozen history), so
    `closes_panel` queries only other symbols for that span."""
    shared = memo()
    if shared is None:
        return
    key = ("closes", as_of, sessions)
    have = shared.get(key)
    if have is not None:
        panel = pd.concat(
            [have, panel[[c for c in panel.columns if c not in have.columns]]], axis=1
        )
    shared[key] = panel


def _read_closes(symbols: list[str], as_of: date, sessions: int) -> pd.DataFrame:
    days = calendar.sessions_back(as_of, sessions)
    frame = fetch_frame(
        DailyPrice.objects.filter(
            security__symbol__in=list(symbols), date__gte=days[0], date__lte=as_of
        ).values_list("date", "security__symbol", Cast("close", FloatField())),
        ["date", "symbol", "close"],
        text=["date", "symbol"],
    )
    if frame.empty:
        return pd.DataFrame(index=days, columns=list(symbols), dtype=float)
    wide = frame.pivot(index="date", columns="symbol", values="close")
    # SQLite answers ISO strings, PostgreSQL dates: key the few hundred sessions, not every row.
    wide.index = [d if isinstance(d, date) else date.fromisoformat(d) for d in wide.index]
    return wide.reindex(index=days, columns=list(symbols)).astype(float)


def active_factors(factor_type: str = "style") -> list[FactorDefinition]:
    """The factor model's regressors: active factors of a type (style by default; the stress
    engine models the macro factors separately) that have a proxy series."""
    return list(
        FactorDefinition.objects.filter(is_active=True, factor_type=factor_type)
        .exclude(etf_proxy="")
        .order_by("display_order", "id")
    )


def factor_returns(as_of: date, window: int) -> pd.DataFrame:
    """Daily returns of the active factors (columns = factor names), styles residual to Market."""
    factors = active_factors()
    closes = closes_panel([f.etf_proxy for f in factors], as_of, window + 1)
    returns = fx.simple_returns(closes).rename(columns={f.etf_proxy: f.name for f in factors})
    returns = returns.dropna(how="any")
    if not settings.SIGMASIGHT_RAW_STYLE_FACTORS and MARKET in returns:
        returns = fx.residualize(returns, market=MARKET)
    return returns


def factor_exposure(frame: pd.DataFrame) -> np.ndarray:
    """The exposure a position's factor betas apply to: stocks their exposure; options their
    delta-adjusted exposure (DESIGN.md) unless settings choose dollar exposure. Unvalued -> 0."""
    if settings.SIGMASIGHT_OPTION_FACTOR_EXPOSURE == "dollar":
        return np.nan_to_num(frame["exposure"].to_numpy(dtype=float))
    return np.nan_to_num(
        np.where(frame["is_option"], frame["dollar_delta"], frame["exposure"]).astype(float)
    )


def stored_betas(position_ids: list[int], as_of: date, factors: list[str]) -> np.ndarray:
    """(positions, factors) stored betas for the session, in the given orders; 0 where none."""
    rows = PositionFactorExposure.objects.filter(
        position_id__in=position_ids, date=as_of
    ).values_list("position_id", "factor__name", "beta")
    table = pd.DataFrame.from_records(list(rows), columns=["id", "factor", "beta"])
    if table.empty:
        return np.zeros((len(position_ids), len(factors)))
    pivot = table.pivot(index="id", columns="factor", values="beta")
    return pivot.reindex(index=position_ids, columns=factors).fillna(0.0).to_numpy()


def style_betas(symbols: list[str], as_of: date, X: pd.DataFrame) -> fx.BetaResult:
    """The factor model's OLS of the symbols' daily returns on the style factor returns `X`
    (from `factor_returns`) over the window: betas capped, reasons where not solved."""
    window = settings.SIGMASIGHT_FACTOR_WINDOW
    Y = fx.simple_returns(closes_panel(symbols, as_of, window + 1)).reindex(X.index)
    return fx.batched_ols(
        Y.to_numpy(dtype=float), X.to_numpy(dtype=float), list(X.columns),
        min_obs=settings.SIGMASIGHT_FACTOR_MIN_OBSERVATIONS, cap=settings.SIGMASIGHT_BETA_CAP,
    )  # fmt: skip


def factors_compute(*, as_of: date | None = None, portfolio_ids: list[int]) -> FactorReport:
    as_of = session_for(as_of)
    window = settings.SIGMASIGHT_FACTOR_WINDOW
    frame, _ = book_frame(portfolio_ids, as_of)
    report = FactorReport(as_of=as_of, positions=len(frame))
    factors = active_factors()
    X = factor_returns(as_of, window)
    if frame.empty or X.empty:
        return report
    symbols = sorted(set(frame["underlying_symbol"]))
    result = style_betas(symbols, as_of, X)
    row_of = {s: i for i, s in enumerate(symbols)}
    index = frame["underlying_symbol"].map(row_of).to_numpy()
    betas = result.betas[index]
    exposure = factor_exposure(frame)
    dollar = fx.dollar_exposures(exposure, betas)
    by_name = {f.name: f.pk for f in factors}
    position_rows, portfolio_rows = [], []
    for p, position_id in enumerate(frame["id"].tolist()):
        r = index[p]
        if result.reason[r]:
            report.without_beta[symbols[r]] = result.reason[r]
            continue
        report.with_beta += 1
        for k, name in enumerate(result.factors):
            position_rows.append((
                position_id, by_name[name], as_of, float(result.betas[r, k]), float(result.raw_betas[r, k]),
                float(result.std_errors[r, k]), float(dollar[p, k]), float(result.r_squared[r]),
                int(result.observations[r]), bool(result.capped[r, k]),
            ))  # fmt: skip
    macro_dollar, macro_ids = _macro_exposures(
        as_of, window, symbols, index, frame, exposure, position_rows
    )
    if macro_dollar is not None:
        dollar = np.concatenate([dollar, macro_dollar], axis=1)
        result_factors = [*result.factors, *macro_ids]
        by_name = {**by_name, **macro_ids}
    else:
        result_factors = list(result.factors)
    has_beta = np.array([not result.reason[r] for r in index], dtype=bool)
    cash = dict(Portfolio.objects.filter(pk__in=portfolio_ids).values_list("pk", "cash"))
    for portfolio_id, group in frame.groupby("portfolio_id"):
        members = group.index.to_numpy()
        equity = float(cash[portfolio_id]) + float(np.nansum(group["exposure"]))
        gross = float(np.nansum(np.abs(group["exposure"])))
        totals = np.nansum(dollar[members], axis=0)
        if equity <= 0 and gross <= 0:
            continue  # nothing valued and no cash: no portfolio beta to normalize
        portfolio_betas, normalized = fx.portfolio_betas(dollar[members], equity, gross)
        for k, name in enumerate(result_factors):
            portfolio_rows.append((
                int(portfolio_id), by_name[name], as_of, float(portfolio_betas[k]), float(totals[k]), normalized,
                int(has_beta[members].sum()), int((~has_beta[members]).sum()),
            ))  # fmt: skip
    with transaction.atomic():
        upsert_rows(
            PositionFactorExposure,
            ["position_id", "factor_id", "date", "beta", "raw_beta", "std_error", "dollar_exposure",
             "r_squared", "observations", "capped"],
            position_rows, unique=["position_id", "factor_id", "date"],
        )  # fmt: skip
        upsert_rows(
            PortfolioFactorExposure,
            ["portfolio_id", "factor_id", "date", "beta", "dollar_exposure", "normalized_by",
             "positions_with_beta", "positions_without_beta"],
            portfolio_rows, unique=["portfolio_id", "factor_id", "date"],
        )  # fmt: skip
    logger.info(
        "factor exposures computed",
        extra={"as_of": as_of.isoformat(), "with_beta": report.with_beta},
    )
    return report


def macro_betas(
    symbols: list[str], as_of: date, window: int
) -> tuple[list[FactorDefinition], list[fx.BetaResult]]:
    """Per active macro factor, the OLS of the symbols' returns on [Market, the macro's raw move]
    (Rates: yield changes); the macro's beta is column 1. Empty when there is no macro factor,
    no Market factor or too little history."""
    macros = active_factors("macro")
    market = next((f for f in active_factors() if f.name == MARKET), None)
    if not macros or market is None:
        return [], []
    wanted = list(dict.fromkeys([market.etf_proxy, *symbols, *[m.etf_proxy for m in macros]]))
    closes = closes_panel(wanted, as_of, window + 1)
    returns = closes / closes.shift(1) - 1
    moves = pd.DataFrame({MARKET: returns[market.etf_proxy]})
    for m in macros:
        series = closes[m.etf_proxy]
        moves[m.name] = series.diff() if m.etf_proxy == RATE_10Y else returns[m.etf_proxy]
    moves = moves.iloc[1:].dropna(how="any")
    if len(moves) < settings.SIGMASIGHT_FACTOR_MIN_OBSERVATIONS:
        return [], []
    Y = returns[symbols].reindex(moves.index).to_numpy(dtype=float)
    limits = {
        "min_obs": settings.SIGMASIGHT_FACTOR_MIN_OBSERVATIONS,
        "cap": settings.SIGMASIGHT_BETA_CAP,
    }
    results = [
        fx.batched_ols(Y, moves[[MARKET, m.name]].to_numpy(), [MARKET, m.name], **limits)
        for m in macros
    ]
    return macros, results


def _macro_exposures(
    as_of: date, window: int, symbols: list[str], index: np.ndarray, frame: pd.DataFrame,
    exposure: np.ndarray, position_rows: list,
) -> tuple[np.ndarray | None, dict[str, int]]:  # fmt: skip
    """Each position's beta to each macro factor: the coefficient on the macro's raw move in a
    regression on [Market, macro] (Rates: yield changes). Holding the market fixed, it applies to
    the macro's move beyond what the market explains (the stress engine's convention). Appends
    the position rows; returns the (positions, macros) dollar exposures and name -> id."""
    macros, results = macro_betas(symbols, as_of, window)
    if not macros:
        return None, {}
    dollar = np.zeros((len(frame), len(macros)))
    for k, (m, result) in enumerate(zip(macros, results, strict=True)):
        beta = np.where(
            [not result.reason[r] for r in range(len(symbols))], result.betas[:, 1], np.nan
        )
        for p, position_id in enumerate(frame["id"].tolist()):
            r = index[p]
            if np.isnan(beta[r]):
                continue
            dollar[p, k] = exposure[p] * beta[r]
            position_rows.append((
                position_id, m.pk, as_of, float(beta[r]), float(result.raw_betas[r, 1]),
                float(result.std_errors[r, 1]), float(dollar[p, k]), float(result.r_squared[r]),
                int(result.observations[r]), bool(result.capped[r, 1]),
            ))  # fmt: skip
    return dollar, {m.name: m.pk for m in macros}


def ir_betas(symbols: list[str], as_of: date, window: int) -> fx.BetaResult:
    """OLS slope (uncapped) of the symbols' daily returns on daily changes of the 10-year yield."""
    closes = closes_panel([*symbols, RATE_10Y], as_of, window + 1)
    yield_change = closes[RATE_10Y].diff().iloc[1:]
    Y = fx.simple_returns(closes[symbols])
    usable = yield_change.notna()
    return fx.batched_ols(
        Y[usable].to_numpy(dtype=float), yield_change[usable].to_numpy(dtype=float)[:, None], ["rates"],
        min_obs=settings.SIGMASIGHT_FACTOR_MIN_OBSERVATIONS, cap=np.inf,
    )  # fmt: skip


def ir_betas_compute(*, as_of: date | None = None, portfolio_ids: list[int]) -> FactorReport:
    """OLS slope of each position's returns (options: the underlying's) on daily changes of the
    10-year yield, over the factor window."""
    as_of = session_for(as_of)
    window = settings.SIGMASIGHT_FACTOR_WINDOW
    frame, _ = book_frame(portfolio_ids, as_of)
    report = FactorReport(as_of=as_of, positions=len(frame))
    if frame.empty:
        return report
    symbols = sorted(set(frame["underlying_symbol"]))
    result = ir_betas(symbols, as_of, window)
    row_of = {s: i for i, s in enumerate(symbols)}
    rows = []
    for position_id, symbol in zip(frame["id"].tolist(), frame["underlying_symbol"], strict=True):
        r = row_of[symbol]
        if result.reason[r]:
            report.without_beta[symbol] = result.reason[r]
            continue
        report.with_beta += 1
        rows.append(
            (
                position_id,
                as_of,
                float(result.betas[r, 0]),
                float(result.r_squared[r]),
                int(result.observations[r]),
            )
        )
    upsert_rows(
        PositionInterestRateBeta, ["position_id", "date", "ir_beta", "r_squared", "observations"], rows,
        unique=["position_id", "date"],
    )  # fmt: skip
    return report


def _scenario_inputs(frame: pd.DataFrame, as_of: date) -> tuple[np.ndarray, np.ndarray]:
    """Stored market beta and IR beta per frame row (NaN where none)."""
    ids = frame["id"].tolist()
    market = dict(
        PositionFactorExposure.objects.filter(
            position_id__in=ids, date=as_of, factor__name=MARKET
        ).values_list("position_id", "beta")
    )
    rates = dict(
        PositionInterestRateBeta.objects.filter(position_id__in=ids, date=as_of).values_list(
            "position_id", "ir_beta"
        )
    )
    return (
        frame["id"].map(market).astype(float).to_numpy(),
        frame["id"].map(rates).astype(float).to_numpy(),
    )


def return_base(cash: float, frame: pd.DataFrame) -> float:
    """What returns and P&L percentages divide by: equity, or gross exposure when equity is not
    positive (DESIGN.md), or 1 for an empty book."""
    equity = float(cash) + float(np.nansum(frame["exposure"]))
    return equity if equity > 0 else float(np.nansum(np.abs(frame["exposure"]))) or 1.0


def scenarios_for(
    portfolio: Portfolio, as_of: date, *, market_moves: Sequence[float] = MARKET_MOVES,
    rate_moves: Sequence[float] = RATE_MOVES,
) -> dict[str, list[dict]]:  # fmt: skip
    """Market moves with options fully revalued (and the delta-only P&L beside), and rate moves."""
    frame, _ = book_frame([portfolio.pk], as_of)
    market_beta, ir_beta = (
        _scenario_inputs(frame, as_of) if len(frame) else (np.zeros(0), np.zeros(0))
    )
    return scenarios_from(
        frame, market_beta, ir_beta, float(portfolio.cash), market_moves, rate_moves
    )


def scenarios_from(
    frame: pd.DataFrame, market_beta: np.ndarray, ir_beta: np.ndarray, cash: float,
    market_moves: Sequence[float], rate_moves: Sequence[float],
) -> dict[str, list[dict]]:  # fmt: skip
    base = return_base(cash, frame)
    stocks = ~frame["is_option"].to_numpy(dtype=bool)
    options = frame["is_option"].to_numpy(dtype=bool) & frame["volatility"].notna().to_numpy()
    book = OptionBook(
        spot=frame["underlying_price"].to_numpy(dtype=float)[options],
        strike=frame["strike"].to_numpy(dtype=float)[options],
        years=frame["days_to_expiry"].to_numpy(dtype=float)[options] / 365.0,
        rate=frame["risk_free_rate"].to_numpy(dtype=float)[options],
        volatility=frame["volatility"].to_numpy(dtype=float)[options],
        is_call=(frame["option_type"] == "C").to_numpy()[options],
        units=(frame["quantity"] * frame["multiplier"]).to_numpy(dtype=float)[options],
        market_beta=market_beta[options],
    )
    moves = np.asarray(market_moves, dtype=float)
    market = market_scenarios(
        moves, stock_exposure=np.nan_to_num(frame["exposure"].to_numpy(dtype=float)[stocks]),
        stock_beta=market_beta[stocks], options=book,
    )  # fmt: skip
    values = factor_exposure(frame) if len(frame) else np.zeros(0)
    rates = rate_scenarios(np.asarray(rate_moves, dtype=float), values=values, ir_betas=ir_beta)
    return {
        "market": [
            {"scenario": f"market {m:+.2%}", "move": float(m), "predicted_pnl": float(full),
             "delta_only_pnl": float(delta), "predicted_return": float(full / base)}
            for m, full, delta in zip(moves, market.full, market.delta_only, strict=True)
        ],
        "rates": [
            {"scenario": f"rates {m * 10_000:+.0f}bp", "move": float(m), "predicted_pnl": float(pnl),
             "delta_only_pnl": None, "predicted_return": float(pnl / base)}
            for m, pnl in zip(rate_moves, rates, strict=True)
        ],
    }  # fmt: skip


def scenarios_compute(*, as_of: date | None = None, portfolio_ids: list[int]) -> int:
    """Every portfolio's stored scenarios for the session, from one book frame (fixed queries)."""
    as_of = session_for(as_of)
    frame, _ = book_frame(portfolio_ids, as_of)
    market_beta, ir_beta = (
        _scenario_inputs(frame, as_of) if len(frame) else (np.zeros(0), np.zeros(0))
    )
    cash = dict(Portfolio.objects.filter(pk__in=portfolio_ids).values_list("pk", "cash"))
    rows = []
    for portfolio_id in sorted(cash):
        mine = (frame["portfolio_id"] == portfolio_id).to_numpy()
        scenarios = scenarios_from(
            frame[mine].reset_index(drop=True), market_beta[mine], ir_beta[mine],
            float(cash[portfolio_id]), MARKET_MOVES, RATE_MOVES,
        )  # fmt: skip
        for kind, items in scenarios.items():
            for item in items:
                rows.append((portfolio_id, as_of, kind, item["move"], item["predicted_pnl"],
                             item["delta_only_pnl"], item["predicted_return"]))  # fmt: skip
    return upsert_rows(
        MarketRiskScenario,
        ["portfolio_id", "date", "kind", "move", "predicted_pnl", "delta_only_pnl", "predicted_return"],
        rows, unique=["portfolio_id", "date", "kind", "move"],
    )  # fmt: skip


def pnl_history(portfolio: Portfolio, as_of: date, sessions: int) -> pd.Series:
    """Daily P&L of the current book revalued over past closes (positions' own closes; options
    their cached closes), the series risk metrics use until snapshots exist."""
    frame, _ = book_frame([portfolio.pk], as_of)
    if frame.empty:
        raise InsufficientHistory(
            "The portfolio has no positions.", fields={"sessions": 0, "required": 2}
        )
    return _pnl_from(frame, closes_panel(sorted(set(frame["symbol"])), as_of, sessions + 1))


def _pnl_from(frame: pd.DataFrame, closes: pd.DataFrame) -> pd.Series:
    """Daily P&L of the positions in `frame` over `closes` (sessions x symbols, a superset):
    only sessions where every one of the book's symbols has a change."""
    units = (frame["quantity"] * frame["multiplier"]).groupby(frame["symbol"]).sum()
    changes = closes[units.index].diff().iloc[1:]
    complete = changes.notna().all(axis=1)
    return (changes[complete] * units).sum(axis=1)


def scenario_accuracy(portfolio: Portfolio, as_of: date, days_back: int) -> dict:
    """Predicted (market beta exposure x SPY return) against realized P&L over the last sessions."""
    frame, _ = book_frame([portfolio.pk], as_of)
    realized = pnl_history(portfolio, as_of, days_back)
    market = fx.simple_returns(closes_panel(["SPY"], as_of, days_back + 1))["SPY"]
    market_beta, _ = _scenario_inputs(frame, as_of)
    exposure_to_market = float(np.nansum(factor_exposure(frame) * np.nan_to_num(market_beta)))
    predicted = market.reindex(realized.index) * exposure_to_market
    return accuracy(predicted.to_numpy(), realized.to_numpy())


@dataclass
class RiskInputs:
    """What every portfolio's risk metrics share for a session, read once for a batch of
    portfolios in a fixed number of queries: the book, its closes, the factor returns and their
    EWMA covariance, stored betas and dollar exposures, residual vols, SPY and the short rate."""

    as_of: date
    frame: pd.DataFrame
    cash: dict[int, float]
    closes: pd.DataFrame
    factors: list[str]
    cov: np.ndarray | None
    cov_error: Exception | None
    betas: np.ndarray  # frame rows x factors
    dollar: pd.DataFrame  # portfolio id x factors
    residual_vol: pd.Series  # by underlying symbol
    spy: pd.Series
    rate: float
    # Portfolio id -> rows whose Monte Carlo revaluation is already known (not repeated).
    revalued: dict[int, RevaluedRows] = field(default_factory=dict)


@dataclass(frozen=True)
class RevaluedRows:
    """The Monte Carlo factor P&L (no residual) of a portfolio's first `rows` frame rows under
    the seeded draws of `cov` (SIGMASIGHT_MONTE_CARLO_DRAWS, MONTE_CARLO_SEED, horizon_days).
    P&L adds up over positions under the same draws, so a book that only appends rows (a
    what-if session's trades after its frozen base) revalues just the new ones."""

    rows: int
    horizon_days: int
    cov: np.ndarray
    pnl: np.ndarray

    def fits(self, rows: int, cov: np.ndarray | None, horizon_days: int) -> bool:
        return (
            cov is not None and self.rows <= rows and self.horizon_days == horizon_days
            and len(self.pnl) == settings.SIGMASIGHT_MONTE_CARLO_DRAWS
            and np.array_equal(self.cov, cov)
        )  # fmt: skip


def risk_inputs(portfolio_ids: list[int], as_of: date) -> RiskInputs:
    frame, _ = book_frame(portfolio_ids, as_of)
    X = factor_returns(as_of, settings.SIGMASIGHT_FACTOR_WINDOW)
    factors = list(X.columns)
    exposures = pd.DataFrame.from_records(
        list(
            PositionFactorExposure.objects.filter(
                position__portfolio_id__in=portfolio_ids, date=as_of, factor__name__in=factors
            ).values_list("position__portfolio_id", "factor__name", "dollar_exposure")
        ),
        columns=["portfolio_id", "factor", "dollar"],
    )
    dollar = exposures.pivot_table(
        index="portfolio_id", columns="factor", values="dollar", aggfunc="sum"
    ).reindex(columns=factors)
    cash = dict(Portfolio.objects.filter(pk__in=portfolio_ids).values_list("pk", "cash"))
    return risk_inputs_from(
        frame, as_of, cash={pk: float(c) for pk, c in cash.items()}, X=X,
        betas=stored_betas(frame["id"].tolist(), as_of, factors), dollar=dollar,
    )  # fmt: skip


def risk_inputs_from(
    frame: pd.DataFrame, as_of: date, *, cash: dict[int, float], X: pd.DataFrame,
    betas: np.ndarray, dollar: pd.DataFrame | None = None,
) -> RiskInputs:  # fmt: skip
    """The risk inputs of a book frame (stored or pro forma) given its rows' style betas (rows x
    X's factors). `dollar` (portfolio id x factors) defaults to the rows' factor exposure x
    betas summed per portfolio, which is what the factor job stores."""
    window = settings.SIGMASIGHT_FACTOR_WINDOW
    factors = list(X.columns)
    cov, cov_error = None, None
    try:
        cov = risk.ewma_covariance(X.to_numpy(), lam=settings.SIGMASIGHT_EWMA_LAMBDA)
    except (risk.InsufficientHistory, ValueError) as exc:
        cov_error = exc
    if dollar is None:
        per_row = fx.dollar_exposures(factor_exposure(frame), betas) if len(frame) else betas
        dollar = (
            pd.DataFrame(per_row, columns=factors).groupby(frame["portfolio_id"].to_numpy()).sum()
        )
    underlyings = sorted(set(frame["underlying_symbol"]))
    residual_vol = pd.Series(dtype=float)
    if underlyings and not X.empty:
        residual_vol = pd.Series(style_betas(underlyings, as_of, X).residual_vol, index=underlyings)
    return RiskInputs(
        as_of=as_of, frame=frame, cash=cash,
        closes=closes_panel(sorted(set(frame["symbol"])), as_of, window + 1), factors=factors,
        cov=cov, cov_error=cov_error, betas=betas, dollar=dollar, residual_vol=residual_vol,
        spy=fx.simple_returns(closes_panel(["SPY"], as_of, window + 1))["SPY"],
        rate=risk_free_daily(as_of),
    )  # fmt: skip


def risk_metrics(
    portfolio: Portfolio, as_of: date, *, confidence: float, horizon_days: int
) -> dict:
    inputs = risk_inputs([portfolio.pk], as_of)
    return portfolio_risk_metrics(inputs, portfolio.pk, (confidence,), horizon_days)[confidence]


def portfolio_risk_metrics(
    inputs: RiskInputs, portfolio_id: int, confidences: Sequence[float], horizon_days: int
) -> dict[float, dict]:
    """Historical, parametric and Monte Carlo VaR, ES, volatility, Sharpe, Sortino, drawdown,
    beta to SPY and the VaR backtest of one portfolio at each confidence."""
    rows = (inputs.frame["portfolio_id"] == portfolio_id).to_numpy()
    frame = inputs.frame[rows].reset_index(drop=True)
    if frame.empty:
        raise InsufficientHistory(
            "The portfolio has no positions.", fields={"sessions": 0, "required": 2}
        )
    pnl = _pnl_from(frame, inputs.closes)
    required = max(settings.SIGMASIGHT_FACTOR_MIN_OBSERVATIONS, risk.MIN_VAR_OBSERVATIONS)
    if len(pnl) < required:
        raise InsufficientHistory(
            f"Only {len(pnl)} sessions of P&L history exist; {required} are needed.",
            fields={"sessions": len(pnl), "required": required},
        )
    if inputs.cov_error is not None:
        raise inputs.cov_error
    base = return_base(inputs.cash.get(portfolio_id, 0.0), frame)
    values = pnl.to_numpy()
    returns = values / base
    dollar = (
        inputs.dollar.loc[portfolio_id].fillna(0.0).to_numpy(dtype=float)
        if portfolio_id in inputs.dollar.index
        else np.zeros(len(inputs.factors))
    )
    exposure = factor_exposure(frame)
    residual = float(
        np.nansum((exposure * frame["underlying_symbol"].map(inputs.residual_vol).to_numpy(dtype=float)) ** 2)
    )  # fmt: skip
    known = inputs.revalued.get(portfolio_id)
    known = (
        known if known is not None and known.fits(len(frame), inputs.cov, horizon_days) else None
    )
    revalue = _same_draws(_full_revaluation(frame, inputs.betas[rows], residual, known))
    spy = inputs.spy.reindex(pnl.index)
    result = {}
    for confidence in confidences:
        mc_var, _ = risk.monte_carlo_var(
            inputs.cov, revalue, n=settings.SIGMASIGHT_MONTE_CARLO_DRAWS, seed=MONTE_CARLO_SEED,
            confidence=confidence, horizon_days=horizon_days,
        )  # fmt: skip
        exceptions, observations = _backtest(values, confidence)
        _, p_value = (
            risk.kupiec_pof(exceptions, observations, confidence) if observations else (None, None)
        )
        result[confidence] = {
            "as_of": inputs.as_of, "confidence": confidence, "horizon_days": horizon_days,
            "var_historical": risk.scale_to_horizon(risk.historical_var(values, confidence), horizon_days),
            "var_parametric": risk.parametric_var(dollar, inputs.cov, residual, confidence, horizon_days),
            "var_monte_carlo": mc_var,
            "expected_shortfall": risk.scale_to_horizon(risk.expected_shortfall(values, confidence), horizon_days),
            "volatility": risk.annualized_volatility(returns),
            "sharpe": risk.sharpe(returns, inputs.rate), "sortino": risk.sortino(returns, inputs.rate),
            "max_drawdown": risk.max_drawdown(returns),
            "beta": risk.beta(returns, spy.to_numpy()) if spy.notna().sum() >= required else None,
            "backtest": {"exceptions": exceptions, "observations": observations, "kupiec_p_value": p_value},
            "observations": len(pnl),
        }  # fmt: skip
    return result


MONTE_CARLO_SEED = 20_261_124


def _same_draws(revalue):
    """Revalue once per set of draws: the confidences of one portfolio share the seeded moves,
    so their Monte Carlo P&L is computed once (and its residual noise drawn once)."""
    memo: dict = {}

    def cached(moves: np.ndarray) -> np.ndarray:
        if "moves" not in memo or not np.array_equal(memo["moves"], moves):
            memo["moves"], memo["pnl"] = moves, revalue(moves)
        return memo["pnl"]

    return cached


def revalued_rows(inputs: RiskInputs, portfolio_id: int, horizon_days: int) -> RevaluedRows | None:
    """The portfolio's Monte Carlo factor P&L under the seeded draws, for `RiskInputs.revalued`
    of a later book that appends rows to this one; None without a covariance."""
    if inputs.cov is None:
        return None
    rows = (inputs.frame["portfolio_id"] == portfolio_id).to_numpy()
    moves = risk.monte_carlo_moves(
        inputs.cov, n=settings.SIGMASIGHT_MONTE_CARLO_DRAWS, seed=MONTE_CARLO_SEED,
        horizon_days=horizon_days,
    )  # fmt: skip
    frame = inputs.frame[rows].reset_index(drop=True)
    pnl = _full_revaluation(frame, inputs.betas[rows], 0.0)(moves)
    return RevaluedRows(rows=len(frame), horizon_days=horizon_days, cov=inputs.cov, pnl=pnl)


def _full_revaluation(
    frame: pd.DataFrame, betas: np.ndarray, residual_var: float, known: RevaluedRows | None = None
):
    """P&L of the book under factor moves: every position's underlying moves by its own betas;
    stocks linearly, options repriced by Black-Scholes at the shocked underlying; plus the
    positions' residual risk as seeded normal noise (so a linear book converges to parametric).
    Rows already `known` under these draws add their P&L instead of being revalued."""
    if known is not None:
        frame, betas = frame.iloc[known.rows :], betas[known.rows :]
    option = frame["is_option"].to_numpy(dtype=bool) & frame["volatility"].notna().to_numpy()
    stock = ~frame["is_option"].to_numpy(dtype=bool)
    exposure = np.nan_to_num(frame["exposure"].to_numpy(dtype=float))
    spot = frame["underlying_price"].to_numpy(dtype=float)[option]
    terms = (
        frame["strike"].to_numpy(dtype=float)[option], frame["days_to_expiry"].to_numpy(dtype=float)[option] / 365.0,
        frame["risk_free_rate"].to_numpy(dtype=float)[option], frame["volatility"].to_numpy(dtype=float)[option],
        (frame["option_type"] == "C").to_numpy()[option],
    )  # fmt: skip
    units = (frame["quantity"] * frame["multiplier"]).to_numpy(dtype=float)[option]
    base = bs.price(spot, *terms)
    noise = np.random.default_rng(MONTE_CARLO_SEED + 1)
    residual_sd = float(np.sqrt(max(residual_var, 0.0)))

    def revalue(moves: np.ndarray) -> np.ndarray:
        underlying = moves @ betas.T  # (draws, positions) underlying returns
        pnl = underlying[:, stock] @ exposure[stock]
        if option.any():
            shocked = bs.price(np.maximum(spot * (1.0 + underlying[:, option]), 0.0), *terms)
            pnl = pnl + (shocked - base) @ units
        if known is not None:
            pnl = known.pnl + pnl
        return pnl + residual_sd * noise.standard_normal(len(moves))

    return revalue


def risk_free_daily(as_of: date) -> float:
    """The cached short rate (US3M) on or before `as_of`, else the settings default, per
    trading day (annual / 252), as a decimal."""
    quote = (
        DailyPrice.objects.filter(security__symbol=RATE_SHORT, date__lte=as_of)
        .order_by("-date")
        .values_list("close", flat=True)
        .first()
    )
    annual = float(quote) if quote is not None else settings.SIGMASIGHT_DEFAULT_RATE
    return annual / risk.TRADING_DAYS


def _backtest(pnl: np.ndarray, confidence: float, lookback: int = 100) -> tuple[int, int]:
    """Rolling 1-day historical VaR from the previous `lookback` days against each next day."""
    var = np.array(
        [risk.historical_var(pnl[t - lookback : t], confidence) for t in range(lookback, len(pnl))]
    )
    if not len(var):
        return 0, 0
    return risk.var_backtest(pnl[lookback:], var)


def risk_metrics_compute(*, as_of: date | None = None, portfolio_ids: list[int]) -> int:
    as_of = session_for(as_of)
    inputs = risk_inputs(portfolio_ids, as_of)
    rows = []
    for portfolio_id in sorted(portfolio_ids):
        try:
            metrics = portfolio_risk_metrics(inputs, portfolio_id, (0.95, 0.99), horizon_days=1)
        except InsufficientHistory:
            continue
        for confidence, m in metrics.items():
            rows.append((
                portfolio_id, as_of, confidence, 1, m["var_historical"], m["var_parametric"], m["var_monte_carlo"],
                m["expected_shortfall"], m["volatility"], m["sharpe"], m["sortino"], m["max_drawdown"], m["beta"],
                json.dumps(m["backtest"]), m["observations"],
            ))  # fmt: skip
    return upsert_rows(
        RiskMetricSnapshot,
        ["portfolio_id", "date", "confidence", "horizon_days", "var_historical", "var_parametric",
         "var_monte_carlo", "expected_shortfall", "volatility", "sharpe", "sortino", "max_drawdown",
         "beta", "backtest", "observations"],
        rows, unique=["portfolio_id", "date", "confidence", "horizon_days"],
    )  # fmt: skip
