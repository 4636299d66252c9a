from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from marketdata.corporate_actions import CSV_HEADER, corporate_actions_import_csv
from sigmasight.exceptions import ValidationFailed


class Command(BaseCommand):
    help = f"Load splits and cash dividends from a CSV ({','.join(CSV_HEADER)}); all or nothing."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--dry-run", action="store_true", help="validate only, write nothing")

    def handle(self, *args: object, file: Path, dry_run: bool, **options: object) -> None:
        if not file.is_file():
            raise CommandError(f"{file} is not a file.")
        try:
            with file.open("rb") as stream:
                result = corporate_actions_import_csv(stream=stream, dry_run=dry_run)
        except ValidationFailed as exc:
            for problem in exc.fields["rows"]:
                column = f" [{problem['column']}]" if problem["column"] else ""
                self.stderr.write(f"row {problem['row']}{column}: {problem['message']}")
            raise CommandError(exc.message) from exc
        verb = "would import" if dry_run else "imported"
        self.stdout.write(self.style.SUCCESS(f"{verb} {result.rows} corporate actions from {file}"))
