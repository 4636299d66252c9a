"""Analytics writes: value the book and compute option Greeks for a session, in a fixed number
of queries per call, on whole arrays, with bulk writes. Re-running a session overwrites it."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
from django.conf import settings
from django.db import transaction
from django.db.models import CharField, FloatField
from django.db.models.functions import Cast
from django.utils import timezone

from analytics.calculations import aggregation
from analytics.calculations.greeks import (
    PositionGreeksArrays,
    position_greeks,
    realized_volatility,
)
from analytics.models import PortfolioFactorExposure, PositionGreeks
from analytics.provenance import data_quality_sources
from analytics.rows import GreeksRow, ValuationRow
from analytics.selectors import book_frame, latest_closes, positions_frame
from marketdata import calendar
from marketdata.calculations import black_scholes as bs
from marketdata.calculations import options as option_engine
from marketdata.calendar import session_for
from marketdata.models import DailyPrice
from marketdata.providers.base import RATE_SHORT
from marketdata.selectors import dividend_yields
from marketdata.services import current_prices
from marketdata.symbols import AMERICAN, exercise_style, exercise_styles
from portfolios.models import Portfolio, Position
from sigmasight.db import db_timestamp, fetch_frame, records, update_records, upsert_records
from sigmasight.exceptions import ValidationFailed

logger = logging.getLogger("sigmasight.batch")


@dataclass
class RunReport:
    as_of: date
    positions: int = 0
    written: int = 0
    missing_prices: list[str] = field(default_factory=list)
    sources: dict[str, int] = field(default_factory=dict)
    # Underlyings of American contracts priced without a stored dividend yield (0 used).
    without_yield: list[str] = field(default_factory=list)


def positions_value(
    *, as_of: date | None = None, portfolio_ids: list[int] | None = None
) -> RunReport:
    """Value every open position at the session's close (and P&L against the previous session)
    and store it on the position (the valuation the positions API lists)."""
    as_of = session_for(as_of)
    if portfolio_ids is None:
        portfolio_ids = list(
            Position.objects.filter(closed_at__isnull=True)
            .values_list("portfolio_id", flat=True)
            .distinct()
        )
    frame, _ = book_frame(portfolio_ids, as_of)
    report = RunReport(as_of=as_of, positions=len(frame))
    if frame.empty:
        return report
    last = frame["last_price"].to_numpy(dtype=float)
    report.missing_prices = sorted(set(frame.loc[np.isnan(last), "symbol"]))

    def money(values: pd.Series) -> list:
        return [
            None if not np.isfinite(v) else Decimal(f"{v:.2f}")
            for v in values.to_numpy(dtype=float)
        ]

    stamp = db_timestamp(Position, "updated_at", timezone.now())
    rows = records(
        ValuationRow,
        last_price=[None if not np.isfinite(v) else Decimal(f"{v:.6f}") for v in last],
        market_value=money(frame["market_value"]),
        exposure=money(frame["exposure"]),
        unrealized_pnl=money(frame["unrealized_pnl"]),
        daily_pnl=money(frame["daily_pnl"]),
        valued_as_of=[as_of if np.isfinite(v) else None for v in last],
        updated_at=[stamp] * len(frame),
        id=frame["id"].tolist(),
    )
    with transaction.atomic():
        report.written = update_records(Position, rows)
    return report


def _underlying_history(underlyings: list[str], as_of: date, window: int) -> np.ndarray:
    """Realized volatility per underlying from cached closes (one query, as floats: no
    per-row Decimal; every stored date in the span, in order)."""
    start = calendar.sessions_back(as_of, window + 1)[0]
    frame = fetch_frame(
        DailyPrice.objects.filter(
            security__symbol__in=underlyings, date__gte=start, date__lte=as_of
        ).values_list("security__symbol", Cast("date", CharField()), Cast("close", FloatField())),
        ["symbol", "date", "close"],
        text=["symbol", "date"],
    )
    if frame.empty:
        return np.full(len(underlyings), np.nan)
    # ISO dates as text (no per-row date parsing): they sort in date order.
    closes = frame.pivot(index="date", columns="symbol", values="close").astype(float).sort_index()
    closes = closes.reindex(columns=underlyings)
    return realized_volatility(closes.to_numpy(), window)


def option_greeks(
    options: pd.DataFrame,
    as_of: date,
    *,
    option_close: np.ndarray | None = None,
    yields: dict[str, float] | None = None,
) -> tuple[PositionGreeksArrays, np.ndarray, float, np.ndarray]:
    """Greeks of option rows (symbol, underlying_symbol, option_type, strike, expiration,
    quantity, multiplier) on the session, from cached closes, each contract by its exercise style
    (`marketdata.symbols.exercise_style`) with its underlying's latest stored dividend yield on
    or before the session (0 without one): implied vol from `option_close` (default: each
    contract's own close), else the underlying's realized vol, else the default (`yields`: the
    stored yields when the caller read them already). Returns the Greeks, underlying prices,
    short rate and days to expiry."""
    underlyings = sorted(set(options["underlying_symbol"]))
    price, _ = latest_closes(sorted(set(options["symbol"])) + underlyings + [RATE_SHORT], as_of)
    rate = price.get(RATE_SHORT, settings.SIGMASIGHT_DEFAULT_RATE)
    realized = dict(
        zip(
            underlyings,
            _underlying_history(underlyings, as_of, settings.SIGMASIGHT_REALIZED_VOL_WINDOW),
            strict=True,
        )
    )
    if yields is None:
        yields = dividend_yields(underlyings, as_of)
    spot = options["underlying_symbol"].map(price).astype(float).to_numpy()
    days = np.array([(e - as_of).days for e in options["expiration"]], dtype=float)
    if option_close is None:
        option_close = options["symbol"].map(price).astype(float).to_numpy()
    result = position_greeks(
        underlying_price=spot,
        strike=options["strike"].to_numpy(dtype=float),
        days=days,
        rate=rate,
        is_call=(options["option_type"] == "C").to_numpy(),
        quantity=options["quantity"].to_numpy(dtype=float),
        multiplier=options["multiplier"].to_numpy(dtype=float),
        option_close=option_close,
        realized_vol=options["underlying_symbol"].map(realized).astype(float).to_numpy(),
        default_vol=settings.SIGMASIGHT_DEFAULT_VOLATILITY,
        dividend_yield=options["underlying_symbol"]
        .map(yields)
        .astype(float)
        .fillna(0.0)
        .to_numpy(),
        american=(exercise_styles(options["underlying_symbol"]) == AMERICAN).to_numpy(),
    )
    return result, spot, float(rate), days


def greeks_compute(
    *, as_of: date | None = None, portfolio_ids: list[int] | None = None
) -> RunReport:
    """Greeks for every open option position on the session (each by its exercise style and
    dividend yield, `option_greeks`), stored per position."""
    as_of = session_for(as_of)
    book = positions_frame(portfolio_ids)
    options = book[book["is_option"]].reset_index(drop=True)
    report = RunReport(as_of=as_of, positions=len(options))
    if options.empty:
        return report
    stored_yields = dividend_yields(set(options["underlying_symbol"]), as_of)
    result, spot, rate, days = option_greeks(options, as_of, yields=stored_yields)
    report.without_yield = sorted(
        set(options.loc[result.american, "underlying_symbol"]) - set(stored_yields)
    )
    report.missing_prices = sorted(set(options.loc[~np.isfinite(spot), "underlying_symbol"]))
    sources, counts = np.unique(result.source.astype(str), return_counts=True)
    report.sources = dict(zip(sources.tolist(), counts.tolist(), strict=True))

    def num(values: np.ndarray) -> list:
        return [None if not np.isfinite(v) else float(v) for v in values]

    computed_at = db_timestamp(PositionGreeks, "computed_at", timezone.now())
    rows = records(
        GreeksRow,
        position_id=options["id"].tolist(),
        date=[as_of] * len(options),
        delta=num(result.delta),
        gamma=num(result.gamma),
        theta=num(result.theta),
        vega=num(result.vega),
        rho=num(result.rho),
        dollar_delta=num(result.dollar_delta),
        implied_volatility=num(result.implied_volatility),
        volatility=num(result.volatility),
        volatility_source=result.source.tolist(),
        underlying_price=num(spot),
        model_price=num(result.model_price),
        risk_free_rate=[float(rate)] * len(options),
        dividend_yield=result.dividend_yield.tolist(),
        exercise_style=np.where(result.american, "american", "european").tolist(),
        early_exercise_premium=num(result.early_exercise_premium),
        days_to_expiry=days.astype(int).tolist(),
        computed_at=[computed_at] * len(options),
    )
    with transaction.atomic():
        report.written = upsert_records(PositionGreeks, rows, unique=["position_id", "date"])
    logger.info(
        "greeks computed",
        extra={"as_of": as_of.isoformat(), "options": len(options), "sources": report.sources},
    )
    return report


def _money(value: float) -> Decimal:
    return Decimal(f"{value:.2f}")


def portfolio_summary(*, portfolio: Portfolio, as_of: date | None = None) -> dict:
    """The summary of API.md, computed from cached closes and stored Greeks for the session."""
    as_of = session_for(as_of)
    frame, quality = book_frame([portfolio.pk], as_of)
    exposures = aggregation.exposures(frame)
    greeks = aggregation.greeks(frame)
    equity = float(portfolio.cash) + exposures["net"]
    money_keys = ("gross", "net", "long", "short", "options", "stock", "notional")
    return {
        "portfolio": portfolio.pk,
        "as_of": as_of,
        "equity": _money(equity),
        "market_value": _money(float(frame["market_value"].sum())),
        "cash": portfolio.cash,
        "exposures": {k: (_money(v) if k in money_keys else v) for k, v in exposures.items()},
        "greeks": greeks,
        "delta_adjusted_exposure": _money(greeks["dollar_delta"]),
        "daily_pnl": _money(float(frame["daily_pnl"].sum())),
        "unrealized_pnl": _money(float(frame["unrealized_pnl"].sum())),
        "normalized_by": aggregation.return_base(equity, exposures["gross"]).normalized_by,
        "factor_betas": dict(
            PortfolioFactorExposure.objects.filter(portfolio=portfolio, date=as_of)
            .order_by("factor__display_order")
            .values_list("factor__name", "beta")
        ),
        "data_quality": {
            **data_quality_sources(set(frame["symbol"]) | set(frame["underlying_symbol"]), as_of),
            **quality,
        },
    }


def greeks_calculate(
    *, options: Sequence[Mapping[str, Any]], today: date | None = None
) -> list[dict[str, float | str | None]]:
    """Price and Greeks (black_scholes' units) of options given by their inputs
    (`OptionInputSerializer`): per share, or per position with `quantity` (x quantity x 100).
    Each option's `style` (default: its `underlying_symbol`'s exercise style, else european)
    picks the engine: Black-Scholes-Merton, or Bjerksund-Stensland 2002 for American exercise
    (marketdata.calculations.options), with its early exercise premium per share.

    Each option has `days_to_expiry` or an `expiration` (days counted from `today`, default the
    system date; years are days / 365), and `volatility` or an `option_price` to solve the implied
    volatility from. `rate` defaults to the cached 13-week T-bill yield (else the settings'
    default), `dividend_yield` to 0. A price no volatility explains is a ValidationFailed naming
    the options (by index) and nothing is returned. Rates, yields and volatilities are decimals."""
    today = today or date.today()
    quote = current_prices([RATE_SHORT]).get(RATE_SHORT)
    default_rate = float(quote.price) if quote else settings.SIGMASIGHT_DEFAULT_RATE
    spot = np.array([o["underlying_price"] for o in options])
    strike = np.array([o["strike"] for o in options])
    days = np.array(
        [
            o["days_to_expiry"] if "days_to_expiry" in o else (o["expiration"] - today).days
            for o in options
        ],
        dtype=float,
    )
    years = days / bs.DAYS_PER_YEAR
    rate = np.array([o.get("rate", default_rate) for o in options])
    dividend = np.array([o.get("dividend_yield", 0.0) for o in options])
    is_call = np.array([o["option_type"].upper().startswith("C") for o in options])
    styles = [
        o.get("style")
        or (exercise_style(o["underlying_symbol"]) if o.get("underlying_symbol") else "european")
        for o in options
    ]
    american = np.array([style == "american" for style in styles])
    vol = np.array([o.get("volatility", np.nan) for o in options])
    implied = np.full(len(options), np.nan)
    solve = np.array(["option_price" in o for o in options])
    if solve.any():
        prices = np.array([o["option_price"] for o in options if "option_price" in o])
        solved = option_engine.implied_volatility(
            prices,
            spot[solve],
            strike[solve],
            years[solve],
            rate[solve],
            is_call[solve],
            dividend[solve],
            american[solve],
        )
        implied[solve] = solved.sigma
        bad = np.flatnonzero(solve)[~np.isfinite(solved.sigma)]
        if len(bad):
            outside = ["Outside the no-arbitrage bounds for these inputs (or expired)."]
            raise ValidationFailed(
                "Some option prices have no implied volatility.",
                fields={"options": {str(i): {"option_price": outside} for i in bad}},
            )
        vol[solve] = solved.sigma
    result = option_engine.greeks(spot, strike, years, rate, vol, is_call, dividend, american)
    premium = option_engine.early_exercise_premium(
        spot, strike, years, rate, vol, is_call, dividend, american
    )
    scale = np.array([o.get("quantity", 1.0) * 100 if "quantity" in o else 1.0 for o in options])
    return [
        {
            "price": float(result.price[i]),
            "delta": float(result.delta[i] * scale[i]),
            "gamma": float(result.gamma[i] * scale[i]),
            "theta": float(result.theta[i] * scale[i]),
            "vega": float(result.vega[i] * scale[i]),
            "rho": float(result.rho[i] * scale[i]),
            "implied_volatility": None if np.isnan(implied[i]) else float(implied[i]),
            "style": styles[i],
            "early_exercise_premium": float(premium[i]),
        }
        for i in range(len(options))
    ]
