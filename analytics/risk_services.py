"""Factor exposures, interest-rate betas and market and rate scenarios (risk metrics and the
history-based measures are in analytics.risk_metrics).

Each job reads the book, one returns panel and the stored Greeks in a fixed number of queries,
computes on arrays (calculations/), and upserts its rows for the session."""

from __future__ import annotations

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
from analytics.calculations.scenarios import OptionBook, market_scenarios, rate_scenarios
from analytics.models import (
    FactorDefinition,
    MarketRiskScenario,
    PortfolioFactorExposure,
    PositionFactorExposure,
    PositionInterestRateBeta,
)
from analytics.services import book_frame, memo, session_for
from marketdata import calendar
from marketdata.models import DailyPrice
from marketdata.providers.base import RATE_10Y
from portfolios.models import Portfolio
from sigmasight.db import fetch_frame, upsert_rows

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
    written: int = 0  # rows upserted (portfolio and position)
    left_out: dict[str, str] = field(default_factory=dict)  # factor -> why not in the model


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
    """Daily returns of the active factors that have history in the window (columns = factor
    names), styles residual to Market; see `factor_model_returns`."""
    return factor_model_returns(as_of, window)[0]


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


def factor_model_returns(as_of: date, window: int) -> tuple[pd.DataFrame, dict[str, str]]:
    """The factor model's regressors over the last `window` sessions, and the factors left out.

    A factor enters when its proxy has at least SIGMASIGHT_FACTOR_MIN_OBSERVATIONS daily returns
    in the window (the style ETFs start 2004-2013: a window before a proxy existed models with
    the factors that did); the rows are the sessions where every factor that entered has a
    return. The styles are residual to Market, so without Market's history none enters. Returns
    (sessions x factor names, decimal daily returns) and {factor name: why it was left out}."""
    factors = active_factors()
    closes = closes_panel([f.etf_proxy for f in factors], as_of, window + 1)
    returns = fx.simple_returns(closes).rename(columns={f.etf_proxy: f.name for f in factors})
    left_out = factors_left_out(factors, returns, as_of, window, "daily returns")
    residual = not settings.SIGMASIGHT_RAW_STYLE_FACTORS and any(f.name == MARKET for f in factors)
    if residual and MARKET in left_out:
        for f in factors:
            left_out.setdefault(f.name, f"residual to {MARKET}, which has too little history")
    kept = list(dict.fromkeys(f.name for f in factors if f.name not in left_out))
    if not kept:
        return returns.iloc[:0, :0], left_out
    returns = returns[kept].dropna(how="any")
    if residual and MARKET in returns:
        returns = fx.residualize(returns, market=MARKET)
    return returns, left_out


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
    X, report.left_out = factor_model_returns(as_of, window)
    if frame.empty:
        return report
    if X.empty:
        reason = "no factor has enough history: " + "; ".join(report.left_out.values())
        report.without_beta = dict.fromkeys(sorted(set(frame["underlying_symbol"])), reason)
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
        report.written = upsert_rows(
            PositionFactorExposure,
            ["position_id", "factor_id", "date", "beta", "raw_beta", "std_error", "dollar_exposure",
             "r_squared", "observations", "capped"],
            position_rows, unique=["position_id", "factor_id", "date"],
        )  # fmt: skip
        report.written += upsert_rows(
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
    (Rates: yield changes); the macro's beta is column 1. Each macro uses the sessions where the
    market and it both moved; a macro whose proxy has too little history in the window (USO
    before 2006, say) is left out. Empty when there is no macro factor or no Market factor."""
    macros = active_factors("macro")
    market = next((f for f in active_factors() if f.name == MARKET), None)
    if not macros or market is None:
        return [], []
    wanted = list(dict.fromkeys([market.etf_proxy, *symbols, *[m.etf_proxy for m in macros]]))
    closes = closes_panel(wanted, as_of, window + 1)
    returns = closes / closes.shift(1) - 1
    limits = {
        "min_obs": settings.SIGMASIGHT_FACTOR_MIN_OBSERVATIONS,
        "cap": settings.SIGMASIGHT_BETA_CAP,
    }
    kept, results = [], []
    for m in macros:
        series = closes[m.etf_proxy]
        move = series.diff() if m.etf_proxy == RATE_10Y else returns[m.etf_proxy]
        pair = pd.DataFrame({MARKET: returns[market.etf_proxy], m.name: move}).iloc[1:]
        pair = pair.dropna(how="any")
        if len(pair) < limits["min_obs"]:
            continue
        Y = returns[symbols].reindex(pair.index).to_numpy(dtype=float)
        results.append(fx.batched_ols(Y, pair.to_numpy(), [MARKET, m.name], **limits))
        kept.append(m)
    return kept, results


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
    report.written = upsert_rows(
        PositionInterestRateBeta, ["position_id", "date", "ir_beta", "r_squared", "observations"], rows,
        unique=["position_id", "date"],
    )  # fmt: skip
    return report


def scenario_betas(frame: pd.DataFrame, as_of: date) -> tuple[np.ndarray, np.ndarray]:
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
        scenario_betas(frame, as_of) if len(frame) else (np.zeros(0), np.zeros(0))
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
        scenario_betas(frame, as_of) if len(frame) else (np.zeros(0), np.zeros(0))
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
