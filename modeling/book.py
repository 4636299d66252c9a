"""The what-if book: a session's frozen base frame plus pro-forma trade rows, and its risk state
computed by the batch's own functions on the in-memory frame (no second implementation).

- The base is `analytics.selectors.book_frame` at the session date, frozen at creation with each
  row's factor betas (stored by the factor job; estimated by its OLS where none is stored) and
  interest-rate beta. Options the Greeks job has not priced get Greeks from `option_greeks`.
- A trade becomes a row valued at its price (`value_positions`); stocks take their Greeks from
  `stock_greeks`, options from `option_greeks` with the trade's price as the option's close;
  its betas are those of its underlying in the base, else estimated like the factor job's
  (`style_betas`, `macro_betas`, `ir_betas`).
- The state of a frame: exposures and Greeks (`aggregation`), portfolio factor betas
  (`fx.portfolio_betas` of exposure x beta), market and rate scenarios (`scenarios_of_frame`), every
  active stress scenario (`stress_pnl`) and VaR and risk metrics (`risk_inputs_of_frame` +
  `portfolio_risk_metrics`, Monte Carlo seeded), so the base book's state is the batch's.

Money in the state is a 2-dp decimal string (exposures, equity); P&L, Greeks and betas are
floats, as in the risk and stress APIs. `change` is after minus before, item by item.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

import numpy as np
import pandas as pd
from django.conf import settings
from django.db.models import Q

from analytics.calculations import aggregation
from analytics.calculations import factors as fx
from analytics.calculations.aggregation import book_return_base
from analytics.calculations.factors import MARKET
from analytics.calculations.valuation import value_positions
from analytics.models import PositionFactorExposure, PositionInterestRateBeta
from analytics.montecarlo import RevaluedRows
from analytics.provenance import data_quality_sources
from analytics.risk_metrics import (
    RiskInputs,
    portfolio_risk_metrics,
    revalued_rows,
    risk_inputs_of_frame,
)
from analytics.risk_services import (
    MARKET_MOVES,
    RATE_MOVES,
    factor_exposure,
    factor_returns,
    ir_betas,
    macro_betas,
    scenarios_of_frame,
    style_betas,
)
from analytics.selectors import ReadCache, book_frame, stock_greeks
from analytics.services import option_greeks
from marketdata.services import current_prices
from sigmasight.exceptions import DomainError, InsufficientHistory
from stress.models import StressScenario
from stress.services import FactorModel, factor_model, stress_factors, stress_pnl

FLOATS = [
    "strike",
    "quantity",
    "entry_price",
    "multiplier",
    "last_price",
    "market_value",
    "exposure",
    "unrealized_pnl",
    "daily_pnl",
    "underlying_price",
    *aggregation.GREEKS,
    "dollar_delta",
    "implied_volatility",
    "volatility",
    "days_to_expiry",
    "risk_free_rate",
    "dividend_yield",
    "early_exercise_premium",
]
TEXTS = ["symbol", "underlying_symbol", "option_type", "volatility_source", "exercise_style"]
COLUMNS = ["id", "portfolio_id", *TEXTS, "expiration", "is_option", *FLOATS]
CONFIDENCES = (0.95, 0.99)
MONEY = ("gross", "net", "long", "short", "options", "stock", "notional")


@dataclass(frozen=True)
class Trade:
    """A pro-forma trade as the engine sees it (stored or suggested)."""

    key: int  # the row id in the frame: negative, so never a position's id
    symbol: str
    underlying: str
    option_type: str  # "" for stocks
    strike: float | None
    expiration: date | None
    quantity: float
    price: float
    multiplier: int


@dataclass
class Book:
    frame: pd.DataFrame  # book_frame's columns, one row per position or trade
    betas: np.ndarray  # rows x Context.factors
    ir_beta: np.ndarray  # rows (NaN: none)

    def plus(self, other: Book) -> Book:
        if not len(other.frame):
            return self
        return Book(
            frame=pd.concat([self.frame, other.frame], ignore_index=True),
            betas=np.vstack([self.betas, other.betas]),
            ir_beta=np.concatenate([self.ir_beta, other.ir_beta]),
        )


@dataclass
class Context:
    """What every state of one session shares, read once per request (`reads`: the request's
    read cache, holding the session's frozen closes)."""

    reads: ReadCache
    portfolio_id: int
    as_of: date
    cash: float
    factors: list[str]  # every active factor with a proxy: styles then macros (stress order)
    X: pd.DataFrame  # style factor returns over the window
    model: FactorModel | None
    model_error: str
    scenarios: list[StressScenario]
    revalued: RevaluedRows | None = None  # the frozen base's Monte Carlo P&L


def context_for(
    *, portfolio_id: int, owner_id: int, as_of: date, cash: float, reads: ReadCache
) -> Context:
    model, error = None, ""
    try:
        model = factor_model(as_of, reads=reads)
    except InsufficientHistory as exc:
        error = exc.message
    scenarios = list(
        StressScenario.objects.filter(
            Q(owner__isnull=True) | Q(owner_id=owner_id), is_active=True
        ).order_by("id")
    )
    return Context(
        reads=reads,
        portfolio_id=portfolio_id,
        as_of=as_of,
        cash=cash,
        factors=[f.name for f in stress_factors()],
        X=factor_returns(as_of, settings.SIGMASIGHT_FACTOR_WINDOW, reads=reads),
        model=model,
        model_error=error,
        scenarios=scenarios,
    )


# --- the frozen base ------------------------------------------------------------------------


def base_build(portfolio_id: int, ctx: Context) -> tuple[Book, dict]:
    """The portfolio's open positions valued at the session date, with Greeks and betas."""
    frame, read_quality = book_frame([portfolio_id], ctx.as_of, reads=ctx.reads)
    frame = frame.reindex(columns=COLUMNS).reset_index(drop=True)
    frame["option_type"] = frame["option_type"].fillna("")
    frame["is_option"] = frame["is_option"].fillna(False).astype(bool)
    unpriced = (frame["is_option"] & frame["volatility"].isna()).to_numpy()
    if unpriced.any():
        _option_rows(frame, unpriced, ctx.as_of, option_close=None)
    ids = frame["id"].astype(int).tolist()
    betas = np.zeros((len(frame), len(ctx.factors)))
    stored = pd.DataFrame.from_records(
        list(
            PositionFactorExposure.objects.filter(position_id__in=ids, date=ctx.as_of).values_list(
                "position_id", "factor__name", "beta"
            )
        ),
        columns=["id", "factor", "beta"],
    )
    if len(stored):
        pivot = stored.pivot(index="id", columns="factor", values="beta")
        betas = (
            pivot.reindex(index=ids, columns=ctx.factors)
            .fillna(0.0)
            .to_numpy(dtype=float, copy=True)
        )
    has_stored = frame["id"].isin(set(stored["id"])).to_numpy()
    ir = (
        frame["id"]
        .map(
            dict(
                PositionInterestRateBeta.objects.filter(
                    position_id__in=ids, date=ctx.as_of
                ).values_list("position_id", "ir_beta")
            )
        )
        .to_numpy(dtype=float, copy=True)
    )
    missing = ~has_stored | np.isnan(ir)
    if missing.any():
        symbols = sorted(set(frame.loc[missing, "underlying_symbol"]))
        est_betas, est_ir = estimate_betas(symbols, ctx)
        row = frame["underlying_symbol"].map({s: i for i, s in enumerate(symbols)})
        for p in np.flatnonzero(missing):
            r = int(row.iloc[p])
            if not has_stored[p]:
                betas[p] = est_betas[r]
            if np.isnan(ir[p]):
                ir[p] = est_ir[r]
    quality = {
        **data_quality_sources(set(frame["symbol"]) | set(frame["underlying_symbol"]), ctx.as_of),
        **read_quality,
        "computed_greeks": int(unpriced.sum()),
        "estimated_betas": int((~has_stored).sum()),
    }
    return Book(frame=frame, betas=betas, ir_beta=ir), quality


def estimate_betas(symbols: list[str], ctx: Context) -> tuple[np.ndarray, np.ndarray]:
    """(symbols x factors) betas and (symbols,) IR betas by the factor job's regressions; 0
    (IR: NaN) where a symbol has too little history, as for a position the job left out."""
    out = np.zeros((len(symbols), len(ctx.factors)))
    if not symbols:
        return out, np.zeros(0)
    window = settings.SIGMASIGHT_FACTOR_WINDOW
    column = {name: k for k, name in enumerate(ctx.factors)}
    if not ctx.X.empty:
        style = style_betas(symbols, ctx.as_of, ctx.X, reads=ctx.reads)
        for k, name in enumerate(style.factors):
            if name in column:
                out[:, column[name]] = np.nan_to_num(style.betas[:, k])
    macros, results = macro_betas(symbols, ctx.as_of, window, reads=ctx.reads)
    for m, result in zip(macros, results, strict=True):
        if m.name in column:
            solved = np.array([not reason for reason in result.reason], dtype=bool)
            out[:, column[m.name]] = np.where(solved, np.nan_to_num(result.betas[:, 1]), 0.0)
    rates = ir_betas(symbols, ctx.as_of, window, reads=ctx.reads)
    solved = np.array([not reason for reason in rates.reason], dtype=bool)
    return out, np.where(solved, rates.betas[:, 0], np.nan)


def book_to_json(book: Book, factors: list[str]) -> list[dict]:
    rows = []
    records = book.frame.to_dict("records")
    for record, betas, ir in zip(records, book.betas, book.ir_beta, strict=True):
        row = {}
        for key in COLUMNS:
            value = record[key]
            if key == "expiration":
                value = value.isoformat() if isinstance(value, date) else None
            elif key in ("id", "portfolio_id"):
                value = int(value)
            elif key == "is_option":
                value = bool(value)
            elif key in FLOATS:
                value = _num(value)
            else:
                value = value if isinstance(value, str) else None
            row[key] = value
        row["betas"] = {name: float(b) for name, b in zip(factors, betas, strict=True)}
        row["ir_beta"] = _num(ir)
        rows.append(row)
    return rows


def book_from_json(rows: list[dict], factors: list[str]) -> Book:
    frame = pd.DataFrame.from_records(rows, columns=COLUMNS)
    # A session frozen before options carried their style and yield was valued European
    # without dividends: it is revalued the way it was frozen.
    legacy = frame["is_option"].astype(bool) & ~pd.Series(
        ["exercise_style" in r for r in rows], index=frame.index, dtype=bool
    )
    frame.loc[legacy, "exercise_style"] = "european"
    frame.loc[legacy, "dividend_yield"] = 0.0
    frame.loc[legacy, "early_exercise_premium"] = 0.0
    for key in FLOATS:
        frame[key] = pd.to_numeric(frame[key], errors="coerce").astype(float)
    frame["id"] = frame["id"].astype("int64")
    frame["portfolio_id"] = frame["portfolio_id"].astype("int64")
    frame["is_option"] = frame["is_option"].astype(bool)
    frame["option_type"] = frame["option_type"].fillna("")
    frame["expiration"] = pd.Series(
        [date.fromisoformat(r["expiration"]) if r["expiration"] else None for r in rows],
        index=frame.index,
        dtype=object,
    )
    betas = np.array(
        [[row["betas"].get(name, 0.0) for name in factors] for row in rows], dtype=float
    ).reshape(len(rows), len(factors))
    ir = np.array([np.nan if r["ir_beta"] is None else r["ir_beta"] for r in rows], dtype=float)
    return Book(frame=frame, betas=betas, ir_beta=ir)


def arrays_to_bytes(closes: pd.DataFrame | None, revalued: RevaluedRows | None) -> bytes:
    """The frozen numeric inputs of a session as one .npz: the closes panel its base's state
    was computed from, and the base's Monte Carlo factor P&L under the seeded draws."""
    arrays: dict[str, np.ndarray] = {}
    if closes is not None and not closes.empty:
        arrays.update(
            closes=closes.to_numpy(dtype=float),
            symbols=np.array(list(closes.columns), dtype=str),
            dates=np.array([d.toordinal() for d in closes.index], dtype=np.int64),
        )
    if revalued is not None:
        arrays.update(
            mc_pnl=revalued.pnl,
            mc_cov=revalued.cov,
            mc_shape=np.array([revalued.rows, revalued.horizon_days], dtype=np.int64),
        )
    if not arrays:
        return b""
    out = io.BytesIO()
    # mypy matches **arrays against savez's allow_pickle keyword; the keys are array names.
    np.savez(out, **arrays)  # type: ignore[arg-type]
    return out.getvalue()


def arrays_from_bytes(blob: bytes | memoryview) -> tuple[pd.DataFrame | None, RevaluedRows | None]:
    if not blob:
        return None, None
    with np.load(io.BytesIO(bytes(blob)), allow_pickle=False) as stored:
        closes = revalued = None
        if "closes" in stored:
            closes = pd.DataFrame(
                stored["closes"],
                columns=stored["symbols"].tolist(),
                index=[date.fromordinal(int(d)) for d in stored["dates"]],
            )
        if "mc_pnl" in stored:
            rows, horizon = (int(v) for v in stored["mc_shape"])
            revalued = RevaluedRows(
                rows=rows, horizon_days=horizon, cov=stored["mc_cov"], pnl=stored["mc_pnl"]
            )
        return closes, revalued


def _num(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


# --- trades -----------------------------------------------------------------------------------


def trades_book(trades: Sequence[Trade], base: Book, ctx: Context) -> Book:
    """Trade rows valued at their prices, with Greeks and betas, ready to append to the base."""
    frame = pd.DataFrame(
        {
            "id": np.array([t.key for t in trades], dtype="int64"),
            "portfolio_id": np.full(len(trades), ctx.portfolio_id, dtype="int64"),
            "symbol": [t.symbol for t in trades],
            "underlying_symbol": [t.underlying for t in trades],
            "option_type": [t.option_type for t in trades],
            "volatility_source": [None] * len(trades),
            "exercise_style": [None] * len(trades),
            "expiration": [t.expiration for t in trades],
            "is_option": np.array([bool(t.option_type) for t in trades], dtype=bool),
            "strike": np.array([np.nan if t.strike is None else t.strike for t in trades]),
            "quantity": np.array([t.quantity for t in trades], dtype=float),
            "entry_price": np.array([t.price for t in trades], dtype=float),
            "multiplier": np.array([t.multiplier for t in trades], dtype=float),
        }
    ).reindex(columns=COLUMNS)
    if not len(frame):
        return Book(frame=frame, betas=np.zeros((0, len(ctx.factors))), ir_beta=np.zeros(0))
    price = frame["entry_price"].to_numpy(dtype=float)
    valuation = value_positions(
        quantity=frame["quantity"],
        price=price,
        previous_price=price,
        entry_price=price,
        multiplier=frame["multiplier"],
    )
    frame["last_price"] = price
    frame["market_value"] = valuation.market_value
    frame["exposure"] = valuation.exposure
    frame["unrealized_pnl"] = valuation.unrealized_pnl
    frame["daily_pnl"] = valuation.daily_pnl
    # A stock trade's own price is its underlying's: its exposure is its dollar delta.
    frame["underlying_price"] = price
    options = frame["is_option"].to_numpy()
    if options.any():
        _option_rows(frame, options, ctx.as_of, option_close=price[options])
    stock_greeks(frame)
    betas, ir_beta = _trade_betas(frame, base, ctx)
    return Book(frame=frame, betas=betas, ir_beta=ir_beta)


def _option_rows(
    frame: pd.DataFrame, rows: np.ndarray, as_of: date, option_close: np.ndarray | None
) -> None:
    """Greeks of the option rows in place, by the Greeks job's path (`option_greeks`)."""
    result, spot, rate, days = option_greeks(
        frame.loc[rows].reset_index(drop=True), as_of, option_close=option_close
    )
    values = {
        "delta": result.delta,
        "gamma": result.gamma,
        "theta": result.theta,
        "vega": result.vega,
        "rho": result.rho,
        "dollar_delta": result.dollar_delta,
        "implied_volatility": result.implied_volatility,
        "volatility": result.volatility,
        "underlying_price": spot,
        "days_to_expiry": days,
        "risk_free_rate": np.full(len(spot), rate),
        "dividend_yield": result.dividend_yield,
        "early_exercise_premium": result.early_exercise_premium,
    }
    for name, value in values.items():
        frame.loc[rows, name] = value
    frame.loc[rows, "volatility_source"] = result.source
    frame.loc[rows, "exercise_style"] = np.where(result.american, "american", "european")


def _trade_betas(frame: pd.DataFrame, base: Book, ctx: Context) -> tuple[np.ndarray, np.ndarray]:
    """An underlying the base holds lends its betas; the others are estimated."""
    in_base: dict[str, int] = {}
    for p, symbol in enumerate(base.frame["underlying_symbol"]):
        in_base.setdefault(symbol, p)
    new = sorted(set(frame["underlying_symbol"]) - set(in_base))
    est_betas, est_ir = estimate_betas(new, ctx)
    estimated = {s: i for i, s in enumerate(new)}
    betas = np.zeros((len(frame), len(ctx.factors)))
    ir = np.full(len(frame), np.nan)
    for p, symbol in enumerate(frame["underlying_symbol"]):
        if symbol in in_base:
            betas[p], ir[p] = base.betas[in_base[symbol]], base.ir_beta[in_base[symbol]]
        else:
            betas[p], ir[p] = est_betas[estimated[symbol]], est_ir[estimated[symbol]]
    return betas, ir


def spot_prices(symbols: Iterable[str], as_of: date) -> dict[str, float]:
    """Cached closes on or before the session date."""
    return {s: float(q.price) for s, q in current_prices(list(symbols), as_of=as_of).items()}


# --- the state of a book ----------------------------------------------------------------------


def state(book: Book, ctx: Context) -> dict:
    """Exposures, Greeks, factor betas, scenarios, stress and VaR of a book."""
    frame = book.frame
    exposures = aggregation.exposures(frame)
    greeks = aggregation.greeks(frame)
    equity = ctx.cash + exposures["net"]
    dollar = fx.dollar_exposures(factor_exposure(frame), book.betas)
    betas: np.ndarray | list[None]
    try:
        betas, normalized = fx.portfolio_betas(dollar, equity, exposures["gross"])
    except ValueError:
        betas, normalized = [None] * len(ctx.factors), None
    market = (
        book.betas[:, ctx.factors.index(MARKET)] if MARKET in ctx.factors else np.zeros(len(frame))
    )
    return {
        "equity": _money(equity),
        "exposures": {k: _money(v) if k in MONEY else v for k, v in exposures.items()},
        "greeks": greeks,
        "normalized_by": normalized,
        "factor_betas": {
            name: None if b is None else float(b)
            for name, b in zip(ctx.factors, betas, strict=True)
        },
        "factor_dollar_exposures": dict(
            zip(ctx.factors, map(float, dollar.sum(axis=0)), strict=True)
        ),
        "scenarios": scenarios_of_frame(
            frame, market, book.ir_beta, ctx.cash, MARKET_MOVES, RATE_MOVES
        ),
        "stress": _stress(book, ctx),
        "stress_error": ctx.model_error or None,
        "var": risk_of(book, ctx),
    }


def _money(value: float) -> str:
    # As the portfolio summary rounds; adding 0 turns a rounded -0.00 into 0.00.
    return f"{Decimal(f'{float(value):.2f}') + 0}"


def _stress(book: Book, ctx: Context) -> list[dict]:
    if ctx.model is None or not ctx.scenarios:
        return []
    columns = [ctx.factors.index(name) for name in ctx.model.names]
    result = stress_pnl(book.frame, book.betas[:, columns], ctx.model, ctx.scenarios)
    base = book_return_base(ctx.cash, book.frame["exposure"]).amount
    rows = []
    for s, scenario in enumerate(ctx.scenarios):
        correlated = float(result.full_pnl[s].sum())
        rows.append(
            {
                "scenario_id": scenario.pk,
                "scenario": scenario.name,
                "category": scenario.category,
                "direct_pnl": float(result.direct_pnl[s].sum()),
                "correlated_pnl": correlated,
                "pnl_pct": correlated / base,
            }
        )
    return rows


def _risk_inputs(book: Book, ctx: Context) -> RiskInputs:
    style = [ctx.factors.index(name) for name in ctx.X.columns]
    inputs = risk_inputs_of_frame(
        book.frame,
        ctx.as_of,
        cash={ctx.portfolio_id: ctx.cash},
        X=ctx.X,
        betas=book.betas[:, style],
        reads=ctx.reads,
    )
    if ctx.revalued is not None:
        inputs.revalued[ctx.portfolio_id] = ctx.revalued
    return inputs


def base_revalued(book: Book, ctx: Context) -> RevaluedRows | None:
    """The base's Monte Carlo factor P&L, frozen so calculations revalue only the trades."""
    if not len(book.frame):
        return None
    return revalued_rows(_risk_inputs(book, ctx), ctx.portfolio_id, horizon_days=1)


def risk_of(book: Book, ctx: Context) -> list[dict]:
    """VaR and ES of a book per confidence (one session, one day), as the batch computes them;
    each confidence an error instead when the book cannot be measured."""
    try:
        inputs = _risk_inputs(book, ctx)
        metrics = portfolio_risk_metrics(inputs, ctx.portfolio_id, CONFIDENCES, horizon_days=1)
    except (DomainError, ValueError) as exc:
        message = exc.message if isinstance(exc, DomainError) else str(exc)
        return [{"confidence": c, "error": message} for c in CONFIDENCES]
    return [{k: v for k, v in metrics[c].items() if k not in ("as_of",)} for c in CONFIDENCES]


# --- before, after, change ----------------------------------------------------------------------

IDENTITY = ("scenario_id", "scenario", "confidence")
KEPT = {
    "scenario",
    "scenario_id",
    "category",
    "move",
    "confidence",
    "horizon_days",
    "normalized_by",
    "error",
    "stress_error",
}


def change(before: object, after: object) -> object:
    """after - before, item by item: numbers subtract, 2-dp money strings subtract exactly,
    lists pair items by their identity (scenario, confidence); labels are the after's."""
    if isinstance(after, dict) and isinstance(before, dict):
        return {k: (v if k in KEPT else change(before.get(k), v)) for k, v in after.items()}
    if isinstance(after, list) and isinstance(before, list):
        return [change(_match(item, before), item) for item in after]
    if isinstance(after, bool) or isinstance(before, bool):
        return None
    if isinstance(after, int | float) and isinstance(before, int | float):
        return after - before
    if isinstance(after, str) and isinstance(before, str):
        try:
            return f"{Decimal(after) - Decimal(before) + 0}"
        except InvalidOperation:
            return after
    return None


def _match(item: object, items: list) -> object:
    if not isinstance(item, dict):
        return None
    for key in IDENTITY:
        if key in item:
            return next((other for other in items if other.get(key) == item[key]), None)
    return None
