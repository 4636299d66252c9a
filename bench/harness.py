"""Run a benchmark once per database backend, each in a fresh process and a fresh database.

The parent (`make bench`) calls `run(module)`; for every backend it starts
`python -m <module> --worker` with DATABASE_URL pointing at a new empty database, the worker
migrates, measures and prints one JSON object as its last line, and the parent prints a table.
PostgreSQL is used when it answers at BENCH_POSTGRES_URL (default: the local server); otherwise
its row says why it was skipped.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
POSTGRES_ADMIN_URL = os.environ.get(
    "BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres"
)
BENCH_DB = "sigmasight_bench"


def fresh_postgres(name: str = BENCH_DB) -> str | None:
    """An empty PostgreSQL database `name` at BENCH_POSTGRES_URL's server (its URL), or None
    (reported) when the server cannot be reached."""
    try:
        import psycopg

        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            conn.execute(f"CREATE DATABASE {name}")
    except Exception as exc:  # noqa: BLE001 - any failure means "no PostgreSQL to measure"
        sys.stderr.write(f"PostgreSQL unavailable for {name}: {exc}\n")
        return None
    base, _, _ = POSTGRES_ADMIN_URL.rpartition("/")
    return f"{base}/{name}"


def drop_postgres(name: str) -> None:
    import psycopg

    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=3) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def run(module: str, *, timeout: int = 900) -> list[dict]:
    """Run `module --worker` on SQLite and PostgreSQL; return each worker's JSON result."""
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        targets = [("SQLite", f"sqlite:///{tmp}/bench.sqlite3"), ("PostgreSQL", fresh_postgres())]
        for label, url in targets:
            if url is None:
                results.append({"backend": label, "skipped": "not reachable"})
                continue
            env = {
                **os.environ,
                "DATABASE_URL": url,
                "DJANGO_SETTINGS_MODULE": "sigmasight.settings.test",
                "SIGMASIGHT_DATA_DIR": tmp,
            }
            env.pop("REDIS_URL", None)
            done = subprocess.run(
                [sys.executable, "-m", module, "--worker"],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
            if done.returncode != 0:
                raise RuntimeError(f"{module} on {label} failed:\n{done.stdout}\n{done.stderr}")
            result = json.loads(done.stdout.strip().splitlines()[-1])
            results.append({"backend": label, **result})
    return results


def worker_setup() -> None:
    """In a worker process: configure Django and migrate the empty database."""
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def cpu_busy() -> float:
    """CPU-seconds the whole machine has been busy since boot (every process: user, system,
    interrupts; not idle, I/O wait or time the hypervisor gave to other guests)."""
    import psutil

    t = psutil.cpu_times()
    return t.user + t.nice + t.system + getattr(t, "irq", 0.0) + getattr(t, "softirq", 0.0)


def print_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    cells = [[_fmt(c) for c in row] for row in rows]
    widths = [
        max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)
    ]
    out = sys.stdout
    out.write(f"\n{title}\n")
    out.write("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + "\n")
    out.write("  ".join("-" * w for w in widths) + "\n")
    for row in cells:
        out.write("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + "\n")
    out.flush()


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return (
            f"{value:,.0f}"
            if abs(value) >= 1000
            else f"{value:.3g}"
            if abs(value) < 10
            else f"{value:,.1f}"
        )
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def entry(worker: Callable[[], dict], main: Callable[[], None]) -> None:
    """`python -m bench.bench_x` runs the table; with --worker it is the measured process."""
    if "--worker" in sys.argv:
        sys.stdout.write(json.dumps(worker()) + "\n")
    else:
        main()


def skipped_row(result: dict, width: int) -> list[object]:
    return [result["backend"], "skipped: " + result["skipped"], *[""] * (width - 2)]


def cache_history(end, *, now, sessions: int = 270) -> None:
    """In a worker: the year of closes (and sectors) a real evening finds cached for every held
    symbol and underlying, the factor proxies and the rates, up to `end` (synthetic; untimed)."""

    from analytics.models import FactorDefinition
    from marketdata.calendar import sessions_back
    from marketdata.providers.base import RATE_10Y, RATE_SHORT
    from marketdata.providers.synthetic import SyntheticProvider
    from marketdata.services import prices_fetch_and_cache, sectors_fetch_and_cache
    from marketdata.symbols import looks_like_occ
    from portfolios.models import Position

    held = set(Position.objects.values_list("symbol", flat=True)) | set(
        Position.objects.values_list("underlying_symbol", flat=True)
    )
    proxies = set(
        FactorDefinition.objects.exclude(etf_proxy="").values_list("etf_proxy", flat=True)
    )
    prices_fetch_and_cache(
        symbols=sorted(held | proxies | {RATE_10Y, RATE_SHORT}),
        start=sessions_back(end, sessions)[0],
        end=end,
        providers=[SyntheticProvider()],
        now=now,
    )
    sectors_fetch_and_cache(
        symbols=sorted(s for s in held if not looks_like_occ(s)), providers=[SyntheticProvider()]
    )
    analyze()


def analyze() -> None:
    """In a worker, on PostgreSQL: what autovacuum has done on a live database long before the
    evening (its history, and the previous session's results, written the evening before):
    freshly bulk-loaded tables still carry the empty tables' statistics."""
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
