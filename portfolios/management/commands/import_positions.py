from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from portfolios import services
from portfolios.models import Portfolio
from sigmasight.exceptions import PayloadTooLarge, ValidationFailed


class _DryRun(Exception):
    """Raised after a dry-run import succeeded, to roll its transaction back."""


class Command(BaseCommand):
    help = (
        "Import a position CSV (the upload format of API.md) into a portfolio: every row is "
        "validated first and nothing is written if any row is bad."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--portfolio", type=int, required=True, help="portfolio id")
        parser.add_argument(
            "--mode",
            choices=["append", "replace"],
            default="append",
            help="append: add lots and update those with the same symbol and entry date; "
            "replace: swap the portfolio's positions for the file's",
        )
        parser.add_argument("--dry-run", action="store_true", help="validate only, write nothing")

    def handle(
        self,
        *args: object,
        file: Path,
        portfolio: int,
        mode: str,
        dry_run: bool,
        **options: object,
    ) -> None:
        if not file.is_file():
            raise CommandError(f"{file} is not a file.")
        target = Portfolio.objects.filter(pk=portfolio).first()
        if target is None:
            raise CommandError(f"There is no portfolio with id {portfolio}.")
        raw = file.read_bytes()
        try:
            # A dry run runs the real import and rolls it back, rather than only parsing: the
            # checks that need the database (the owner's tag limit, the lots an append would
            # update) are then the same as a real run's, and so are the counts it reports.
            with transaction.atomic():
                result = services.positions_import_csv(portfolio=target, raw=raw, mode=mode)
                if dry_run:
                    raise _DryRun
        except _DryRun:
            pass
        except ValidationFailed as exc:
            for problem in exc.fields.get("rows", []):
                column = f" [{problem['column']}]" if problem["column"] else ""
                self.stderr.write(f"row {problem['row']}{column}: {problem['message']}")
            raise CommandError(exc.message) from exc
        except PayloadTooLarge as exc:
            raise CommandError(exc.message) from exc
        verb = "would import" if dry_run else "imported"
        self.stdout.write(
            self.style.SUCCESS(
                f"{verb} {result.total} positions into portfolio {target.pk} ({mode}): "
                f"{result.created} created, {result.updated} updated"
            )
        )
