"""Storage of an evening and of a year, with and without the position-results retention.

One evening of the whole chain on 1,000 positions (10 books of 100, 40% options) writes its
rows; the bench prints each position-level table's rows and bytes for that session, then a
simulated year: the session's position-level rows copied to the 251 sessions before it (what a
year of evenings leaves without a retention), the tables' rows and bytes, the retention job's
seconds to prune them to SIGMASIGHT_POSITION_RESULTS_RETENTION sessions, and the rows and bytes
a retained year holds (the tables rebuilt with only the kept sessions, as they stand when the
retention has run every evening). Bytes: PostgreSQL's pg_total_relation_size (table, indexes,
TOAST); SQLite's dbstat (table and its indexes). Scaled linearly, 10,000 positions are 10x.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from bench import harness
from bench.bench_daily_batch import PER_PORTFOLIO, bench_books

POSITIONS = 1_000
AS_OF = date(2026, 11, 20)
NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
YEAR = 252


def _bytes(connection, table: str) -> int:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT pg_total_relation_size(%s)", [table])
            return int(cursor.fetchone()[0])
        cursor.execute(
            "SELECT COALESCE(SUM(pgsize), 0) FROM dbstat WHERE name = %s OR name IN "
            "(SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = %s)",
            [table, table],
        )
        return int(cursor.fetchone()[0])


def _compact(connection, tables: list[str]) -> None:
    """Space freed by deletes given back, so sizes are comparable."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            for table in tables:
                cursor.execute(f"VACUUM FULL {connection.ops.quote_name(table)}")
        else:
            cursor.execute("VACUUM")


def _copy_to(connection, model, source: date, sessions: list[date]) -> None:
    """The source session's rows of `model` again for each of `sessions` (one INSERT .. SELECT
    each; the id column left to the database)."""
    quote = connection.ops.quote_name
    columns = [f.column for f in model._meta.concrete_fields if not f.primary_key]
    names = ", ".join(quote(c) for c in columns)
    chosen = ", ".join("%s" if c == "date" else quote(c) for c in columns)
    table = quote(model._meta.db_table)
    with connection.cursor() as cursor:
        for session in sessions:
            cursor.execute(
                f"INSERT INTO {table} ({names}) SELECT {chosen} FROM {table} WHERE date = %s",
                [session, source],
            )


def worker() -> dict:
    harness.worker_setup()
    from django.conf import settings
    from django.db import connection, transaction

    from analytics import batch
    from analytics.retention import POSITION_RESULTS
    from marketdata import calendar
    from portfolios.models import Portfolio
    from sigmasight.accounts.models import User

    user = User.objects.create_user("bench@example.com", "a-long-bench-password")
    bench_books(user, POSITIONS // PER_PORTFOLIO)
    ids = list(Portfolio.objects.values_list("id", flat=True))
    yesterday = calendar.previous_trading_day(AS_OF)
    harness.cache_history(yesterday, now=NOW)
    for job in ("market_data", "greeks", "factors"):
        batch.job_run(job, yesterday, portfolio_ids=ids)
    for model in POSITION_RESULTS:  # only this session's rows: the per-session count is clean
        model._default_manager.filter(date__lt=AS_OF).delete()
    for job in batch.daily():
        run = batch.job_run(job, AS_OF, portfolio_ids=ids)
        assert run.status == "succeeded", (job, run.error)
    tables = [m._meta.db_table for m in POSITION_RESULTS]
    _compact(connection, tables)
    session = {
        m._meta.db_table: [m._default_manager.count(), _bytes(connection, m._meta.db_table)]
        for m in POSITION_RESULTS
    }
    earlier = calendar.sessions_back(AS_OF, YEAR)[:-1]
    with transaction.atomic():
        for model in POSITION_RESULTS:
            _copy_to(connection, model, AS_OF, earlier)
    _compact(connection, tables)
    year = {
        m._meta.db_table: [m._default_manager.count(), _bytes(connection, m._meta.db_table)]
        for m in POSITION_RESULTS
    }
    # A year of evenings: autovacuum has analyzed the tables long before (VACUUM FULL does not);
    # on stale statistics PostgreSQL took the backlog for a few rows and read it by index.
    harness.analyze()
    seconds, run = harness.timed(lambda: batch.job_run("retention", AS_OF, portfolio_ids=ids))
    assert run.status == "succeeded", run.error
    _compact(connection, tables)
    kept = {
        m._meta.db_table: [m._default_manager.count(), _bytes(connection, m._meta.db_table)]
        for m in POSITION_RESULTS
    }
    return {
        "vendor": connection.vendor,
        "retention": settings.SIGMASIGHT_POSITION_RESULTS_RETENTION,
        "session": session,
        "year": year,
        "kept": kept,
        "prune_s": seconds,
        "pruned": run.counts.get("rows_pruned", 0),
    }


def _mb(value: int) -> float:
    return value / 1e6


def main() -> None:
    results = harness.run("bench.bench_storage", timeout=3600)
    per_session, year = [], []
    for r in results:
        if "skipped" in r:
            per_session.append(harness.skipped_row(r, 5))
            continue
        for table, (rows, size) in r["session"].items():
            per_session.append([r["backend"], table, rows, _mb(size), _mb(size) * 10])
        total = [sum(v[i] for v in r["session"].values()) for i in (0, 1)]
        per_session.append(
            [r["backend"], "all position-level", total[0], _mb(total[1]), _mb(total[1]) * 10]
        )
        for table in r["session"]:
            full, kept = r["year"][table], r["kept"][table]
            year.append(
                [
                    r["backend"],
                    table,
                    full[0],
                    _mb(full[1]),
                    kept[0],
                    _mb(kept[1]),
                    f"{full[1] / max(kept[1], 1):.1f}x",
                ]
            )
        full = [sum(v[i] for v in r["year"].values()) for i in (0, 1)]
        kept = [sum(v[i] for v in r["kept"].values()) for i in (0, 1)]
        year.append(
            [
                r["backend"],
                f"all (pruned {r['pruned']:,} rows in {r['prune_s']:.2f} s)",
                full[0],
                _mb(full[1]),
                kept[0],
                _mb(kept[1]),
                f"{full[1] / max(kept[1], 1):.1f}x",
            ]
        )
    harness.print_table(
        f"Position-level results written by one evening, {POSITIONS:,} positions (MB; x10: the "
        "same at 10,000 positions, scaled linearly)",
        ["backend", "table", "rows", "MB", "MB at 10,000"],
        per_session,
    )
    retention = next((r["retention"] for r in results if "retention" in r), "?")
    harness.print_table(
        f"A simulated year ({YEAR} sessions) of position-level results, {POSITIONS:,} positions: "
        f"without a retention against the retention's {retention} sessions",
        [
            "backend",
            "table",
            "rows, year",
            "MB, year",
            f"rows, {retention} sessions",
            f"MB, {retention} sessions",
            "smaller",
        ],
        year,
    )


if __name__ == "__main__":
    harness.entry(worker, main)
