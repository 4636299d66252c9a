"""Import of a 10,000-row position CSV through the service (validate, derive, bulk write,
strategy detection), beside creating the same positions one at a time through
`position_create` (the single-position API path) on a slice, measured in the same run.
Target: under 3 s for 10,000 rows."""

from __future__ import annotations

import random
from datetime import date, timedelta

from bench import harness

ROWS = 10_000
SLICE = 200
TARGET_S = 3.0


def position_file(rows: int, seed: int = 7) -> bytes:
    rng = random.Random(seed)
    roots = [f"R{i:03d}" for i in range(600)]
    lines = ["symbol,quantity,entry_price,entry_date,option_type,strike,expiration,tags,notes"]
    start = date(2023, 1, 3)
    for n in range(rows):
        root = roots[n % len(roots)]
        entry = start + timedelta(days=n // len(roots))
        tags = ";".join(
            rng.sample(["growth", "value", "hedge", "core", "income"], k=rng.randint(0, 2))
        )
        if n % 5 in (0, 1):  # 40% options, in columns
            kind, strike = rng.choice("CP"), rng.randrange(50, 300, 5)
            expiry = date(2027, 1, 15) + timedelta(days=28 * rng.randint(0, 6))
            qty = rng.choice([-1, 1]) * rng.randint(1, 20)
            lines.append(
                f"{root},{qty},{rng.uniform(1, 30):.2f},{entry},{kind},{strike},{expiry},{tags},"
            )
        else:
            qty = rng.choice([-1, 1]) * rng.randint(10, 2000)
            lines.append(f"{root},{qty},{rng.uniform(10, 500):.2f},{entry},,,,{tags},lot {n}")
    return ("\n".join(lines) + "\n").encode()


def worker() -> dict:
    harness.worker_setup()
    from django.db import connection

    from portfolios import position_csv
    from portfolios.models import Portfolio, Position
    from portfolios.services import position_create, positions_import_csv
    from sigmasight.accounts.models import User

    user = User.objects.create_user("bench@example.com", "a-long-bench-password")
    raw = position_file(ROWS)
    portfolio = Portfolio.objects.create(owner=user, name="bench")
    seconds, result = harness.timed(
        lambda: positions_import_csv(portfolio=portfolio, raw=raw, mode="append")
    )
    assert result.created == ROWS == Position.objects.filter(portfolio=portfolio).count()
    again, result = harness.timed(
        lambda: positions_import_csv(portfolio=portfolio, raw=raw, mode="append")
    )
    assert result.updated == ROWS

    records = position_csv.parse(raw, today=date.today(), max_rows=ROWS, max_tags=32)[:SLICE]
    one_by_one = Portfolio.objects.create(owner=user, name="one by one")

    def create_each() -> None:
        for r in records:
            data = {
                "symbol": r.underlying,
                "quantity": str(r.quantity),
                "entry_price": str(r.entry_price),
                "entry_date": r.entry_date.isoformat(),
                "option_type": r.option_type,
                "strike": "" if r.strike is None else str(r.strike),
                "expiration": "" if r.expiration is None else r.expiration.isoformat(),
            }
            position_create(portfolio=one_by_one, data=data)

    slice_s, _ = harness.timed(create_each)
    return {
        "vendor": connection.vendor,
        "import_s": seconds,
        "reimport_s": again,
        "rows_per_s": ROWS / seconds,
        "one_by_one_rows_per_s": SLICE / slice_s,
    }


def main() -> None:
    results = harness.run("bench.bench_positions_import")
    rows = []
    for r in results:
        if "skipped" in r:
            rows.append(harness.skipped_row(r, 8))
            continue
        rows.append(
            [
                r["backend"],
                ROWS,
                r["import_s"],
                "yes" if r["import_s"] < TARGET_S else "NO",
                r["reimport_s"],
                r["rows_per_s"],
                r["one_by_one_rows_per_s"],
                f"{r['rows_per_s'] / r['one_by_one_rows_per_s']:.0f}x",
            ]
        )
    harness.print_table(
        f"Positions: import a {ROWS:,}-row CSV through the service (40% options), target < {TARGET_S:g} s",
        [
            "backend",
            "rows",
            "import s",
            "target met",
            "re-import (all updates) s",
            "rows/s",
            f"position_create rows/s ({SLICE} rows)",
            "bulk vs one by one",
        ],
        rows,
    )


if __name__ == "__main__":
    harness.entry(worker, main)
