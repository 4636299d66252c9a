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
from datetime import UTC, date, datetime

from bench import harness
from bench.bench_contributions_job import HEADERS, contributions_cost, cost_row

SIZES = tuple(int(n) for n in os.environ.get("BENCH_SIZES", "1000,10000,50000").split(","))
SESSIONS = (date(2026, 11, 18), date(2026, 11, 19), date(2026, 11, 20))  # one per size
PER_PORTFOLIO = 100
AS_OF = date(2026, 11, 20)
NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
TARGET_S = 60.0
TARGET_ATTRIBUTION = 0.10  # the attribution job's seconds / the other jobs' seconds


def worker() -> dict:
    harness.worker_setup()
    from django.db import connection

    from analytics import batch
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
        # The market-risk job's computation again, with and without its risk contributions.
        cost = contributions_cost(ids, session)
        results[str(size)] = {"jobs": timings, "contributions": cost}
    return {"vendor": connection.vendor, "results": results}


def main() -> None:
    results = harness.run("bench.bench_daily_batch", timeout=3600)
    done = [r for r in results if "results" in r]
    jobs = list(next(iter(done[0]["results"].values()))["jobs"]) if done else []
    rows, extra = [], []
    for r in results:
        if "skipped" in r:
            rows.append(harness.skipped_row(r, 6 + len(jobs)))
            continue
        for size, measured in r["results"].items():
            timings = measured["jobs"]
            books = f"{int(size) // PER_PORTFOLIO:,} x {PER_PORTFOLIO} positions"
            extra.append(cost_row(r["backend"], books, measured["contributions"], False))
            total = sum(timings.values())
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
        "Risk contributions in the market-risk job's computation, many small books (the target "
        "is judged on one 10,000-position book: bench_contributions_job); inside = computed + "
        "stored",
        HEADERS,
        extra,
    )


if __name__ == "__main__":
    harness.entry(worker, main)
