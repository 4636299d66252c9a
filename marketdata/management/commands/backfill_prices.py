from __future__ import annotations

import argparse
from datetime import date

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from marketdata import calendar
from marketdata.models import Security
from marketdata.providers.base import RATE_10Y, RATE_SHORT
from marketdata.services import FetchReport, backfill_prices, backfill_range

NAMED = 50  # missing symbols the error names one by one


def _iso_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a date in YYYY-MM-DD form") from None


class Command(BaseCommand):
    help = (
        "Fetch and cache daily prices for symbols over a range of sessions (resumable). Exits "
        "non-zero, naming them, when symbols still lack sessions after every provider."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--symbols", nargs="*", help="default: every active stock, ETF and rate series"
        )
        parser.add_argument(
            "--days", type=int, help="sessions back from --end (default 400; not with --start)"
        )
        parser.add_argument("--start", type=_iso_date, help="first date, YYYY-MM-DD")
        parser.add_argument(
            "--end", type=_iso_date, help="last date, YYYY-MM-DD (default: the last close)"
        )
        parser.add_argument("--chunk", type=int, default=settings.SIGMASIGHT_BACKFILL_CHUNK)

    def handle(
        self,
        *args: object,
        symbols: list[str] | None,
        days: int | None,
        start: date | None,
        end: date | None,
        chunk: int,
        **opts: object,
    ) -> None:
        self._check(days=days, start=start, end=end, chunk=chunk)
        try:
            first, last = backfill_range(days=days, start=start, end=end)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        if not symbols:
            symbols = list(
                Security.objects.filter(is_active=True)
                .exclude(asset_type=Security.AssetType.OPTION)
                .values_list("symbol", flat=True)
            )
            symbols += [s for s in (RATE_10Y, RATE_SHORT) if s not in symbols]
        self.stdout.write(f"Backfilling {len(symbols)} symbol(s) from {first} to {last}")
        with tqdm(
            total=len(symbols), file=self.stdout, unit="symbol", disable=opts["verbosity"] == 0
        ) as bar:
            report = backfill_prices(
                symbols=symbols, start=first, end=last, chunk=chunk, on_progress=bar.update
            )
        by_source = ", ".join(f"{k}: {v}" for k, v in report.rows_by_source.items()) or "none"
        self.stdout.write(
            f"{report.rows_written} rows written ({by_source}), "
            f"{report.provider_calls} provider calls"
        )
        for provider, error in report.failures.items():
            self.stderr.write(f"{provider} failed: {error}")
        for symbol, error in list(report.errors.items())[:NAMED]:
            self.stderr.write(f"{symbol}: {error}")
        if report.gaps:
            raise CommandError(_missing_message(report))

    def _check(self, *, days: int | None, start: date | None, end: date | None, chunk: int) -> None:
        """Arguments that cannot make a range: refused before anything is fetched or written."""
        if start is not None and days is not None:
            raise CommandError("--start and --days both set where the range begins; give one.")
        if days is not None and days < 1:
            raise CommandError(f"--days must be at least 1, not {days}.")
        if chunk < 1:
            raise CommandError(f"--chunk must be at least 1, not {chunk}.")
        for flag, day in (("--start", start), ("--end", end)):
            if day is not None and not calendar.FIRST_YEAR <= day.year <= calendar.LAST_YEAR:
                raise CommandError(
                    f"{flag} {day} is outside the market calendar "
                    f"({calendar.FIRST_YEAR}-{calendar.LAST_YEAR})."
                )
        if start is not None and end is not None and start > end:
            raise CommandError(f"--start {start} is after --end {end}.")


def _missing_message(report: FetchReport) -> str:
    named = [
        f"{symbol} ({len(gaps)} from {gaps[0].isoformat()})"
        for symbol, gaps in list(report.gaps.items())[:NAMED]
    ]
    more = len(report.gaps) - len(named)
    return (
        f"{len(report.gaps)} symbol(s) still lack sessions after every provider (the cache serves "
        f"their last close, stale): {', '.join(named)}" + (f" and {more} more" if more else "")
    )
