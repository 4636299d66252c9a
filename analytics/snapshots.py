"""Portfolio snapshots: the book at the close of each NYSE session, and the series the exposures
and performance endpoints read from them.

Two writers, each one bulk upsert on (portfolio, date), so a re-run overwrites instead of adding:
- `snapshots_take` records a session as the batch values it (`book_frame`: cached closes, the
  options' own closes and their stored Greeks);
- `generate_historical_snapshots` rebuilds a range from stored closes only: the current
  positions at every session, options revalued by Black-Scholes at the underlying's close
  (historical option closes are often missing), sessions x positions matrices at once.

Units: money in the portfolio's currency, rounded to cents; equity = cash + net exposure; daily
P&L = sum over positions of (close - previous session's close) x quantity x multiplier, gains
positive (a position without a price on either session contributes nothing and is counted in
`data_quality.unvalued`); daily return = daily P&L / the previous snapshot's equity, or, with no
previous snapshot, / (equity - daily P&L), the same book's equity at the previous close; the
cumulative P&L is the running sum of the rounded daily P&L.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from django.conf import settings
from django.db import connection, models, transaction
from django.db.models import F, QuerySet, Sum, Window
from django.db.models.functions import RowNumber

from analytics.calculations import aggregation, risk
from analytics.calculations.greeks import position_greeks
from analytics.models import PortfolioFactorExposure, PortfolioSnapshot
from analytics.provenance import provenance_load
from analytics.risk_metrics import risk_free_daily
from analytics.rows import SnapshotRow
from analytics.selectors import ReadCache, book_frame, closes_panel, positions_frame
from marketdata import calendar
from marketdata.providers.base import RATE_SHORT
from marketdata.selectors import dividend_yields
from marketdata.services import current_prices
from marketdata.symbols import AMERICAN, exercise_styles
from portfolios.models import AppliedCorporateAction, Portfolio
from sigmasight.api.caching import results_changed
from sigmasight.db import upsert_records

GREEK_KEYS = [*aggregation.GREEKS, "dollar_delta"]
FALLBACK_SOURCES = ["default", "mock"]
METRICS = ["total_return", "annualized_return", "volatility", "sharpe", "sortino", "max_drawdown"]
ZERO = Decimal("0.00")


@dataclass(frozen=True)
class SessionBook:
    """One portfolio on one session in plain numbers (currency floats), before it is a row."""

    portfolio_id: int
    day: date
    cash: Decimal
    market_value: float
    long: float
    short: float
    daily_pnl: float
    greeks: dict[str, float]
    position_count: int
    data_quality: dict


class Carried(NamedTuple):
    """What a portfolio's next snapshot chains from: its last snapshot's equity and cumulative
    P&L."""

    equity: Decimal
    cumulative_pnl: Decimal


def _money(value: float) -> Decimal:
    # The sums skip unvalued positions, so a non-finite total is a bug, never a zero.
    if not math.isfinite(value):
        raise ValueError(f"non-finite amount {value!r}")
    return Decimal(f"{value:.2f}")


def _ratio(numerator: Decimal, denominator: Decimal) -> float:
    """A return; 0.0 rather than NaN or infinity when there is no base to divide by."""
    return float(numerator) / float(denominator) if denominator else 0.0


def _json(name: str, value: dict) -> object:
    field = PortfolioSnapshot._meta.get_field(name)
    assert isinstance(field, models.Field)  # a JSON column, not a relation
    return field.get_db_prep_save(value, connection)


def _rows(
    books: list[SessionBook],
    betas: dict[tuple[int, date], dict[str, float]],
    previous: dict[int, Carried],
) -> list[SnapshotRow]:
    """The books' rows. Returns and cumulative P&L chain through `books` in the order given
    (ascending dates within a portfolio), starting from `previous`: what a portfolio's last
    earlier snapshot carries, when it has one."""
    chain = dict(previous)
    rows = []
    for book in books:
        # Gross and net from the rounded legs, so gross = long - short and net = long + short
        # hold to the cent in every row.
        long, short = _money(book.long), _money(book.short)
        net = long + short
        equity = book.cash + net
        pnl = _money(book.daily_pnl)
        base, cumulative = chain.get(
            book.portfolio_id, Carried(equity=equity - pnl, cumulative_pnl=ZERO)
        )
        cumulative += pnl
        chain[book.portfolio_id] = Carried(equity=equity, cumulative_pnl=cumulative)
        greeks = {k: float(book.greeks[k]) for k in GREEK_KEYS}
        rows.append(
            SnapshotRow(
                portfolio_id=book.portfolio_id,
                date=book.day,
                equity=equity,
                market_value=_money(book.market_value),
                cash=book.cash,
                daily_pnl=pnl,
                daily_return=_ratio(pnl, base),
                cumulative_pnl=cumulative,
                gross_exposure=long - short,
                net_exposure=net,
                long_exposure=long,
                short_exposure=short,
                delta_adjusted_exposure=_money(greeks["dollar_delta"]),
                greeks=_json("greeks", greeks),
                factor_betas=_json("factor_betas", betas.get((book.portfolio_id, book.day), {})),
                position_count=book.position_count,
                data_quality=_json("data_quality", book.data_quality),
            )
        )
    return rows


def _write(rows: list[SnapshotRow]) -> int:
    return upsert_records(PortfolioSnapshot, rows, unique=["portfolio_id", "date"])


def _factor_betas(
    portfolio_ids: list[int], start: date, end: date
) -> dict[tuple[int, date], dict[str, float]]:
    """Stored portfolio factor betas per (portfolio, session): {factor name: beta}."""
    rows = (
        PortfolioFactorExposure.objects.filter(
            portfolio_id__in=portfolio_ids, date__gte=start, date__lte=end
        )
        .order_by("portfolio_id", "date", "factor_id")
        .values_list("portfolio_id", "date", "factor__name", "beta")
    )
    betas: dict[tuple[int, date], dict[str, float]] = {}
    for portfolio_id, day, name, beta in rows:
        betas.setdefault((portfolio_id, day), {})[name] = beta
    return betas


def _previous_snapshots(portfolio_ids: list[int], before: date) -> dict[int, Carried]:
    """What each portfolio's latest snapshot before `before` carries to the next."""
    rows = (
        PortfolioSnapshot.objects.filter(portfolio_id__in=portfolio_ids, date__lt=before)
        .annotate(
            rank=Window(RowNumber(), partition_by=[F("portfolio_id")], order_by=F("date").desc())
        )
        .filter(rank=1)
        .values_list("portfolio_id", "equity", "cumulative_pnl")
    )
    return {
        portfolio_id: Carried(equity=equity, cumulative_pnl=cumulative)
        for portfolio_id, equity, cumulative in rows
    }


def _symbols(book: pd.DataFrame) -> set[str]:
    """The series a book's valuation rests on: its symbols and their underlyings."""
    return set(book["symbol"]) | set(book["underlying_symbol"])


def _session_books(frame: pd.DataFrame, cash: dict[int, Decimal], as_of: date) -> list[SessionBook]:
    """Each portfolio's totals from a `book_frame` (with its `stale` column) on one session."""
    groups = {int(pid): group for pid, group in frame.groupby("portfolio_id")}
    provenance = provenance_load(_symbols(frame), as_of)
    books = []
    for portfolio_id in sorted(cash):
        book = groups.get(portfolio_id, frame.iloc[:0])
        exposures = aggregation.exposures(book)
        books.append(
            SessionBook(
                portfolio_id=portfolio_id,
                day=as_of,
                cash=cash[portfolio_id],
                market_value=float(book["market_value"].sum()),
                long=exposures["long"],
                short=exposures["short"],
                daily_pnl=float(book["daily_pnl"].sum()),
                greeks=aggregation.greeks(book),
                position_count=len(book),
                data_quality={
                    **provenance.for_book(_symbols(book)),
                    "valuation": "stored",
                    "stale": bool(book["stale"].any()),
                    "fallbacks": int(book["volatility_source"].isin(FALLBACK_SOURCES).sum()),
                    "missing_greeks": int(
                        (book["is_option"] & book["volatility_source"].isna()).sum()
                    ),
                    "unvalued": exposures["unvalued"],
                },
            )
        )
    return books


def snapshots_take(*, as_of: date, portfolio_ids: list[int], reads: ReadCache | None = None) -> int:
    """Snapshot each portfolio at the close of `as_of` (0 and nothing written on a day NYSE is
    closed), then drop these portfolios' snapshots older than
    SIGMASIGHT_SNAPSHOT_RETENTION_DAYS calendar days before `as_of`. Returns rows written."""
    if not calendar.is_trading_day(as_of):
        return 0
    cash = dict(
        Portfolio.objects.filter(pk__in=portfolio_ids).order_by("pk").values_list("pk", "cash")
    )
    ids = sorted(cash)
    frame, _ = book_frame(ids, as_of, reads=reads)
    quotes = current_prices(sorted(set(frame["symbol"])), as_of=as_of) if len(frame) else {}
    fresh = [symbol for symbol, quote in quotes.items() if not quote.stale]
    frame = frame.assign(stale=~frame["symbol"].isin(fresh))
    rows = _rows(
        _session_books(frame, cash, as_of),
        _factor_betas(ids, as_of, as_of),
        _previous_snapshots(ids, as_of),
    )
    cutoff = as_of - timedelta(days=settings.SIGMASIGHT_SNAPSHOT_RETENTION_DAYS)
    with transaction.atomic():
        written = _write(rows)
        PortfolioSnapshot.objects.filter(portfolio_id__in=ids, date__lt=cutoff).delete()
    return written


def _rolling_realized_vol(closes: pd.DataFrame, window: int) -> pd.DataFrame:
    """`realized_volatility` at every row at once: annualized (x sqrt 252) sample stdev of the
    last `window` daily simple returns up to and including that row, NaN with fewer than
    max(2, window // 2) returns (missing closes make missing returns, not zero ones)."""
    returns = closes / closes.shift(1) - 1.0
    minimum = max(2, window // 2)
    return returns.rolling(window, min_periods=minimum).std(ddof=1) * math.sqrt(risk.TRADING_DAYS)


@dataclass(frozen=True)
class HistoricalMarks:
    """Per-session totals of a book revalued over a range, each an array over the sessions."""

    market_value: np.ndarray
    long: np.ndarray
    short: np.ndarray
    daily_pnl: np.ndarray
    greeks: dict[str, np.ndarray]
    unvalued: np.ndarray
    stale: np.ndarray
    fallbacks: np.ndarray


def historical_marks(
    book: pd.DataFrame,
    closes: pd.DataFrame,
    window: int,
    *,
    default_rate: float,
    default_vol: float,
    dividend_yields: Mapping[str, float] | None = None,
) -> HistoricalMarks:
    """Revalue `book` (a `positions_frame` frame) at the sessions of a range; arrays over the range.

    `closes` holds the stored closes (sessions x symbols, NaN where missing) of the positions,
    their underlyings and RATE_SHORT: `window` + 1 sessions before the range (the realized
    volatility's returns, the last of them the close the first day's P&L starts from), then
    the range. A missing close is carried forward from the last one. Stocks are marked at their
    close; options by their contract's exercise style (`position_greeks`: Bjerksund-Stensland
    2002 for American, Black-Scholes-Merton for European) at the underlying's close, with the
    underlying's `dividend_yields` (0 for one absent), its realized volatility up to that
    session (default_vol when too short) and the session's short rate (default_rate when none);
    their Greeks come from the same engine (mock Greeks without an underlying price). The first range session's P&L is against the
    session before it.
    """
    # Row `window` is the session before the range: marked too, for the first day's P&L.
    filled = closes.ffill().to_numpy(dtype=float)[window:]
    observed = closes.to_numpy(dtype=float)[window:]
    days = np.array(closes.index[window:].tolist(), dtype="datetime64[D]")
    own = closes.columns.get_indexer(book["symbol"])
    underlying = closes.columns.get_indexer(book["underlying_symbol"])
    if (own < 0).any() or (underlying < 0).any():
        raise ValueError("closes must have a column for every symbol and underlying of the book")
    is_option = book["is_option"].to_numpy(dtype=bool)
    rate = filled[:, closes.columns.get_loc(RATE_SHORT)]
    rate = np.where(np.isfinite(rate), rate, default_rate)
    units = (book["quantity"] * book["multiplier"]).to_numpy(dtype=float)

    price = filled[:, own]
    spot = filled[:, underlying]
    shape = price.shape
    greeks = {name: np.zeros(shape) for name in aggregation.GREEKS}
    greeks["delta"] = np.broadcast_to(units, shape).copy()
    greeks["dollar_delta"] = greeks["delta"] * spot
    fallbacks = np.zeros(shape[0], dtype=int)
    if is_option.any():
        options = book[is_option]
        sessions, count = shape[0], len(options)
        vol = _rolling_realized_vol(closes, window).to_numpy(dtype=float)[window:]
        expiry = np.array(options["expiration"].tolist(), dtype="datetime64[D]")
        to_expiry = (expiry[None, :] - days[:, None]).astype(int)
        result = position_greeks(
            underlying_price=spot[:, is_option].ravel(),
            strike=np.tile(options["strike"].to_numpy(dtype=float), sessions),
            days=to_expiry.ravel(),
            rate=np.repeat(rate, count),
            is_call=np.tile((options["option_type"] == "C").to_numpy(), sessions),
            quantity=np.tile(options["quantity"].to_numpy(dtype=float), sessions),
            multiplier=np.tile(options["multiplier"].to_numpy(dtype=float), sessions),
            option_close=np.full(sessions * count, np.nan),
            realized_vol=vol[:, underlying[is_option]].ravel(),
            default_vol=default_vol,
            dividend_yield=np.tile(
                options["underlying_symbol"]
                .map(dividend_yields or {})
                .astype(float)
                .fillna(0.0)
                .to_numpy(),
                sessions,
            ),
            american=np.tile(
                (exercise_styles(options["underlying_symbol"]) == AMERICAN).to_numpy(), sessions
            ),
        )
        price[:, is_option] = result.model_price.reshape(sessions, count)
        for name in [*aggregation.GREEKS, "dollar_delta"]:
            greeks[name][:, is_option] = getattr(result, name).reshape(sessions, count)
        source = result.source.astype(str).reshape(sessions, count)
        fallbacks = np.isin(source, FALLBACK_SOURCES).sum(axis=1)

    exposure = price * units
    used = np.where(is_option, underlying, own)
    stale = (np.isnan(observed[:, used]) & np.isfinite(filled[:, used])).any(axis=1)
    current = exposure[1:]
    return HistoricalMarks(
        market_value=np.nansum(np.abs(current), axis=1),  # |qty| x price x multiplier
        long=np.nansum(np.where(current > 0, current, 0.0), axis=1),
        short=np.nansum(np.where(current < 0, current, 0.0), axis=1),
        daily_pnl=np.nansum(np.diff(exposure, axis=0), axis=1),
        greeks={name: np.nansum(values[1:], axis=1) for name, values in greeks.items()},
        unvalued=np.isnan(current).sum(axis=1),
        stale=stale[1:],
        fallbacks=fallbacks[1:],
    )


def generate_historical_snapshots(
    *, portfolio: Portfolio, days_back: int = 90, end: date | None = None
) -> int:
    """Rebuild the portfolio's snapshots on the last `days_back` NYSE sessions ending at `end`
    (default: the last completed session) from stored closes, valuing the current positions at
    each session (`historical_marks`). Returns and cumulative P&L chain from the range's first
    session (cumulative P&L starts at that day's P&L). One bulk upsert; returns rows written."""
    if days_back < 1:
        raise ValueError(f"days_back must be at least 1, got {days_back}")
    end = calendar.session_for(end)
    window = settings.SIGMASIGHT_REALIZED_VOL_WINDOW
    book = positions_frame([portfolio.pk])
    symbols = [*sorted(set(book["symbol"]) | set(book["underlying_symbol"])), RATE_SHORT]
    # The previous close of the first day, and `window` returns before it for its volatility.
    closes = closes_panel(symbols, end, days_back + window + 1)
    marks = historical_marks(
        book,
        closes,
        window,
        default_rate=settings.SIGMASIGHT_DEFAULT_RATE,
        default_vol=settings.SIGMASIGHT_DEFAULT_VOLATILITY,
        # The yields known at the range's end (a stated simplification: a yield moves slowly).
        dividend_yields=dividend_yields(set(book["underlying_symbol"]), end),
    )
    sessions = list(closes.index[window + 1 :])
    dividends = _dividends_by_day(portfolio.pk, sessions[0] if sessions else end)
    paid_after = _paid_after(dividends, sessions)
    sources = provenance_load(_symbols(book), end).for_book(_symbols(book))
    books = [
        SessionBook(
            portfolio_id=portfolio.pk,
            day=day,
            # Today's cash less the dividends credited after that session (the only cash flow
            # the rebuild knows), and each ex-date's dividends in its P&L.
            cash=portfolio.cash - paid_after[i],
            market_value=float(marks.market_value[i]),
            long=float(marks.long[i]),
            short=float(marks.short[i]),
            daily_pnl=float(marks.daily_pnl[i]) + float(dividends.get(day, 0)),
            greeks={name: float(values[i]) for name, values in marks.greeks.items()},
            position_count=len(book),
            data_quality={
                **sources,
                "valuation": "historical",
                "stale": bool(marks.stale[i]),
                "fallbacks": int(marks.fallbacks[i]),
                "missing_greeks": 0,
                "unvalued": int(marks.unvalued[i]),
            },
        )
        for i, day in enumerate(sessions)
    ]
    rows = _rows(books, _factor_betas([portfolio.pk], sessions[0], sessions[-1]), {})
    with transaction.atomic():
        written = _write(rows)
        results_changed([portfolio.pk])  # its performance reads show these snapshots
    return written


def _dividends_by_day(portfolio_id: int, start: date) -> dict[date, Decimal]:
    """Dividend cash the portfolio received (negative: paid on shorts) per ex-date from `start`
    (`AppliedCorporateAction.cash`), one query."""
    rows = (
        AppliedCorporateAction.objects.filter(
            portfolio_id=portfolio_id, ex_date__gte=start, cash__isnull=False
        )
        .values("ex_date")
        .annotate(total=Sum("cash"))
        .values_list("ex_date", "total")
    )
    return {day: Decimal(total) for day, total in rows}


def _paid_after(dividends: Mapping[date, Decimal], sessions: list[date]) -> list[Decimal]:
    """Per session, the dividend cash credited on later ex-dates."""
    return [sum((v for d, v in dividends.items() if d > day), Decimal(0)) for day in sessions]


def snapshot_series(
    portfolio: Portfolio, start: date | None = None, end: date | None = None
) -> QuerySet[PortfolioSnapshot]:
    """The portfolio's snapshots in [start, end] (either open), oldest first. Bounded by the
    retention setting, so never longer than a year or so of sessions."""
    queryset = PortfolioSnapshot.objects.filter(portfolio=portfolio)
    if start is not None:
        queryset = queryset.filter(date__gte=start)
    if end is not None:
        queryset = queryset.filter(date__lte=end)
    return queryset.order_by("date")


def exposure_series(
    *, portfolio: Portfolio, start: date | None = None, end: date | None = None
) -> list[Mapping[str, Any]]:
    return list(
        snapshot_series(portfolio, start, end).values(
            "date",
            gross=F("gross_exposure"),
            net=F("net_exposure"),
            long=F("long_exposure"),
            short=F("short_exposure"),
            delta_adjusted=F("delta_adjusted_exposure"),
        )
    )


def _statistic(fn: Callable[..., float], *args: object) -> float | None:
    """A risk statistic, or None when it is undefined: too few returns (`InsufficientHistory`
    is a ValueError) or a NaN result (no dispersion, no losing day)."""
    try:
        value = fn(*args)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _annualized(total: float, sessions: int) -> float | None:
    """Geometric annualization over `sessions` daily returns: (1 + total)^(252 / n) - 1."""
    if sessions < risk.MIN_RETURN_OBSERVATIONS or total <= -1.0:
        return None
    try:
        value = (1.0 + total) ** (risk.TRADING_DAYS / sessions) - 1.0
    except OverflowError:
        return None
    return value if math.isfinite(value) else None


def portfolio_performance(
    *, portfolio: Portfolio, start: date | None = None, end: date | None = None
) -> dict:
    """Equity, P&L and returns per snapshot in [start, end], with the cumulative return
    compounded from the daily returns (each snapshot's return counts, the first one's too) and
    the statistics of `analytics.calculations.risk` on those returns (252-day annualization,
    risk-free from the cached short rate of the last session), None where undefined."""
    rows = list(
        snapshot_series(portfolio, start, end).values("date", "equity", "daily_pnl", "daily_return")
    )
    returns = np.array([row["daily_return"] for row in rows], dtype=float)
    cumulative = np.cumprod(1.0 + returns) - 1.0
    series = [{**row, "cumulative_return": float(cumulative[i])} for i, row in enumerate(rows)]
    if not rows:
        return {"series": [], **dict.fromkeys(METRICS)}
    total = float(cumulative[-1])
    rate = risk_free_daily(rows[-1]["date"])
    return {
        "series": series,
        "total_return": total,
        "annualized_return": _annualized(total, len(returns)),
        "volatility": _statistic(risk.annualized_volatility, returns),
        "sharpe": _statistic(risk.sharpe, returns, rate),
        "sortino": _statistic(risk.sortino, returns, rate),
        "max_drawdown": _statistic(risk.max_drawdown, returns),
    }
