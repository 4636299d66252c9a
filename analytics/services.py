"""Analytics writes: value the book and compute option Greeks for a session, in a fixed number
of queries per call, on whole arrays, with bulk writes. Re-running a session overwrites it."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

import numpy as np
import pandas as pd
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from analytics.calculations import aggregation
from analytics.calculations.greeks import (
    PositionGreeksArrays,
    position_greeks,
    realized_volatility,
)
from analytics.calculations.valuation import value_positions
from analytics.models import PortfolioFactorExposure, PositionGreeks
from analytics.provenance import data_quality_sources
from marketdata import calendar
from marketdata.models import DailyPrice
from marketdata.providers.base import RATE_SHORT
from marketdata.services import current_prices
from portfolios.models import Portfolio, Position
from sigmasight.db import db_timestamp, upsert_rows
from sigmasight.exceptions import InsufficientHistory, ValidationFailed

logger = logging.getLogger("sigmasight.batch")

BOOK_COLUMNS = [
    "id", "portfolio_id", "symbol", "underlying_symbol", "option_type", "strike", "expiration",
    "quantity", "entry_price", "multiplier",
]  # fmt: skip


@dataclass
class RunReport:
    as_of: date
    positions: int = 0
    written: int = 0
    missing_prices: list[str] = field(default_factory=list)
    sources: dict[str, int] = field(default_factory=dict)


def session_for(as_of: date | None) -> date:
    if as_of is None:
        return calendar.last_completed_session()
    if not calendar.FIRST_YEAR <= as_of.year <= calendar.LAST_YEAR:
        message = f"as_of must be in {calendar.FIRST_YEAR}-{calendar.LAST_YEAR}."
        raise ValidationFailed(message, fields={"as_of": [message]})
    if calendar.is_trading_day(as_of):
        return as_of
    if as_of.year == calendar.FIRST_YEAR and not calendar.trading_days(calendar.FIRST_DAY, as_of):
        # Before the calendar's first session (1990-01-01 is a holiday): no session, no data.
        message = f"No trading session on or before {as_of.isoformat()}."
        raise InsufficientHistory(message, fields={"as_of": [message]})
    return calendar.previous_trading_day(as_of)


def load_book(portfolio_ids: list[int] | None) -> pd.DataFrame:
    """Open positions as a frame (one query)."""
    queryset = Position.objects.filter(closed_at__isnull=True)
    if portfolio_ids is not None:
        queryset = queryset.filter(portfolio_id__in=portfolio_ids)
    frame = pd.DataFrame.from_records(
        list(queryset.order_by("id").values_list(*BOOK_COLUMNS)), columns=BOOK_COLUMNS
    )
    for column in ("strike", "quantity", "entry_price", "multiplier"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
    frame["is_option"] = frame["option_type"] != ""
    return frame


def _closes(symbols: list[str], as_of: date) -> tuple[dict[str, float], dict[str, bool]]:
    """Latest close on or before `as_of` per symbol, and whether it is stale."""
    quotes = current_prices(symbols, as_of=as_of) if symbols else {}
    return (
        {s: float(q.price) for s, q in quotes.items()},
        {s: q.stale for s, q in quotes.items()},
    )


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
    rows = list(
        zip(
            [None if not np.isfinite(v) else Decimal(f"{v:.6f}") for v in last],
            money(frame["market_value"]), money(frame["exposure"]), money(frame["unrealized_pnl"]),
            money(frame["daily_pnl"]), [as_of if np.isfinite(v) else None for v in last],
            [stamp] * len(frame), frame["id"].tolist(), strict=True,
        )
    )  # fmt: skip
    quote = connection.ops.quote_name
    columns = [
        "last_price",
        "market_value",
        "exposure",
        "unrealized_pnl",
        "daily_pnl",
        "valued_as_of",
        "updated_at",
    ]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.executemany(
            f"UPDATE {quote(Position._meta.db_table)} SET "
            + ", ".join(f"{quote(c)} = %s" for c in columns)
            + f" WHERE {quote('id')} = %s",
            rows,
        )
    report.written = len(rows)
    return report


def _underlying_history(underlyings: list[str], as_of: date, window: int) -> np.ndarray:
    """Realized volatility per underlying from cached closes (one query)."""
    start = calendar.sessions_back(as_of, window + 1)[0]
    rows = DailyPrice.objects.filter(
        security__symbol__in=underlyings, date__gte=start, date__lte=as_of
    ).values_list("security__symbol", "date", "close")
    frame = pd.DataFrame.from_records(list(rows), columns=["symbol", "date", "close"])
    if frame.empty:
        return np.full(len(underlyings), np.nan)
    closes = frame.pivot(index="date", columns="symbol", values="close").astype(float).sort_index()
    closes = closes.reindex(columns=underlyings)
    return realized_volatility(closes.to_numpy(), window)


def option_greeks(
    options: pd.DataFrame, as_of: date, *, option_close: np.ndarray | None = None
) -> tuple[PositionGreeksArrays, np.ndarray, float, np.ndarray]:
    """Black-Scholes Greeks of option rows (symbol, underlying_symbol, option_type, strike,
    expiration, quantity, multiplier) on the session, from cached closes: implied vol from
    `option_close` (default: each contract's own close), else the underlying's realized vol,
    else the default. Returns the Greeks, underlying prices, short rate and days to expiry."""
    underlyings = sorted(set(options["underlying_symbol"]))
    price, _ = _closes(sorted(set(options["symbol"])) + underlyings + [RATE_SHORT], as_of)
    rate = price.get(RATE_SHORT, settings.SIGMASIGHT_DEFAULT_RATE)
    realized = dict(
        zip(
            underlyings,
            _underlying_history(underlyings, as_of, settings.SIGMASIGHT_REALIZED_VOL_WINDOW),
            strict=True,
        )
    )
    spot = options["underlying_symbol"].map(price).astype(float).to_numpy()
    days = np.array([(e - as_of).days for e in options["expiration"]], dtype=float)
    if option_close is None:
        option_close = options["symbol"].map(price).astype(float).to_numpy()
    result = position_greeks(
        underlying_price=spot, strike=options["strike"].to_numpy(dtype=float), days=days,
        rate=rate, is_call=(options["option_type"] == "C").to_numpy(),
        quantity=options["quantity"].to_numpy(dtype=float),
        multiplier=options["multiplier"].to_numpy(dtype=float), option_close=option_close,
        realized_vol=options["underlying_symbol"].map(realized).astype(float).to_numpy(),
        default_vol=settings.SIGMASIGHT_DEFAULT_VOLATILITY,
    )  # fmt: skip
    return result, spot, float(rate), days


def greeks_compute(
    *, as_of: date | None = None, portfolio_ids: list[int] | None = None
) -> RunReport:
    """Black-Scholes Greeks for every open option position on the session, stored per position."""
    as_of = session_for(as_of)
    book = load_book(portfolio_ids)
    options = book[book["is_option"]].reset_index(drop=True)
    report = RunReport(as_of=as_of, positions=len(options))
    if options.empty:
        return report
    result, spot, rate, days = option_greeks(options, as_of)
    report.missing_prices = sorted(set(options.loc[~np.isfinite(spot), "underlying_symbol"]))
    sources, counts = np.unique(result.source.astype(str), return_counts=True)
    report.sources = dict(zip(sources.tolist(), counts.tolist(), strict=True))

    def num(values: np.ndarray) -> list:
        return [None if not np.isfinite(v) else float(v) for v in values]

    computed_at = db_timestamp(PositionGreeks, "computed_at", timezone.now())
    rows = list(
        zip(
            options["id"].tolist(), [as_of] * len(options), num(result.delta), num(result.gamma),
            num(result.theta), num(result.vega), num(result.rho), num(result.dollar_delta),
            num(result.implied_volatility), num(result.volatility), result.source.tolist(),
            num(spot), num(result.model_price), [float(rate)] * len(options),
            days.astype(int).tolist(), [computed_at] * len(options), strict=True,
        )
    )  # fmt: skip
    with transaction.atomic():
        report.written = upsert_rows(
            PositionGreeks,
            ["position_id", "date", "delta", "gamma", "theta", "vega", "rho", "dollar_delta",
             "implied_volatility", "volatility", "volatility_source", "underlying_price",
             "model_price", "risk_free_rate", "days_to_expiry", "computed_at"],
            rows,
            unique=["position_id", "date"],
        )  # fmt: skip
    logger.info(
        "greeks computed",
        extra={"as_of": as_of.isoformat(), "options": len(options), "sources": report.sources},
    )
    return report


FRAME_FLOATS = [
    "last_price",
    "quantity", "multiplier", "exposure", "market_value", "unrealized_pnl", "daily_pnl",
    "underlying_price", *aggregation.GREEKS, "dollar_delta", "implied_volatility", "volatility",
]  # fmt: skip


def _empty_frame() -> pd.DataFrame:
    """A valued book frame with no rows: every column a full one has (so code written for a
    book, e.g. selecting the options by `option_type`, works on an empty book unchanged)."""
    columns = {name: pd.Series(dtype=float) for name in FRAME_FLOATS}
    columns.update(
        id=pd.Series(dtype="int64"), portfolio_id=pd.Series(dtype="int64"), symbol=pd.Series(dtype=object),
        underlying_symbol=pd.Series(dtype=object), option_type=pd.Series(dtype=object),
        expiration=pd.Series(dtype=object), entry_price=pd.Series(dtype=float),
        days_to_expiry=pd.Series(dtype=float), risk_free_rate=pd.Series(dtype=float),
        strike=pd.Series(dtype=float), is_option=pd.Series(dtype=bool),
        volatility_source=pd.Series(dtype=object),
    )  # fmt: skip
    return pd.DataFrame(columns)


_MEMO: ContextVar[dict | None] = ContextVar("analytics_memo", default=None)


@contextmanager
def read_memo() -> Iterator[None]:
    """Within the block, the book frame and closes panels read for a session are read once and
    shared: the batch opens one per chunk of a job that writes no prices or Greeks (its functions
    ask for the same book and series several times), or one per job when a single process runs
    all its chunks (the chunks hold the same underlyings and factor proxies). Callers get
    copies. Nested blocks share the outer one."""
    if _MEMO.get() is not None:  # already inside one (a job's chunks share the job's)
        yield
        return
    token = _MEMO.set({})
    try:
        yield
    finally:
        _MEMO.reset(token)


def memo() -> dict | None:
    return _MEMO.get()


def book_frame(portfolio_ids: list[int], as_of: date) -> tuple[pd.DataFrame, dict]:
    """Open positions of the portfolios valued at `as_of` from cached closes, with their stored
    Greeks for that session, ready to aggregate. Four queries whatever the size of the book."""
    shared = memo()
    if shared is None:
        return _book_frame(portfolio_ids, as_of)
    key = ("book", tuple(sorted(portfolio_ids)), as_of)
    if key not in shared:
        shared[key] = _book_frame(portfolio_ids, as_of)
    frame, quality = shared[key]
    return frame.copy(), dict(quality)


def _book_frame(portfolio_ids: list[int], as_of: date) -> tuple[pd.DataFrame, dict]:
    book = load_book(portfolio_ids)
    if book.empty:
        return _empty_frame(), {"stale": False, "fallbacks": 0, "missing_greeks": 0}
    symbols = sorted(set(book["symbol"]) | set(book["underlying_symbol"]))
    price, stale = _closes(symbols, as_of)
    previous, _ = _closes(symbols, calendar.previous_trading_day(as_of))
    last = book["symbol"].map(price).astype(float).to_numpy()
    valuation = value_positions(
        quantity=book["quantity"], price=last,
        previous_price=book["symbol"].map(previous).astype(float).to_numpy(),
        entry_price=book["entry_price"], multiplier=book["multiplier"],
    )  # fmt: skip
    stored_columns = [
        *aggregation.GREEKS, "dollar_delta", "implied_volatility", "volatility",
        "volatility_source", "days_to_expiry", "risk_free_rate",
    ]  # fmt: skip
    stored = pd.DataFrame.from_records(
        list(
            PositionGreeks.objects.filter(
                position__portfolio_id__in=portfolio_ids, date=as_of
            ).values_list("position_id", *stored_columns)
        ),
        columns=["id", *stored_columns],
    )
    frame = book.assign(
        last_price=last,
        market_value=valuation.market_value, exposure=valuation.exposure,
        unrealized_pnl=valuation.unrealized_pnl, daily_pnl=valuation.daily_pnl,
        underlying_price=book["underlying_symbol"].map(price).astype(float),
    ).merge(stored, on="id", how="left")  # fmt: skip
    stock_greeks(frame)
    quality = {
        "stale": any(stale.get(s, True) for s in set(book["symbol"])),
        "fallbacks": int(frame["volatility_source"].isin(["default", "mock"]).sum()),
        "missing_greeks": int((frame["is_option"] & frame["volatility_source"].isna()).sum()),
    }
    return frame, quality


def stock_greeks(frame: pd.DataFrame) -> None:
    """Fill the stock rows' Greeks in place (DESIGN.md): delta = quantity x multiplier (share
    equivalents), the other Greeks 0, dollar delta = delta x the stock's price."""
    stock = ~frame["is_option"]
    frame.loc[stock, "delta"] = frame.loc[stock, "quantity"] * frame.loc[stock, "multiplier"]
    for name in ("gamma", "theta", "vega", "rho"):
        frame.loc[stock, name] = 0.0
    frame.loc[stock, "dollar_delta"] = (
        frame.loc[stock, "delta"] * frame.loc[stock, "underlying_price"]
    )
    frame.loc[stock, "volatility_source"] = frame.loc[stock, "volatility_source"].fillna("stock")


def portfolio_frame(portfolio: Portfolio, as_of: date) -> tuple[pd.DataFrame, dict]:
    return book_frame([portfolio.pk], as_of)


def _money(value: float) -> Decimal:
    return Decimal(f"{value:.2f}")


def portfolio_summary(*, portfolio: Portfolio, as_of: date | None = None) -> dict:
    """The summary of API.md, computed from cached closes and stored Greeks for the session."""
    as_of = session_for(as_of)
    frame, quality = portfolio_frame(portfolio, as_of)
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
        "normalized_by": "equity" if equity > 0 else "gross",
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
