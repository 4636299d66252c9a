from __future__ import annotations

from datetime import date
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from analytics.batch import portfolio_chunks, run_daily_batch
from analytics.jobs import daily


class Command(BaseCommand):
    help = "Run the daily batch in-process for a session (default: the last NYSE session)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--date", type=date.fromisoformat, help="YYYY-MM-DD")
        parser.add_argument(
            "--job", action="append", choices=daily(), help="run only these jobs (repeatable)"
        )
        parser.add_argument(
            "--portfolio", type=int, action="append", help="only these portfolios (repeatable)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        jobs = options["job"] or daily()
        chunks = portfolio_chunks(options["portfolio"], settings.SIGMASIGHT_BATCH_CHUNK_POSITIONS)
        total = len(jobs) * sum(len(c) for c in chunks)
        with tqdm(
            total=total, file=self.stdout, unit="portfolio", disable=options["verbosity"] == 0
        ) as bar:
            runs = run_daily_batch(
                options["date"], jobs=jobs, portfolio_ids=options["portfolio"], on_chunk=bar.update
            )
        for run in runs:
            line = f"{run.name:12} {run.status:9} {run.duration_s:7.2f}s {run.counts}"
            self.stdout.write(line if run.status == "succeeded" else self.style.WARNING(line))
            for portfolio, reason in run.failed_portfolios.items():
                self.stderr.write(f"  portfolio {portfolio}: {reason}")
        if any(run.status == "failed" for run in runs):
            raise CommandError("At least one job failed.")
