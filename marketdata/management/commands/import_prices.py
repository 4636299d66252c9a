from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from marketdata.services import prices_import_csv
from sigmasight.audit.services import audit_record
from sigmasight.exceptions import ValidationFailed


class Command(BaseCommand):
    help = "Load daily prices from a CSV (symbol,date,open,high,low,close,volume[,adjusted_close])."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--dry-run", action="store_true", help="validate only, write nothing")

    def handle(self, *args: object, file: Path, dry_run: bool, **options: object) -> None:
        if not file.is_file():
            raise CommandError(f"{file} is not a file.")
        try:
            with file.open("rb") as stream:
                result = prices_import_csv(stream=stream, dry_run=dry_run)
        except ValidationFailed as exc:
            for problem in exc.fields["rows"]:
                column = f" [{problem['column']}]" if problem["column"] else ""
                self.stderr.write(f"row {problem['row']}{column}: {problem['message']}")
            raise CommandError(exc.message) from exc
        if not dry_run:
            audit_record(
                "prices.import", rows=result.rows, file=str(file), via="manage.py import_prices"
            )
        verb = "would import" if dry_run else "imported"
        self.stdout.write(self.style.SUCCESS(f"{verb} {result.rows} price rows from {file}"))
        if result.gaps:
            self.stdout.write(
                f"{len(result.gaps)} symbol(s) lack NYSE sessions between their first and last "
                "date in the file; those sessions stay missing unless already cached:"
            )
        for symbol, gaps in result.gaps.items():
            self.stdout.write(self.style.WARNING(gaps.describe(symbol)))
        removed = "would replace" if dry_run else "replaced"
        for symbol, count in result.replaced_synthetic.items():
            self.stdout.write(
                self.style.WARNING(
                    f"{symbol}: {removed} {count} synthetic closes; the file is now its only source"
                )
            )
