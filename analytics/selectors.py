"""The analytics read layer: the valued book frame and closes panels every calculation reads,
stored Greeks, in a fixed number of queries. A job's read cache (`ReadCache`) is an object the
job creates and passes down; nothing here keeps state between calls."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any, TypedDict

import numpy as np
import numpy.typing as npt
import pandas as pd
from django.conf import settings
from django.db.models import CharField, F, FloatField, Max, OuterRef, Subquery, Sum, Window
from django.db.models.functions import Cast, RowNumber

from analytics.calculations import aggregation
from analytics.calculations.valuation import value_positions
from analytics.models import PositionFactorExposure, PositionGreeks
from analytics.montecarlo import LegDraws
from marketdata import calendar
from marketdata.models import DailyPrice
from marketdata.services import current_prices, current_prices_pair
from portfolios.models import AppliedCorporateAction, Portfolio, Position
from sigmasight.db import fetch_frame

FIELDS = ("delta", "gamma", "theta", "vega", "rho", "dollar_delta")


class BookQuality(TypedDict):
    """How far a valued book frame can be trusted (`book_frame`)."""

    stale: bool  # a position's latest close is older than the session
    fallbacks: int  # options valued with a default or mock volatility
    missing_greeks: int  # options without stored Greeks for the session


def latest_position_greeks(positions: list[Position]) -> dict[int, dict[str, Any]]:
    """Latest stored Greeks per position (one query), for the positions API. Stocks need no
    query: delta is the quantity, the other Greeks zero."""
    option_ids = [p.id for p in positions if p.option_type]
    rows = (
        PositionGreeks.objects.filter(position_id__in=option_ids)
        .annotate(
            rank=Window(RowNumber(), partition_by=[F("position_id")], order_by=F("date").desc())
        )
        .filter(rank=1)
        .values(
            "position_id",
            "date",
            *FIELDS,
            "implied_volatility",
            "volatility",
            "volatility_source",
            "exercise_style",
            "dividend_yield",
            "early_exercise_premium",
        )
        if option_ids
        else []
    )
    result: dict[int, dict[str, Any]] = {
        r["position_id"]: {
            "as_of": r["date"],
            **{f: r[f] for f in FIELDS},
            "implied_volatility": r["implied_volatility"],
            "volatility": r["volatility"],
            "source": r["volatility_source"],
            "style": r["exercise_style"],
            "dividend_yield": r["dividend_yield"],
            "early_exercise_premium": r["early_exercise_premium"],
        }
        for r in rows
    }
    for p in positions:
        if not p.option_type:
            delta = float(p.quantity) * p.multiplier
            price = float(p.last_price) if p.last_price is not None else None
            result[p.id] = {
                "as_of": p.valued_as_of,
                "delta": delta,
                "gamma": 0.0,
                "theta": 0.0,
                "vega": 0.0,
                "rho": 0.0,
                "dollar_delta": delta * price if price is not None else None,
                "implied_volatility": None,
                "volatility": None,
                "source": "stock",
                "style": None,
                "dividend_yield": None,
                "early_exercise_premium": None,
            }
    return result


def latest_greeks_date(portfolio: Portfolio) -> date | None:
    latest: date | None = PositionGreeks.objects.filter(position__portfolio=portfolio).aggregate(
        d=Max("date")
    )["d"]
    return latest


# The book and the closes a calculation reads ---------------------------------------------------

BOOK_COLUMNS = [
    "id",
    "portfolio_id",
    "symbol",
    "underlying_symbol",
    "option_type",
    "strike",
    "expiration",
    "quantity",
    "entry_price",
    "multiplier",
]
FRAME_FLOATS = [
    "last_price",
    "quantity",
    "multiplier",
    "exposure",
    "market_value",
    "unrealized_pnl",
    "daily_pnl",
    "underlying_price",
    *aggregation.GREEKS,
    "dollar_delta",
    "implied_volatility",
    "volatility",
]


class SessionCloses:
    """The closes a worker process read for one session, kept across the chunks of that
    session's read-only jobs (a worker runs many chunks: without it each re-read the same year of
    the same underlyings and proxies). `current(session, generation)` gives the panels to reuse:
    emptied when the session or the closes' generation (bumped by every price write, anywhere)
    changes, or when no generation can be read (then nothing is reused). Bounded by `max_cells`
    (sessions x symbols summed over spans): past it, the panels are dropped and read again."""

    def __init__(self, max_cells: int | None = None) -> None:
        self._max_cells = max_cells  # None: the setting SIGMASIGHT_WORKER_CLOSES_MAX_CELLS
        self.key: tuple[date, int] | None = None
        self.panels: dict[tuple[date, int], pd.DataFrame] = {}

    @property
    def max_cells(self) -> int:
        if self._max_cells is not None:
            return self._max_cells
        return int(settings.SIGMASIGHT_WORKER_CLOSES_MAX_CELLS)

    def current(self, session: date, generation: int | None) -> SessionCloses | None:
        if generation is None or self.max_cells <= 0:
            self.key, self.panels = None, {}
            return None
        if self.key != (session, generation):
            self.key, self.panels = (session, generation), {}
        return self

    def cells(self) -> int:
        return sum(panel.size for panel in self.panels.values())

    def bound(self) -> None:
        if self.cells() > self.max_cells:
            self.panels.clear()


class ReadCache:
    """A job's read cache: the valued book frames and closes panels read for a session, each read
    once and shared by whoever the job passes this object to. The batch creates one per chunk of a
    job that writes no prices or Greeks (its functions ask for the same book and series several
    times), or one per job when a single process runs all its chunks (the chunks hold the same
    underlyings and factor proxies); a what-if session creates one per request and seeds it with
    the session's frozen history. Readers get copies. Not shared across threads or sessions.
    `legs` keeps the Monte Carlo revaluations of distinct option legs for whoever the cache is
    shared with (a worker process passes its own, kept across its chunks). The session's stored
    factor exposures of a chunk's positions are read once for the jobs after the factor job
    (market risk, its scenarios, stress): the factor job forgets them when it writes."""

    def __init__(self, closes: SessionCloses | None = None, legs: LegDraws | None = None) -> None:
        self.legs = legs if legs is not None else LegDraws()
        self._books: dict[tuple[tuple[int, ...], date], tuple[pd.DataFrame, BookQuality]] = {}
        self._factor_rows: dict[tuple[tuple[int, ...], date], pd.DataFrame] = {}
        # The closes read so far: this cache's own, or a worker process's for its session
        # (`SessionCloses`, shared by the read caches of that session's chunks).
        self._shared = closes
        self._closes: dict[tuple[date, int], pd.DataFrame] = (
            closes.panels if closes is not None else {}
        )

    def book(self, portfolio_ids: list[int], as_of: date) -> tuple[pd.DataFrame, BookQuality]:
        key = (tuple(sorted(portfolio_ids)), as_of)
        if key not in self._books:
            self._books[key] = _book_frame(portfolio_ids, as_of)
        frame, quality = self._books[key]
        return frame.copy(), quality.copy()

    def factor_rows(self, position_ids: list[int], as_of: date) -> pd.DataFrame:
        """`session_factor_rows` of the positions, read once (shared: do not modify it)."""
        key = (tuple(sorted(position_ids)), as_of)
        if key not in self._factor_rows:
            self._factor_rows[key] = session_factor_rows(position_ids, as_of)
        return self._factor_rows[key]

    def factors_changed(self) -> None:
        """Factor exposures were written: the ones read before are stale."""
        self._factor_rows.clear()

    def closes(self, symbols: list[str], as_of: date, sessions: int) -> pd.DataFrame:
        """Closes of `symbols` over the span, querying only the symbols not read yet for it."""
        have = self._closes.get((as_of, sessions))
        missing = symbols if have is None else [s for s in symbols if s not in have.columns]
        if missing:
            fresh = _read_closes(missing, as_of, sessions)
            have = fresh if have is None else pd.concat([have, fresh], axis=1)
            self._closes[(as_of, sessions)] = have
            if self._shared is not None:
                self._shared.bound()
        assert have is not None
        return have[symbols].copy()

    def closes_known(self, as_of: date, sessions: int) -> pd.DataFrame | None:
        """Every close read so far for that span (sessions x symbols), or None."""
        return self._closes.get((as_of, sessions))

    def closes_remember(self, panel: pd.DataFrame, as_of: date, sessions: int) -> None:
        """Closes known without a read (a what-if session's frozen history): later reads of the
        span query only other symbols."""
        have = self._closes.get((as_of, sessions))
        if have is not None:
            panel = pd.concat(
                [have, panel[[c for c in panel.columns if c not in have.columns]]], axis=1
            )
        self._closes[(as_of, sessions)] = panel


def positions_frame(
    portfolio_ids: list[int] | None, *, dividends_on: date | None = None
) -> pd.DataFrame:
    """Open positions as a frame, unvalued (one query); every portfolio for None. With
    `dividends_on`, a `dividend_cash` column: the dividend each position received (negative:
    paid, when short) on that ex-date (`AppliedCorporateAction.cash`), in the same query."""
    queryset = Position.objects.filter(closed_at__isnull=True)
    if portfolio_ids is not None:
        queryset = queryset.filter(portfolio_id__in=portfolio_ids)
    columns = list(BOOK_COLUMNS)
    if dividends_on is not None:
        queryset = queryset.annotate(
            dividend_cash=Subquery(
                AppliedCorporateAction.objects.filter(
                    position_id=OuterRef("pk"), ex_date=dividends_on
                )
                .values("position_id")
                .annotate(total=Sum("cash"))
                .values("total")
            )
        )
        columns.append("dividend_cash")
    frame = pd.DataFrame.from_records(
        list(queryset.order_by("id").values_list(*columns)), columns=columns
    )
    if dividends_on is not None:
        frame["dividend_cash"] = (
            pd.to_numeric(frame["dividend_cash"], errors="coerce").astype(float).fillna(0.0)
        )
    for column in ("strike", "quantity", "entry_price", "multiplier"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
    frame["is_option"] = frame["option_type"] != ""
    return frame


def latest_closes(symbols: list[str], as_of: date) -> tuple[dict[str, float], dict[str, bool]]:
    """Latest close on or before `as_of` per symbol, and whether it is stale."""
    quotes = current_prices(symbols, as_of=as_of) if symbols else {}
    return (
        {s: float(q.price) for s, q in quotes.items()},
        {s: q.stale for s, q in quotes.items()},
    )


def book_frame(
    portfolio_ids: list[int], as_of: date, *, reads: ReadCache | None = None
) -> tuple[pd.DataFrame, BookQuality]:
    """Open positions of the portfolios valued at `as_of` from cached closes, with their stored
    Greeks for that session, ready to aggregate, and its data quality. Four queries whatever the
    size of the book; none when `reads` already holds it."""
    if reads is not None:
        return reads.book(portfolio_ids, as_of)
    return _book_frame(portfolio_ids, as_of)


def _empty_frame() -> pd.DataFrame:
    """A valued book frame with no rows: every column a full one has (so code written for a
    book, e.g. selecting the options by `option_type`, works on an empty book unchanged)."""
    columns = {name: pd.Series(dtype=float) for name in FRAME_FLOATS}
    columns.update(
        id=pd.Series(dtype="int64"),
        portfolio_id=pd.Series(dtype="int64"),
        symbol=pd.Series(dtype=object),
        underlying_symbol=pd.Series(dtype=object),
        option_type=pd.Series(dtype=object),
        expiration=pd.Series(dtype=object),
        entry_price=pd.Series(dtype=float),
        days_to_expiry=pd.Series(dtype=float),
        risk_free_rate=pd.Series(dtype=float),
        dividend_yield=pd.Series(dtype=float),
        exercise_style=pd.Series(dtype=object),
        early_exercise_premium=pd.Series(dtype=float),
        strike=pd.Series(dtype=float),
        is_option=pd.Series(dtype=bool),
        volatility_source=pd.Series(dtype=object),
    )
    return pd.DataFrame(columns)


def _book_frame(portfolio_ids: list[int], as_of: date) -> tuple[pd.DataFrame, BookQuality]:
    book = positions_frame(portfolio_ids, dividends_on=as_of)
    if book.empty:
        return _empty_frame(), {"stale": False, "fallbacks": 0, "missing_greeks": 0}
    symbols = sorted(set(book["symbol"]) | set(book["underlying_symbol"]))
    today, before = current_prices_pair(
        symbols, as_of=as_of, previous=calendar.previous_trading_day(as_of)
    )
    price = {s: float(q.price) for s, q in today.items()}
    stale = {s: q.stale for s, q in today.items()}
    previous = {s: float(q.price) for s, q in before.items()}
    last = book["symbol"].map(price).astype(float).to_numpy()
    valuation = value_positions(
        quantity=book["quantity"],
        price=last,
        previous_price=book["symbol"].map(previous).astype(float).to_numpy(),
        entry_price=book["entry_price"],
        multiplier=book["multiplier"],
    )
    stored_columns = [
        *aggregation.GREEKS,
        "dollar_delta",
        "implied_volatility",
        "volatility",
        "volatility_source",
        "days_to_expiry",
        "risk_free_rate",
        "dividend_yield",
        "exercise_style",
        "early_exercise_premium",
    ]
    stored = pd.DataFrame.from_records(
        list(
            # By the open positions' ids: the (position, date) key answers it, whatever the
            # table's history (a join through the portfolio scans the session's rows).
            PositionGreeks.objects.filter(
                position_id__in=book["id"].tolist(), date=as_of
            ).values_list("position_id", *stored_columns)
        ),
        columns=["id", *stored_columns],
    )
    for column in stored_columns:
        if column not in ("volatility_source", "exercise_style"):
            # A column of nulls only (no implied volatility solved today) is still numbers.
            stored[column] = pd.to_numeric(stored[column]).astype(float)
    frame = book.assign(
        last_price=last,
        market_value=valuation.market_value,
        exposure=valuation.exposure,
        unrealized_pnl=valuation.unrealized_pnl,
        # A dividend of the ex-date (cash received or paid) is part of the day's P&L: the
        # close drops by it while the cash rises by it.
        daily_pnl=valuation.daily_pnl + book.pop("dividend_cash").to_numpy(),
        underlying_price=book["underlying_symbol"].map(price).astype(float),
    ).merge(stored, on="id", how="left")
    stock_greeks(frame)
    quality: BookQuality = {
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


def closes_panel(
    symbols: Sequence[str], as_of: date, sessions: int, *, reads: ReadCache | None = None
) -> pd.DataFrame:
    """Closes (sessions x symbols) over the last `sessions` NYSE sessions to `as_of` (one query;
    with `reads`, only symbols it has not read yet for that span are queried). A symbol asked
    twice is one column."""
    wanted = list(dict.fromkeys(symbols))
    if not wanted:
        return pd.DataFrame(index=calendar.sessions_back(as_of, sessions), dtype=float)
    if reads is not None:
        return reads.closes(wanted, as_of, sessions)
    return _read_closes(wanted, as_of, sessions)


def _read_closes(symbols: list[str], as_of: date, sessions: int) -> pd.DataFrame:
    days = calendar.sessions_back(as_of, sessions)
    frame = fetch_frame(
        DailyPrice.objects.filter(
            security__symbol__in=list(symbols), date__gte=days[0], date__lte=as_of
        ).values_list(
            # As text: SQLite's driver would parse every row's date (hundreds of thousands).
            Cast("date", CharField()),
            "security__symbol",
            Cast("close", FloatField()),
        ),
        ["date", "symbol", "close"],
        text=["date", "symbol"],
    )
    if frame.empty:
        return pd.DataFrame(index=days, columns=list(symbols), dtype=float)
    wide = frame.pivot(index="date", columns="symbol", values="close")
    # ISO strings (cast in SQL): key the few hundred sessions, not every row.
    wide.index = [date.fromisoformat(d) for d in wide.index]
    return wide.reindex(index=days, columns=list(symbols)).astype(float)


def session_factor_rows(
    position_ids: list[int], as_of: date, factors: list[str] | None = None
) -> pd.DataFrame:
    """The factor exposures stored for the positions on the session (of `factors`, default
    all): columns position_id, factor, dollar, beta (one read by position ids, which both
    databases answer from the (date, position, factor) key whatever the table's history, with
    no per-row converters)."""
    queryset = PositionFactorExposure.objects.filter(position_id__in=position_ids, date=as_of)
    if factors is not None:
        queryset = queryset.filter(factor__name__in=factors)
    return fetch_frame(
        queryset.values_list("position_id", "factor__name", "dollar_exposure", "beta"),
        ["position_id", "factor", "dollar", "beta"],
        text=["factor"],
    )


def stored_factor_rows(
    position_ids: list[int], as_of: date, factors: list[str], *, reads: ReadCache | None = None
) -> pd.DataFrame:
    """`session_factor_rows` of `factors` (with `reads`, from its rows of the session)."""
    if reads is None:
        return session_factor_rows(position_ids, as_of, factors)
    rows = reads.factor_rows(position_ids, as_of)
    return rows[rows["factor"].isin(factors)].reset_index(drop=True)


def stored_betas(
    position_ids: list[int], as_of: date, factors: list[str], *, reads: ReadCache | None = None
) -> npt.NDArray[np.float64]:
    """(positions, factors) stored betas for the session, in the given orders; 0 where none
    (with `reads`, from its rows of the session)."""
    rows = (
        reads.factor_rows(position_ids, as_of)
        if reads is not None
        else session_factor_rows(position_ids, as_of)
    )
    return betas_of(rows, position_ids, factors)


def betas_of(
    table: pd.DataFrame, position_ids: list[int], factors: list[str]
) -> npt.NDArray[np.float64]:
    """(positions, factors) betas of stored rows (position_id, factor, beta), 0 where none."""
    if table.empty:
        return np.zeros((len(position_ids), len(factors)))
    pivot = table.pivot(index="position_id", columns="factor", values="beta")
    betas: npt.NDArray[np.float64] = (
        pivot.reindex(index=position_ids, columns=factors).fillna(0.0).to_numpy(dtype=float)
    )
    return betas
