"""P&L attribution (DESIGN.md, "P&L attribution of a day"; the maths in
analytics.calculations.attribution): the batch job's service (`attribution_compute`), the
history rebuild (`generate_historical_attribution`) and the read the API serves
(`attribution_series`).

The batch attributes session t with what is stored for the previous session t-1 (the positions'
dollar factor exposures and the options' Greeks) and for t (the options' Greeks: the volatility
and rate changes). A position without exposures stored for t-1 (new today) has all its P&L
specific (`positions_without_yesterday`); an option without Greeks on either session has no
Greeks explain (its Greek columns null, `options_without_greeks`). Rows are upserted on
(portfolio or position, date), and the session's rows of positions closed since, or of a
portfolio whose book is now empty, are deleted: re-running a session writes the same rows.
Rows older than SIGMASIGHT_SNAPSHOT_RETENTION_DAYS before the session are dropped, as the
snapshots are (which bounds what the API reads).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd
from django.conf import settings
from django.db import connection, models, transaction
from django.db.models import Max, Sum
from django.utils import timezone

from analytics.calculations import factors as fx
from analytics.calculations.attribution import (
    GREEK_PARTS,
    FactorAttribution,
    GreeksExplain,
    daily_factor_moves,
    factor_attribution,
    greeks_explain,
)
from analytics.models import (
    FactorDefinition,
    PortfolioAttribution,
    PositionAttribution,
    PositionFactorExposure,
    PositionGreeks,
)
from analytics.rows import PortfolioAttributionRow, PositionAttributionRow
from analytics.selectors import ReadCache, book_frame, closes_panel, positions_frame
from analytics.snapshots import historical_marks
from marketdata import calendar
from marketdata.providers.base import RATE_10Y, RATE_SHORT
from marketdata.selectors import dividend_yields
from portfolios.models import AppliedCorporateAction, Portfolio
from sigmasight.api.caching import results_changed
from sigmasight.db import db_timestamp, fetch_frame, records, upsert_records
from sigmasight.exceptions import ValidationFailed

logger = logging.getLogger("sigmasight.batch")
BY = ("factor", "position", "underlying", "greek")
SPECIFIC = "specific"  # the factor view's part for what the factors leave
OTHER = "other"  # the P&L the other parts of a view do not hold (the greek view: stocks)
DEFAULT_SESSIONS = 90  # the API's range without `start`
GREEK_COLUMNS = ["delta", "gamma", "theta", "vega", "rho", "volatility", "risk_free_rate"]


@dataclass
class AttributionReport:
    as_of: date
    positions: int = 0
    without_yesterday: int = 0  # no stored exposures on the previous session: all specific
    options_explained: int = 0
    options_without_greeks: int = 0  # Greeks missing on either session: no explain
    unvalued: int = 0  # no price on either session: no P&L
    written: int = 0
    without_move: list[str] = field(default_factory=list)  # factors without a move on t


@dataclass(frozen=True)
class FactorSet:
    """The factors of a set of stored exposures (in display order), as `factor_moves` needs
    them."""

    names: list[str]
    proxies: dict[str, str]  # name -> proxy series
    market: str | None
    styles: list[str]
    macros: list[str]

    @classmethod
    def of(cls, names: Sequence[str]) -> FactorSet:
        rows = (
            FactorDefinition.objects.filter(name__in=list(names))
            .exclude(etf_proxy="")
            .order_by("display_order", "id")
            .values_list("name", "etf_proxy", "factor_type")
        )
        kinds = {name: (proxy, kind) for name, proxy, kind in rows}
        known = list(kinds)  # in the factors' display order
        return cls(
            names=known,
            proxies={n: kinds[n][0] for n in known},
            market=fx.MARKET if fx.MARKET in kinds else None,
            styles=[n for n in known if kinds[n][1] == "style" and n != fx.MARKET],
            macros=[n for n in known if kinds[n][1] == "macro"],
        )

    def raw_moves(self, end: date, sessions: int, reads: ReadCache | None) -> pd.DataFrame:
        """Raw daily moves over the `sessions` closes to `end` (one fewer row): returns, and
        the yield's change for the rate series (as the factor job regressed on them)."""
        closes = closes_panel(list(self.proxies.values()), end, sessions, reads=reads)
        moves = {
            name: closes[proxy].diff()
            if proxy == RATE_10Y
            else closes[proxy] / closes[proxy].shift(1) - 1.0
            for name, proxy in self.proxies.items()
        }
        return pd.DataFrame(moves, index=closes.index, columns=self.names).iloc[1:]

    def moves_of(self, raw: pd.DataFrame, window: int) -> pd.DataFrame:
        """`daily_factor_moves` of `raw` in this set's definitions."""
        return daily_factor_moves(
            raw,
            window,
            market=self.market,
            styles=self.styles,
            macros=self.macros,
            residual_styles=not settings.SIGMASIGHT_RAW_STYLE_FACTORS,
        )


def _dollar_exposures(position_ids: list[int], day: date) -> pd.DataFrame:
    """Stored dollar factor exposures of the positions on `day`: position id x factor name (NaN
    where none), one read by position ids (the (date, position) index answers it)."""
    table = fetch_frame(
        PositionFactorExposure.objects.filter(position_id__in=position_ids, date=day).values_list(
            "position_id", "factor__name", "dollar_exposure"
        ),
        ["id", "factor", "dollar"],
        text=["factor"],
    )
    if table.empty:
        return pd.DataFrame(index=pd.Index([], dtype="int64"), dtype=float)
    return table.pivot(index="id", columns="factor", values="dollar").astype(float)


def _stored_greeks(position_ids: list[int], day: date) -> pd.DataFrame:
    """The options' stored Greeks, volatility, rate and underlying price on `day` by position
    (read by position ids: the (position, date) key answers it)."""
    rows = PositionGreeks.objects.filter(position_id__in=position_ids, date=day).values_list(
        "position_id", *GREEK_COLUMNS, "underlying_price"
    )
    columns = ["id", *GREEK_COLUMNS, "underlying_price"]
    table = pd.DataFrame.from_records(list(rows), columns=columns).set_index("id")
    return table.apply(pd.to_numeric).astype(float)


def _json(model: type[models.Model], name: str, value: dict) -> object:
    column = model._meta.get_field(name)
    assert isinstance(column, models.Field)  # a JSON column, not a relation
    return column.get_db_prep_save(value, connection)


def _number(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


@dataclass(frozen=True)
class DayBook:
    """One session's attribution of a set of positions, ready to become rows."""

    day: date
    position_ids: np.ndarray  # (P,)
    portfolio_ids: np.ndarray  # (P,) each position's portfolio
    factors: list[str]
    result: FactorAttribution  # arrays over (P,)
    has_exposure: np.ndarray  # (P,) bool: exposures stored for the previous session
    explain: GreeksExplain | None  # None: not computed (the history)


def _rows(
    book: DayBook, basis: str, stamp: object, extra: dict[int, float] | None = None
) -> tuple[list[PositionAttributionRow], list[PortfolioAttributionRow]]:
    """The position rows and each portfolio's row (the sums; `extra`: P&L of a portfolio's
    day no held position carries, e.g. a closed lot's dividend, counted specific)."""
    r, n = book.result, len(book.position_ids)
    by_factor = [
        _json(PositionAttribution, "by_factor", dict(zip(book.factors, row.tolist(), strict=True)))
        if has
        else _json(PositionAttribution, "by_factor", {})
        for row, has in zip(r.by_factor, book.has_exposure, strict=True)
    ]
    greek_columns: dict[str, list[float | None]] = {
        f"{name}_pnl": (
            [_number(v) for v in book.explain.parts()[name]] if book.explain else [None] * n
        )
        for name in GREEK_PARTS
    }
    positions = records(
        PositionAttributionRow,
        position_id=book.position_ids.tolist(),
        date=[book.day] * n,
        total_pnl=r.total.tolist(),
        factor_pnl=r.factor.tolist(),
        specific_pnl=r.specific.tolist(),
        by_factor=by_factor,
        **greek_columns,
    )
    sums = pd.DataFrame(r.by_factor, columns=book.factors).assign(total=r.total, factor=r.factor)
    if book.explain is not None:
        sums = sums.assign(**book.explain.parts())
    grouped = sums.groupby(book.portfolio_ids).sum()  # NaN (no explain) counts 0
    portfolios = []
    for portfolio_id, row in grouped.iterrows():
        total = float(row["total"]) + (extra or {}).get(int(portfolio_id), 0.0)
        portfolios.append(
            PortfolioAttributionRow(
                portfolio_id=int(portfolio_id),
                date=book.day,
                total_pnl=total,
                factor_pnl=float(row["factor"]),
                specific_pnl=total - float(row["factor"]),
                by_factor=_json(
                    PortfolioAttribution, "by_factor", {k: float(row[k]) for k in book.factors}
                ),
                greeks=_json(
                    PortfolioAttribution,
                    "greeks",
                    {k: float(row[k]) for k in GREEK_PARTS} if book.explain else {},
                ),
                basis=basis,
                computed_at=stamp,
            )
        )
    return positions, portfolios


def _write(
    positions: list[PositionAttributionRow], portfolios: list[PortfolioAttributionRow]
) -> int:
    return upsert_records(
        PositionAttribution, positions, unique=["position_id", "date"]
    ) + upsert_records(PortfolioAttribution, portfolios, unique=["portfolio_id", "date"])


def attribution_compute(
    *, as_of: date | None = None, portfolio_ids: list[int], reads: ReadCache | None = None
) -> AttributionReport:
    """Attribute the portfolios' P&L of the session (module docstring) and store it."""
    as_of = calendar.session_for(as_of)
    previous = calendar.previous_trading_day(as_of)
    frame, _ = book_frame(portfolio_ids, as_of, reads=reads)
    report = AttributionReport(as_of=as_of, positions=len(frame))
    positions: list[PositionAttributionRow] = []
    portfolios: list[PortfolioAttributionRow] = []
    if not frame.empty:
        ids = frame["id"].to_numpy(dtype=np.int64)
        stored = _dollar_exposures(ids.tolist(), previous)
        factors = FactorSet.of(list(stored.columns))
        window = settings.SIGMASIGHT_FACTOR_WINDOW
        raw = factors.raw_moves(as_of, window + 2, reads)
        day_moves = factors.moves_of(raw, window)
        moves = (day_moves.iloc[-1] if len(day_moves) else pd.Series(dtype=float)).reindex(
            factors.names
        )
        held = stored.reindex(index=ids, columns=factors.names)
        has_exposure = held.notna().any(axis=1).to_numpy()
        total = frame["daily_pnl"].to_numpy(dtype=float)
        result = factor_attribution(total, held.to_numpy(dtype=float), moves.to_numpy())
        explain = _options_explain(frame, previous, as_of, result.total)
        report.without_yesterday = int((~has_exposure).sum())
        report.unvalued = int(np.isnan(total).sum())
        options = frame["is_option"].to_numpy(dtype=bool)
        explained = np.isfinite(explain.residual)
        report.options_explained = int(explained.sum())
        report.options_without_greeks = int((options & ~explained).sum())
        report.without_move = [n for n in factors.names if not np.isfinite(moves[n])]
        book = DayBook(
            day=as_of,
            position_ids=ids,
            portfolio_ids=frame["portfolio_id"].to_numpy(dtype=np.int64),
            factors=factors.names,
            result=result,
            has_exposure=has_exposure,
            explain=explain,
        )
        stamp = db_timestamp(PortfolioAttribution, "computed_at", timezone.now())
        positions, portfolios = _rows(book, PortfolioAttribution.Basis.STORED, stamp)
    with transaction.atomic():
        # What an earlier run of the session wrote for what is no longer held.
        PositionAttribution.objects.filter(
            date=as_of, position__portfolio_id__in=portfolio_ids, position__closed_at__isnull=False
        ).delete()
        PortfolioAttribution.objects.filter(date=as_of, portfolio_id__in=portfolio_ids).exclude(
            portfolio_id__in=[row.portfolio_id for row in portfolios]
        ).delete()
        report.written = _write(positions, portfolios)
        # The snapshots' retention: the attribution is read beside them, over the same year.
        cutoff = as_of - timedelta(days=settings.SIGMASIGHT_SNAPSHOT_RETENTION_DAYS)
        PositionAttribution.objects.filter(
            position__portfolio_id__in=portfolio_ids, date__lt=cutoff
        ).delete()
        PortfolioAttribution.objects.filter(
            portfolio_id__in=portfolio_ids, date__lt=cutoff
        ).delete()
    logger.info("P&L attributed", extra={"as_of": as_of.isoformat(), "positions": report.positions})
    return report


def _options_explain(
    frame: pd.DataFrame, previous: date, as_of: date, total: np.ndarray
) -> GreeksExplain:
    """The options' Greeks explain from both sessions' stored Greeks (NaN rows elsewhere)."""
    ids = frame["id"].to_numpy(dtype=np.int64)
    options = frame["is_option"].to_numpy(dtype=bool)
    held = ids[options].tolist()
    before = _stored_greeks(held, previous).reindex(ids)
    after = _stored_greeks(held, as_of).reindex(ids)

    def column(table: pd.DataFrame, name: str) -> np.ndarray:
        return np.where(options, table[name].to_numpy(dtype=float), np.nan)

    return greeks_explain(
        total=total,
        delta=column(before, "delta"),
        gamma=column(before, "gamma"),
        vega=column(before, "vega"),
        theta=column(before, "theta"),
        rho=column(before, "rho"),
        spot_change=column(after, "underlying_price") - column(before, "underlying_price"),
        vol_change=column(after, "volatility") - column(before, "volatility"),
        rate_change=column(after, "risk_free_rate") - column(before, "risk_free_rate"),
        days=float((as_of - previous).days),
    )


def generate_historical_attribution(
    *, portfolio: Portfolio, days_back: int = 90, end: date | None = None
) -> int:
    """Rebuild the portfolio's attribution on the last `days_back` NYSE sessions to `end`
    (default: the last completed session) on the pro-forma history the snapshots rebuild
    (`generate_historical_snapshots`): today's positions revalued at every session by
    `historical_marks`, each ex-date's dividends in its P&L. The exposures of every session
    are the latest stored dollar exposures on or before `end` (a stated simplification: the
    book of today, its exposures of today), the factor moves each session's own. So each
    day's total is the rebuilt snapshot's daily P&L (before its rounding to cents) and the
    cumulative attribution is their cumulative P&L. No Greeks explain: the rebuild keeps no
    volatility per session (the Greek columns null, `greeks` {}). Overwrites the range's rows
    (the batch's of `end` too, as the snapshots do); one transaction. Returns rows written."""
    if days_back < 1:
        raise ValueError(f"days_back must be at least 1, got {days_back}")
    end = calendar.session_for(end)
    book = positions_frame([portfolio.pk])
    if book.empty:
        return 0
    vol_window = settings.SIGMASIGHT_REALIZED_VOL_WINDOW
    symbols = [*sorted(set(book["symbol"]) | set(book["underlying_symbol"])), RATE_SHORT]
    closes = closes_panel(symbols, end, days_back + vol_window + 1)
    sessions = list(closes.index[vol_window + 1 :])
    yields = dividend_yields(set(book["underlying_symbol"]), end)
    # One revaluation per position, each over every session at once: the marks sum a book's
    # positions, and each position's own P&L path is what is attributed.
    pnl = np.column_stack(
        [
            historical_marks(
                book.iloc[[i]].reset_index(drop=True),
                closes,
                vol_window,
                default_rate=settings.SIGMASIGHT_DEFAULT_RATE,
                default_vol=settings.SIGMASIGHT_DEFAULT_VOLATILITY,
                dividend_yields=yields,
            ).daily_pnl
            for i in range(len(book))
        ]
    )
    held_dividends, other_dividends = _dividends(portfolio, book, sessions)
    pnl += held_dividends
    latest = PositionFactorExposure.objects.filter(
        position__portfolio=portfolio, date__lte=end
    ).aggregate(day=Max("date"))["day"]
    stored = (
        _dollar_exposures(book["id"].tolist(), latest)
        if latest
        else pd.DataFrame(index=pd.Index([], dtype="int64"))
    )
    factors = FactorSet.of(list(stored.columns))
    window = settings.SIGMASIGHT_FACTOR_WINDOW
    moves = factors.moves_of(factors.raw_moves(end, days_back + window + 1, None), window)
    moves = moves.reindex(index=sessions, columns=factors.names)
    ids = book["id"].to_numpy(dtype=np.int64)
    held = stored.reindex(index=ids, columns=factors.names)
    has_exposure = held.notna().any(axis=1).to_numpy()
    result = factor_attribution(pnl, held.to_numpy(dtype=float), moves.to_numpy(dtype=float))
    stamp = db_timestamp(PortfolioAttribution, "computed_at", timezone.now())
    positions: list[PositionAttributionRow] = []
    portfolios: list[PortfolioAttributionRow] = []
    for s, day in enumerate(sessions):
        day_book = DayBook(
            day=day,
            position_ids=ids,
            portfolio_ids=np.full(len(ids), portfolio.pk, dtype=np.int64),
            factors=factors.names,
            result=FactorAttribution(
                total=result.total[s],
                by_factor=result.by_factor[s],
                factor=result.factor[s],
                specific=result.specific[s],
            ),
            has_exposure=has_exposure,
            explain=None,
        )
        extra = {portfolio.pk: other_dividends.get(day, 0.0)}
        day_positions, day_portfolios = _rows(
            day_book, PortfolioAttribution.Basis.PRO_FORMA, stamp, extra
        )
        positions += day_positions
        portfolios += day_portfolios
    with transaction.atomic():
        written = _write(positions, portfolios)
        results_changed([portfolio.pk])
    return written


def _dividends(
    portfolio: Portfolio, book: pd.DataFrame, sessions: list[date]
) -> tuple[np.ndarray, dict[date, float]]:
    """The dividend cash of each session (`AppliedCorporateAction.cash`, what the rebuilt
    snapshots add): (sessions x the book's positions), and per session what lots no longer
    held received (the portfolio's, specific). One query."""
    rows = (
        AppliedCorporateAction.objects.filter(
            portfolio=portfolio, ex_date__in=sessions, cash__isnull=False
        )
        .values("position_id", "ex_date")
        .annotate(total=Sum("cash"))
        .values_list("position_id", "ex_date", "total")
    )
    column = {int(pk): i for i, pk in enumerate(book["id"])}
    row = {day: s for s, day in enumerate(sessions)}
    held = np.zeros((len(sessions), len(book)))
    other: dict[date, float] = {}
    for position_id, day, cash in rows:
        if position_id in column:
            held[row[day], column[position_id]] += float(cash)
        else:
            other[day] = other.get(day, 0.0) + float(cash)
    return held, other


# The API's read ---------------------------------------------------------------------------


def _labels(rows: list[tuple[Any, ...]]) -> dict[int, str]:
    """A position's key in the position view: its symbol, or "symbol #id" when several
    positions of the range share the symbol."""
    symbols = {pk: symbol for _, pk, symbol, _, _ in rows}
    count = Counter(symbols.values())
    return {
        pk: symbol if count[symbol] == 1 else f"{symbol} #{pk}" for pk, symbol in symbols.items()
    }


def attribution_series(
    *, portfolio: Portfolio, start: date | None = None, end: date | None = None, by: str = "factor"
) -> dict[str, Any]:
    """The stored attribution of the portfolio's sessions in [start, end] (default: the latest
    stored session and the DEFAULT_SESSIONS sessions to it; the job keeps the snapshots' year),
    each day split `by` factor (+ specific), position, underlying or greek (the options' parts
    + other: the stocks' P&L and the options' without an explain); a part `other` holds what
    the view's keys leave, so every day's parts sum to its total P&L. Three queries at most."""
    if by not in BY:
        choices = ", ".join(BY)
        raise ValidationFailed(
            f"by must be one of {choices}.", fields={"by": [f"one of {choices}"]}
        )
    stored = PortfolioAttribution.objects.filter(portfolio=portfolio)
    if end is None:
        end = stored.aggregate(day=Max("date"))["day"]
    if start is None and end is not None:
        start = calendar.sessions_back(end, DEFAULT_SESSIONS)[0]
    days = (
        list(
            stored.filter(date__gte=start, date__lte=end)
            .order_by("date")
            .values(
                "date", "basis", "total_pnl", "factor_pnl", "specific_pnl", "by_factor", "greeks"
            )
        )
        if end is not None
        else []
    )
    by_position: dict[date, dict[str, float]] = {}
    if by in ("position", "underlying") and days:
        rows = list(
            PositionAttribution.objects.filter(
                position__portfolio=portfolio, date__gte=start, date__lte=end
            )
            .order_by("date", "position_id")
            .values_list(
                "date",
                "position_id",
                "position__symbol",
                "position__underlying_symbol",
                "total_pnl",
            )
        )
        labels = _labels(rows)
        for day, pk, _, underlying, pnl in rows:
            key = labels[pk] if by == "position" else underlying
            parts = by_position.setdefault(day, {})
            parts[key] = parts.get(key, 0.0) + pnl
    series: list[dict[str, Any]] = []
    for row in days:
        if by == "factor":
            parts = {**row["by_factor"], SPECIFIC: row["specific_pnl"]}
        elif by == "greek":
            parts = dict(row["greeks"])
        else:
            parts = by_position.get(row["date"], {})
        rest = row["total_pnl"] - sum(parts.values())
        if by == "greek" or abs(rest) > 1e-6:
            parts[OTHER] = rest
        series.append(
            {
                "date": row["date"],
                "basis": row["basis"],
                "total_pnl": row["total_pnl"],
                "factor_pnl": row["factor_pnl"],
                "specific_pnl": row["specific_pnl"],
                "parts": parts,
            }
        )
    totals: dict[str, float] = {}
    for point in series:
        for key, value in point["parts"].items():
            totals[key] = totals.get(key, 0.0) + value
    return {
        "portfolio": portfolio.pk,
        "by": by,
        "start": start,
        "end": end,
        "series": series,
        "totals": totals,
        "total_pnl": sum(d["total_pnl"] for d in series),
        "factor_pnl": sum(d["factor_pnl"] for d in series),
        "specific_pnl": sum(d["specific_pnl"] for d in series),
    }
