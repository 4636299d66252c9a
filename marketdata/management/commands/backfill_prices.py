from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from tqdm import tqdm

from marketdata.models import Security
from marketdata.providers.base import RATE_10Y, RATE_SHORT
from marketdata.services import backfill_prices


class Command(BaseCommand):
    help = "Fetch and cache daily prices for symbols over the last N sessions (resumable)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--symbols", nargs="*", help="default: every active stock, ETF and rate series"
        )
        parser.add_argument(
            "--days", type=int, default=400, help="sessions back from the last close"
        )
        parser.add_argument("--chunk", type=int, default=settings.SIGMASIGHT_BACKFILL_CHUNK)

    def handle(
        self, *args: object, symbols: list[str] | None, days: int, chunk: int, **opts: object
    ) -> None:
        if not symbols:
            symbols = list(
                Security.objects.filter(is_active=True)
                .exclude(asset_type=Security.AssetType.OPTION)
                .values_list("symbol", flat=True)
            )
            symbols += [s for s in (RATE_10Y, RATE_SHORT) if s not in symbols]
        with tqdm(
            total=len(symbols), file=self.stdout, unit="symbol", disable=opts["verbosity"] == 0
        ) as bar:
            report = backfill_prices(
                symbols=symbols, days=days, chunk=chunk, on_progress=bar.update
            )
        by_source = ", ".join(f"{k}: {v}" for k, v in report.rows_by_source.items()) or "none"
        self.stdout.write(
            f"{report.rows_written} rows written ({by_source}), "
            f"{report.provider_calls} provider calls"
        )
        for provider, error in report.failures.items():
            self.stderr.write(f"{provider} failed: {error}")
        if report.missing:
            self.stderr.write(f"still missing (served stale): {', '.join(report.missing)}")
