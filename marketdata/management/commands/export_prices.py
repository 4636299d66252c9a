from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from marketdata.services import prices_export_csv


class Command(BaseCommand):
    help = "Write cached daily prices as CSV in the import_prices format."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--symbols", nargs="*", default=None)
        parser.add_argument("--start", type=date.fromisoformat)
        parser.add_argument("--end", type=date.fromisoformat)
        parser.add_argument("--output", type=Path, help="file to write (default: standard output)")

    def handle(self, *args: Any, **options: Any) -> None:
        kwargs = {"symbols": options["symbols"], "start": options["start"], "end": options["end"]}
        output: Path | None = options["output"]
        if output is None:
            count = prices_export_csv(out=self.stdout, **kwargs)
        else:
            with output.open("w", encoding="utf-8", newline="") as out:
                count = prices_export_csv(out=out, **kwargs)
        # On standard output the CSV is the whole output; the count goes to standard error.
        (self.stderr if output is None else self.stdout).write(f"exported {count} price rows")
