"""The shape of every `manage.py import_<data> FILE [--dry-run]` command: a CSV file validated
whole by its service, every refused row and column on stderr, nothing written unless all pass."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from sigmasight.exceptions import ValidationFailed


class FileImportCommand(BaseCommand):
    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--dry-run", action="store_true", help="validate only, write nothing")

    def load(self, file: Path, dry_run: bool, importer: Callable[..., Any]) -> Any:
        """`importer(stream=..., dry_run=...)`'s result, or CommandError after listing every
        problem of a refused file."""
        if not file.is_file():
            raise CommandError(f"{file} is not a file.")
        try:
            with file.open("rb") as stream:
                return importer(stream=stream, dry_run=dry_run)
        except ValidationFailed as exc:
            for problem in exc.fields["rows"]:
                column = f" [{problem['column']}]" if problem["column"] else ""
                self.stderr.write(f"row {problem['row']}{column}: {problem['message']}")
            raise CommandError(exc.message) from exc
