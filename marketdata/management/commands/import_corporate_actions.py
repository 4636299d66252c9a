from __future__ import annotations

from pathlib import Path

from marketdata.corporate_actions import CSV_HEADER, corporate_actions_import_csv
from marketdata.management.file_import import FileImportCommand


class Command(FileImportCommand):
    help = f"Load splits and cash dividends from a CSV ({','.join(CSV_HEADER)}); all or nothing."

    def handle(self, *args: object, file: Path, dry_run: bool, **options: object) -> None:
        result = self.load(file, dry_run, corporate_actions_import_csv)
        verb = "would import" if dry_run else "imported"
        self.stdout.write(self.style.SUCCESS(f"{verb} {result.rows} corporate actions from {file}"))
