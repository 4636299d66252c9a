"""Workers: does a second worker process add speed? The same evening (every job of the day, on
100 books of 100 positions, 40% options, a year of history cached) run three ways in one run:
in one process (`run_batch`'s path, no broker), on one Celery worker process, and on two worker
processes with different host names (two machines as Celery sees them), both with Redis as the
broker (BENCH_REDIS_URL, default db 9, emptied first). Each way re-runs the same session after
one untimed warm-up, so market data finds the session's closes cached in every way.
Each way runs twice (the workers' ways alternated) and the best of the two is reported.
Target: two worker processes at least 1.7x faster than one.

Each way's run also counts the CPU-seconds the whole machine spent during it (workers,
PostgreSQL, Redis: psutil). With C2 the two workers' CPU-seconds, their evening cannot take less
than C2 / cores, so `cores x (one worker's seconds) / C2` is the most two workers could gain on
this machine however well they were scheduled: the ceiling the table prints next to the ratio.
C2 - C1 is the work the second process adds (what both processes read and compute for
themselves, PostgreSQL serving two at once).
"""

from __future__ import annotations

import os
import time
import uuid
from datetime import UTC, date, datetime

from bench import harness
from bench.bench_daily_batch import PER_PORTFOLIO, bench_books
from sigmasight.servers import celery_workers

POSITIONS = int(os.environ.get("BENCH_WORKER_POSITIONS", "10000"))
AS_OF = date(2026, 11, 20)
NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/9")
TARGET = 1.7
RUNS = 2  # each way run twice, the best kept (a 2-core machine's other load is noise)


def _on_workers(count: int) -> tuple[float, float]:
    """Seconds and the machine's CPU-seconds of the evening on `count` worker processes (their
    start-up not counted)."""
    from analytics.models import BatchJob
    from analytics.tasks import run_trigger

    queue = f"bench-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "CELERY_TASK_DEFAULT_QUEUE": queue, "REDIS_URL": REDIS_URL}
    hosts = tuple(f"w{i}@host-{i}" for i in range(count))
    with celery_workers(env, queue=queue, hosts=hosts):
        time.sleep(8)  # the workers' start-up (Django, imports) is not the evening
        umbrella = BatchJob.objects.create(name="trigger:all", run_date=AS_OF)
        start, cpu = time.perf_counter(), harness.cpu_busy()
        reply = run_trigger.apply_async(args=(umbrella.pk, None), queue=queue).get(timeout=3000)
        seconds, cpu = time.perf_counter() - start, harness.cpu_busy() - cpu
    assert reply["status"] == "succeeded", reply
    return seconds, cpu


def worker() -> dict:
    os.environ["REDIS_URL"] = REDIS_URL  # this process sends the evening to the broker
    import psutil
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()
    harness.worker_setup()
    from django.db import connection

    from analytics import batch
    from marketdata.calendar import previous_trading_day
    from portfolios.models import Portfolio
    from sigmasight.accounts.models import User
    from sigmasight.celery import app

    user = User.objects.create_user("bench@example.com", "a-long-bench-password")
    bench_books(user, POSITIONS // PER_PORTFOLIO)
    ids = list(Portfolio.objects.values_list("id", flat=True))
    harness.cache_history(previous_trading_day(AS_OF), now=NOW)
    app.conf.task_always_eager = True  # the warm-up and the one-process way: in this process
    for job in ("market_data", "greeks", "factors"):
        batch.job_run(job, previous_trading_day(AS_OF), portfolio_ids=ids)
    batch.run_daily_batch(AS_OF, portfolio_ids=ids)  # warm-up: the session's closes cached
    harness.analyze()  # the previous session's and the warm-up's rows, as autovacuum would
    timings = []
    for _ in range(RUNS):
        seconds, runs = harness.timed(lambda: batch.run_daily_batch(AS_OF, portfolio_ids=ids))
        assert all(r.status == "succeeded" for r in runs), [(r.name, r.error) for r in runs]
        timings.append(seconds)
    app.conf.task_always_eager = False
    connection.close()  # the workers write; this process only waits
    one, two = [], []
    for _ in range(RUNS):  # alternated, so a slow spell of the machine hits both
        one.append(_on_workers(1))
        two.append(_on_workers(2))
    return {
        "vendor": connection.vendor,
        "times": [min(timings), *min(one), *min(two)],
        "cores": psutil.cpu_count(),
    }


def main() -> None:
    results = harness.run("bench.bench_workers", timeout=3600)
    rows = []
    for r in results:
        if "skipped" in r:
            rows.append(harness.skipped_row(r, 11))
            continue
        one_process, one, one_cpu, two, two_cpu = r["times"]
        speedup = one / two
        rows.append(
            [
                r["backend"],
                POSITIONS,
                one_process,
                one,
                two,
                f"{speedup:.2f}x",
                "yes" if speedup >= TARGET else "NO",
                one_cpu,
                two_cpu,
                r["cores"],
                f"{r['cores'] * one / two_cpu:.2f}x",
            ]
        )
    harness.print_table(
        f"The evening ({POSITIONS:,} positions, every job) in one process, on one worker process "
        f"and on two (different host names, Redis broker), best of {RUNS} each; target: two >= "
        f"{TARGET}x faster than one. CPU s: the machine's CPU-seconds during the run (every "
        "process); ceiling: cores x 1 worker s / 2 workers CPU s",
        [
            "backend",
            "positions",
            "one process s",
            "1 worker s",
            "2 workers s",
            "2 vs 1",
            "target met",
            "1 worker CPU s",
            "2 workers CPU s",
            "cores",
            "2 vs 1 ceiling",
        ],
        rows,
    )


if __name__ == "__main__":
    harness.entry(worker, main)
