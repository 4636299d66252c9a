from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from marketdata.services import dividend_yields_import_csv
from sigmasight.exceptions import ValidationFailed


class Command(BaseCommand):
    help = (
        "Load dividend yields from a CSV (symbol,date,dividend_yield; continuous, annual, "
        "decimal: 0.031 is 3.1%). Every row is validated; nothing is written unless all are valid."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--dry-run", action="store_true", help="validate only, write nothing")

    def handle(self, *args: object, file: Path, dry_run: bool, **options: object) -> None:
        if not file.is_file():
            raise CommandError(f"{file} is not a file.")
        try:
            with file.open("rb") as stream:
                result = dividend_yields_import_csv(stream=stream, dry_run=dry_run)
        except ValidationFailed as exc:
            for problem in exc.fields["rows"]:
                column = f" [{problem['column']}]" if problem["column"] else ""
                self.stderr.write(f"row {problem['row']}{column}: {problem['message']}")
            raise CommandError(exc.message) from exc
        verb = "would import" if dry_run else "imported"
        self.stdout.write(self.style.SUCCESS(f"{verb} {result.rows} dividend yields from {file}"))
        removed = "would replace" if dry_run else "replaced"
        for symbol, count in result.replaced_synthetic.items():
            self.stdout.write(
                self.style.WARNING(
                    f"{symbol}: {removed} {count} synthetic yields; the file is now its only source"
                )
            )
