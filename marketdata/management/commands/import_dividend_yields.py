from __future__ import annotations

from pathlib import Path

from marketdata.management.file_import import FileImportCommand
from marketdata.services import dividend_yields_import_csv


class Command(FileImportCommand):
    help = (
        "Load dividend yields from a CSV (symbol,date,dividend_yield; continuous, annual, "
        "decimal: 0.031 is 3.1%). Every row is validated; nothing is written unless all are valid."
    )

    def handle(self, *args: object, file: Path, dry_run: bool, **options: object) -> None:
        result = self.load(file, dry_run, dividend_yields_import_csv)
        verb = "would import" if dry_run else "imported"
        self.stdout.write(self.style.SUCCESS(f"{verb} {result.rows} dividend yields from {file}"))
        removed = "would replace" if dry_run else "replaced"
        for symbol, count in result.replaced_synthetic.items():
            self.stdout.write(
                self.style.WARNING(
                    f"{symbol}: {removed} {count} synthetic yields; the file is now its only source"
                )
            )
