from __future__ import annotations

from pathlib import Path

from marketdata.management.file_import import FileImportCommand
from marketdata.services import prices_import_csv
from sigmasight.audit.services import audit_record


class Command(FileImportCommand):
    help = "Load daily prices from a CSV (symbol,date,open,high,low,close,volume[,adjusted_close])."

    def handle(self, *args: object, file: Path, dry_run: bool, **options: object) -> None:
        result = self.load(file, dry_run, prices_import_csv)
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
