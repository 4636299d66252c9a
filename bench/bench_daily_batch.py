"""The whole daily chain (market data .. stress) on generated books (100 positions per portfolio,
40% options) with a year of synthetic prices already cached: seconds per job for one session at
1,000, 10,000 and 50,000 positions, on SQLite and PostgreSQL, in one process (the sequential path
of manage.py run_batch; workers run the same chunks in parallel). Each size is a new session, so
market data fetches that session's closes for every symbol, as on a real evening. The previous
session's Greeks and factor exposures are computed first (untimed), so the attribution job
explains the day with yesterday's exposures and Greeks as on a real evening. Targets: under
60 s for 10,000 positions; the attribution job under 10% of the rest of the evening."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import UTC, date, datetime

from bench import harness

SIZES = tuple(int(n) for n in os.environ.get("BENCH_SIZES", "1000,10000,50000").split(","))
SESSIONS = (date(2026, 11, 18), date(2026, 11, 19), date(2026, 11, 20))  # one per size
PER_PORTFOLIO = 100
AS_OF = date(2026, 11, 20)
NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
TARGET_S = 60.0
TARGET_ATTRIBUTION = 0.10  # the attribution job's seconds / the other jobs' seconds
TARGET_CONTRIBUTIONS_S = 0.3  # every measure's contributions of a 10,000-position book
EXTRA = (
    "risk with contributions",
    "risk without",
    "inside contributions",
)  # timed beside the chain, not in it


class Stopwatch:
    """The seconds spent inside the functions it wraps (`counted`), added up."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def counted(self, fn: Callable) -> Callable:
        def run(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - start

        return run


def without_positions(book_risk: Callable) -> Callable:
    """`book_risk` that never keeps the per-position Monte Carlo P&L (only contributions read
    it)."""
    return lambda inputs, portfolio_id, horizon_days, **_: book_risk(
        inputs, portfolio_id, horizon_days
    )


def worker() -> dict:
    harness.worker_setup()
    from unittest import mock

    from django.db import connection

    from analytics import batch, contributions, risk_metrics
    from analytics.contributions import book_contributions
    from analytics.contributions import risk_contributions_store as store
    from analytics.risk_metrics import book_risk, risk_metrics_compute
    from marketdata.calendar import previous_trading_day
    from marketdata.providers.synthetic import SyntheticProvider
    from portfolios.models import Portfolio
    from portfolios.services import positions_import_csv
    from sigmasight.accounts.models import User

    roots = [f"D{i:03d}" for i in range(300)]
    spot = {
        b.symbol: b.close for b in SyntheticProvider().daily_bars(roots, AS_OF, AS_OF).itertuples()
    }
    user = User.objects.create_user("bench@example.com", "a-long-bench-password")
    results = {}
    made = 0
    for size in SIZES:
        ids = []
        while made < size // PER_PORTFOLIO:
            portfolio = Portfolio.objects.create(owner=user, name=f"p{made}", cash=1_000_000)
            lines = ["symbol,quantity,entry_price,entry_date,option_type,strike,expiration"]
            for n in range(PER_PORTFOLIO):
                root = roots[(made * 31 + n) % len(roots)]
                if n % 5 < 2:  # 40% options
                    strike = round(spot[root] * (0.85 + 0.03 * (n % 10)), 0)
                    lines.append(
                        f"{root},{(-1) ** n * 3},5,2026-01-05,{'CP'[n % 2]},{strike},2027-03-19"
                    )
                else:
                    lines.append(f"{root},{(-1) ** (n // 7) * (40 + n)},50,2026-01-05,,,")
            positions_import_csv(portfolio=portfolio, raw=("\n".join(lines) + "\n").encode())
            made += 1
        ids = list(Portfolio.objects.values_list("id", flat=True))
        session = SESSIONS[SIZES.index(size)]
        harness.cache_history(previous_trading_day(session), now=NOW)
        for job in ("market_data", "greeks", "factors"):  # yesterday, untimed
            batch.job_run(job, previous_trading_day(session), portfolio_ids=ids)
        timings = {}
        for job in batch.daily():
            seconds, run = harness.timed(
                lambda job=job, ids=ids, day=session: batch.job_run(job, day, portfolio_ids=ids)
            )
            assert run.status == "succeeded", (job, run.error)
            timings[job] = seconds
        # The market-risk job's computation again, with and without its risk contributions,
        # best of 2 each, alternating: "without" skips them and the per-position Monte Carlo
        # P&L they read; "with" also adds up the seconds spent inside them (computed, stored).
        with_s, without_s, inside_s = [], [], []
        for _ in range(2):
            inside = Stopwatch()
            with (
                mock.patch.object(
                    contributions, "book_contributions", inside.counted(book_contributions)
                ),
                mock.patch.object(contributions, "risk_contributions_store", inside.counted(store)),
            ):
                with_s.append(
                    harness.timed(
                        lambda ids=ids, day=session: risk_metrics_compute(
                            as_of=day, portfolio_ids=ids
                        )
                    )[0]
                )
            inside_s.append(inside.seconds)
            with (
                mock.patch.object(contributions, "book_contributions", lambda *a, **k: None),
                mock.patch.object(contributions, "risk_contributions_store", lambda **k: 0),
                mock.patch.object(risk_metrics, "book_risk", without_positions(book_risk)),
            ):
                without_s.append(
                    harness.timed(
                        lambda ids=ids, day=session: risk_metrics_compute(
                            as_of=day, portfolio_ids=ids
                        )
                    )[0]
                )
        timings["risk with contributions"] = min(with_s)
        timings["risk without"] = min(without_s)
        timings["inside contributions"] = min(inside_s)
        results[str(size)] = timings
    return {"vendor": connection.vendor, "results": results}


def main() -> None:
    results = harness.run("bench.bench_daily_batch", timeout=3600)
    done = [r for r in results if "results" in r]
    jobs = [j for j in next(iter(done[0]["results"].values())) if j not in EXTRA] if done else []
    rows, extra = [], []
    for r in results:
        if "skipped" in r:
            rows.append(harness.skipped_row(r, 6 + len(jobs)))
            continue
        for size, timings in r["results"].items():
            total = sum(timings[j] for j in jobs)
            inside = timings["inside contributions"]
            extra.append(
                [
                    r["backend"],
                    int(size),
                    timings["risk with contributions"],
                    timings["risk without"],
                    timings["risk with contributions"] - timings["risk without"],
                    inside,
                    ("yes" if inside < TARGET_CONTRIBUTIONS_S else "NO")
                    if int(size) == 10_000
                    else "-",
                ]
            )
            share = timings["attribution"] / (total - timings["attribution"])
            at_target = int(size) == 10_000
            rows.append(
                [
                    r["backend"],
                    int(size),
                    *[timings[j] for j in jobs],
                    total,
                    ("yes" if total < TARGET_S else "NO") if at_target else "-",
                    f"{share:.1%}",
                    ("yes" if share < TARGET_ATTRIBUTION else "NO") if at_target else "-",
                ]
            )
    harness.print_table(
        f"Daily batch, whole chain for one session in one process (seconds per job; a year of history cached), targets at 10,000 positions: < {TARGET_S:g} s; attribution < {TARGET_ATTRIBUTION:.0%} of the rest",
        ["backend", "positions", *jobs, "total s", "target met", "attribution / rest", "met"],
        rows,
    )
    harness.print_table(
        f"Risk contributions (every measure, computed and stored) in the market-risk job's computation, with and without them in the same run (best of 2 each); 'inside' is the seconds spent in them during the run with them, the difference of the totals is within the run-to-run noise; target at 10,000 positions: inside < {TARGET_CONTRIBUTIONS_S:g} s",
        [
            "backend",
            "positions",
            "with s",
            "without s",
            "difference s",
            "inside contributions s",
            "met",
        ],
        extra,
    )


if __name__ == "__main__":
    harness.entry(worker, main)
