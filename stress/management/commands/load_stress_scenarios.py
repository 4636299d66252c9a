from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from sigmasight.exceptions import ValidationFailed
from stress.library import DEFAULT_PATH, load_library


class Command(BaseCommand):
    help = (
        "Load the shared stress-scenario library from JSON, upserting by name. Scenarios staff "
        "edited in the admin are left alone unless --force."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--file", type=Path, default=DEFAULT_PATH, help=f"library file (default {DEFAULT_PATH})"
        )
        parser.add_argument(
            "--force", action="store_true", help="also overwrite scenarios staff edited"
        )
        parser.add_argument("--dry-run", action="store_true", help="validate only, write nothing")

    def handle(
        self, *args: object, file: Path, force: bool, dry_run: bool, **options: object
    ) -> None:
        try:
            counts = load_library(force=force, path=file, dry_run=dry_run)
        except ValidationFailed as exc:
            for field_problems in exc.fields.values():
                for problem in field_problems:
                    self.stderr.write(str(problem))
            raise CommandError(exc.message) from exc
        prefix = "dry run, nothing written: would have " if dry_run else ""
        self.stdout.write(
            self.style.SUCCESS(
                f"{prefix}created {counts['created']}, updated {counts['updated']}, "
                f"skipped (edited) {counts['skipped_edited']}, unchanged {counts['unchanged']} "
                f"stress scenarios from {file}"
            )
        )
