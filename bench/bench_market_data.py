"""Fetch-and-cache of 500 symbols x 400 sessions from the synthetic provider into an empty
database, beside a row-by-row `save()` baseline measured on a slice in the same run.
Target: at least 50,000 rows/s."""

from __future__ import annotations

from datetime import UTC, date, datetime

from bench import harness

SYMBOLS = 500
SESSIONS = 400
SAVE_SLICE = 2_000
END = date(2026, 11, 20)
NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
TARGET = 50_000


def worker() -> dict:
    harness.worker_setup()
    from django.db import connection
    from django.utils import timezone

    from marketdata.calendar import sessions_back
    from marketdata.models import DailyPrice, Security
    from marketdata.providers.synthetic import SyntheticProvider
    from marketdata.services import prices_fetch_and_cache

    symbols = [f"B{i:04d}" for i in range(SYMBOLS)]
    start = sessions_back(END, SESSIONS)[0]
    provider = SyntheticProvider()
    provider.daily_bars(["SPY"], END, END)  # build the calendar and factor panel once
    generate_s, bars = harness.timed(lambda: provider.daily_bars(symbols, start, END))

    def fetch():
        return prices_fetch_and_cache(
            symbols=symbols, start=start, end=END, providers=[provider], now=NOW
        )

    fetch_s, report = harness.timed(fetch)
    rows = report.rows_written
    assert rows == SYMBOLS * SESSIONS == DailyPrice.objects.count(), rows
    cached_s, again = harness.timed(fetch)
    assert again.provider_calls == 0

    ids = dict(Security.objects.values_list("symbol", "id"))
    DailyPrice.objects.all().delete()
    sample = bars.head(SAVE_SLICE)
    now = timezone.now()

    def save_rows() -> None:
        for row in sample.itertuples(index=False):
            DailyPrice(
                security_id=ids[row.symbol],
                date=row.date,
                open=row.open,
                high=row.high,
                low=row.low,
                close=row.close,
                adjusted_close=row.adjusted_close,
                volume=int(row.volume),
                source="synthetic",
                fetched_at=now,
            ).save()

    save_s, _ = harness.timed(save_rows)
    return {
        "vendor": connection.vendor,
        "rows": rows,
        "generate_s": generate_s,
        "fetch_s": fetch_s,
        "rows_per_s": rows / fetch_s,
        "cached_s": cached_s,
        "save_rows_per_s": SAVE_SLICE / save_s,
    }


def main() -> None:
    results = harness.run("bench.bench_market_data")
    rows = []
    for r in results:
        if "skipped" in r:
            rows.append(harness.skipped_row(r, 9))
            continue
        rows.append(
            [
                r["backend"],
                r["rows"],
                r["generate_s"],
                r["fetch_s"],
                r["rows_per_s"],
                "yes" if r["rows_per_s"] >= TARGET else "NO",
                r["save_rows_per_s"],
                f"{r['rows_per_s'] / r['save_rows_per_s']:.0f}x",
                r["cached_s"],
            ]
        )
    harness.print_table(
        f"Market data: fetch-and-cache {SYMBOLS} symbols x {SESSIONS} sessions (synthetic), "
        f"target >= {TARGET:,} rows/s",
        [
            "backend",
            "rows",
            "generate s",
            "fetch+cache s",
            "rows/s",
            "target met",
            f"save() rows/s ({SAVE_SLICE:,} rows)",
            "bulk vs save()",
            "re-run (cached) s",
        ],
        rows,
    )


if __name__ == "__main__":
    harness.entry(worker, main)
