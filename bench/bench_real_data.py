"""Real data beside synthetic data, each measured beside its alternative in the same run.

1. Price provenance in the fetch path: 500 symbols x 300 sessions where half were imported as
   real rows (source "csv"), each with one hole. The fetch fills the synthetic-owned half and
   leaves the holes; beside it, the same request again (everything cached: the plan's queries,
   the provenance query included, and no provider call) and the synthetic-owned half alone (the
   provenance query finds nothing).
2. Returns of a book: `book_path` (today's book's value path over complete sessions) against the
   previous formula (P&L = closes.diff() on complete rows x units, divided by today's equity) on
   10,000 symbols x 253 sessions, and what each gives for an S&P 500-only book over 2008.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from datetime import UTC, date, datetime

import numpy as np
import pandas as pd

from bench import harness

SYMBOLS = 500
SESSIONS = 300
END = date(2026, 11, 20)
NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
PATH_SYMBOLS = 10_000
PATH_SESSIONS = 253
NAN_SHARE = 0.01
# Every NaN cell of a held symbol removes its session from the book, so NaNs spread at random
# over 10,000 symbols would leave no complete session: they fall on a few sessions instead.
NAN_SESSIONS = 10
REPEATS = 5
FETCH_REPEATS = 3
SEED = 20_261_120


def worker() -> dict:
    harness.worker_setup()
    from django.db import connection

    return {"vendor": connection.vendor, "fetch": _provenance(), "path": _path_timings()}


def _provenance() -> list[dict]:
    from marketdata.calendar import sessions_back
    from marketdata.models import DailyPrice
    from marketdata.providers.synthetic import SyntheticProvider
    from marketdata.services import prices_fetch_and_cache, securities_ensure
    from marketdata.writes import prices_upsert

    symbols = [f"P{i:04d}" for i in range(SYMBOLS)]
    real, synthetic = symbols[: SYMBOLS // 2], symbols[SYMBOLS // 2 :]
    sessions = sessions_back(END, SESSIONS)
    start = sessions[0]
    provider = SyntheticProvider()
    provider.daily_bars(["SPY"], END, END)  # build the calendar and factor panel once

    # The imported half: each series misses one session inside its range (never its first).
    ids = securities_ensure(real)
    holes = {s: sessions[1 + i % (SESSIONS - 2)] for i, s in enumerate(real)}
    bars = provider.daily_bars(real, start, END)
    bars = bars[bars["date"] != bars["symbol"].map(holes)]
    frame = bars[["symbol", "date", "open", "high", "low", "close", "volume"]].assign(
        security_id=bars["symbol"].map(ids)
    )
    imported = prices_upsert(frame, source="csv", fetched_at=NOW)
    assert imported == len(real) * (SESSIONS - 1), imported

    def fetch(wanted: list[str]) -> Callable[[], object]:
        return lambda: prices_fetch_and_cache(
            symbols=wanted, start=start, end=END, providers=[provider], now=NOW
        )

    def row(request: str, wanted: list[str], *, rows: int, refill: bool) -> dict:
        times = []
        for _ in range(FETCH_REPEATS):
            if refill:  # untimed: the synthetic rows go, the imported rows stay
                DailyPrice.objects.filter(source="synthetic").delete()
            seconds, report = harness.timed(fetch(wanted))
            times.append(seconds)
            assert report.rows_written == rows, report.rows_written
        expected = {s: [holes[s]] for s in wanted if s in holes}
        assert report.gaps == expected, report.gaps
        left = DailyPrice.objects.filter(
            security__symbol__in=list(expected), date__in=set(holes.values())
        ).values_list("security__symbol", "date")
        assert not {(s, d) for s, d in left if holes[s] == d}, "a hole was filled"
        return {
            "request": request,
            "symbols": len(wanted),
            "rows": report.rows_written,
            "seconds": statistics.median(times),
            "calls": report.provider_calls,
            "holes": len(expected),
        }

    filled = len(synthetic) * SESSIONS
    rows = [row("all 500, half real (fills the synthetic half)", symbols, rows=filled, refill=True)]
    rows.append(row("same again (all cached)", symbols, rows=0, refill=False))
    assert rows[-1]["calls"] == 0, rows
    rows.append(row("synthetic half only (no real symbol)", synthetic, rows=filled, refill=True))
    return rows


def _closes_frame() -> pd.DataFrame:
    """A seeded random walk of PATH_SYMBOLS closes over PATH_SESSIONS sessions, NAN_SHARE of the
    cells missing (on NAN_SESSIONS sessions)."""
    rng = np.random.default_rng(SEED)
    moves = rng.normal(0.0003, 0.02, size=(PATH_SESSIONS, PATH_SYMBOLS))
    closes = 50.0 * np.exp(np.cumsum(moves, axis=0))
    per_session = round(NAN_SHARE * PATH_SESSIONS * PATH_SYMBOLS / NAN_SESSIONS)
    for session in rng.choice(PATH_SESSIONS, NAN_SESSIONS, replace=False):
        closes[session, rng.choice(PATH_SYMBOLS, per_session, replace=False)] = np.nan
    index = pd.bdate_range("2025-11-20", periods=PATH_SESSIONS).date
    return pd.DataFrame(closes, index=index, columns=[f"S{i:05d}" for i in range(PATH_SYMBOLS)])


def previous_returns(units: pd.Series, closes: pd.DataFrame, cash: float) -> np.ndarray:
    """The formula book_path replaced: P&L of the complete rows divided by today's equity."""
    changes = closes[units.index].diff().iloc[1:]
    pnl = (changes[changes.notna().all(axis=1)] * units).sum(axis=1)
    today = cash + float(closes[units.index].ffill().iloc[-1] @ units)
    return pnl.to_numpy() / today


def _median_seconds(fn: Callable[[], object]) -> float:
    return statistics.median(harness.timed(fn)[0] for _ in range(REPEATS))


def _path_timings() -> dict:
    from analytics.calculations.book_path import book_path

    closes = _closes_frame()
    units = pd.Series(
        np.random.default_rng(SEED + 1).integers(1, 500, PATH_SYMBOLS), index=closes.columns
    )
    path = book_path(units, closes, 1e6)
    old = previous_returns(units, closes, 1e6)
    assert path.normalized_by == "equity" and len(old) < len(path.returns), len(old)
    return {
        "nan_cells": int(closes.isna().to_numpy().sum()),
        "returns_new": len(path.returns),
        "returns_old": len(old),
        "new_s": _median_seconds(lambda: book_path(units, closes, 1e6).returns),
        "old_s": _median_seconds(lambda: previous_returns(units, closes, 1e6)),
    }


def sp500_2008() -> list[list[object]]:
    """Beta and max drawdown of a book holding only the S&P 500, over 2008, by each formula."""
    from arch.data import sp500

    from analytics.calculations import risk
    from analytics.calculations.book_path import book_path

    close = sp500.load()["Close"].loc["2008"]
    closes = pd.DataFrame({"SPX": close.to_numpy()}, index=close.index.date)
    index_returns = closes["SPX"].pct_change().iloc[1:].to_numpy()
    units = pd.Series({"SPX": 1.0})
    new = book_path(units, closes, 0.0).returns
    old = previous_returns(units, closes, 0.0)
    return [
        [
            "book_path (new)",
            "value on the previous session",
            risk.beta(new, index_returns),
            f"{risk.max_drawdown(new):.1%}",
        ],
        [
            "previous formula",
            "value on 2008-12-31",
            risk.beta(old, index_returns),
            f"{risk.max_drawdown(old):.1%}",
        ],
    ]


def main() -> None:
    results = harness.run("bench.bench_real_data")
    fetch_rows, path_rows = [], []
    for r in results:
        if "skipped" in r:
            fetch_rows.append(harness.skipped_row(r, 7))
            path_rows.append(harness.skipped_row(r, 6))
            continue
        for f in r["fetch"]:
            fetch_rows.append(
                [
                    r["backend"],
                    f["request"],
                    f["symbols"],
                    f["rows"],
                    f["seconds"],
                    f["calls"],
                    f["holes"],
                ]
            )
        p = r["path"]
        path_rows.append(
            [
                r["backend"],
                p["nan_cells"],
                f"{p['returns_new']} / {p['returns_old']}",
                p["new_s"],
                p["old_s"],
                f"{p['new_s'] / p['old_s']:.2f}x",
            ]
        )
    harness.print_table(
        f"Price provenance: fetch-and-cache {SYMBOLS} symbols x {SESSIONS} sessions (synthetic "
        f"provider), {SYMBOLS // 2} imported as real rows (csv) with one hole each",
        [
            "backend",
            "request",
            "symbols",
            "rows written",
            f"seconds (median of {FETCH_REPEATS})",
            "provider calls",
            "holes left (still missing)",
        ],
        fetch_rows,
    )
    harness.print_table(
        f"Returns of a book: {PATH_SYMBOLS:,} symbols x {PATH_SESSIONS} sessions (seeded random "
        f"walk, {NAN_SHARE:.0%} of cells NaN on {NAN_SESSIONS} sessions), median of {REPEATS}",
        [
            "backend",
            "NaN cells",
            "returns new / previous",
            "book_path s",
            "previous formula s",
            "new / previous",
        ],
        path_rows,
    )
    harness.print_table(
        "S&P 500-only book over 2008 (arch's sp500 Close), beta against the index's returns",
        ["formula", "returns divide by", "beta", "max drawdown"],
        sp500_2008(),
    )


if __name__ == "__main__":
    harness.entry(worker, main)
