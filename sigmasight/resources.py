"""The base of every django-import-export resource: downloads through `exports.safe_cell`.

Every CSV, XLSX (and other format) the admin downloads is rewritten cell by cell after the
resource built it, whatever its fields or `export_resource` do: user text is neutralised and
control characters already stored are replaced, so an XLSX export never fails on old data.
Numbers stay numbers (XLSX exports carry native values). Imports remove the one apostrophe
again before a row is read (the position resource, which reads rows its own way, through
`position_csv.validate_record`), so an exported file imports back unchanged.

The library's own `IMPORT_EXPORT_ESCAPE_FORMULAE_ON_EXPORT` is left unset on purpose: it
deletes a leading `=` (changing the data), ignores `+ - @`, and turns every cell into text
(None becomes "None", numbers stop being numbers).
"""

from __future__ import annotations

from import_export import resources
from tablib import Dataset

from sigmasight.exports import safe_cell, unescape_cell


class SafeModelResource(resources.ModelResource):
    def export(self, queryset: object = None, **kwargs: object) -> Dataset:
        dataset = super().export(queryset, **kwargs)
        headers = dataset.headers
        safe = Dataset(headers=[safe_cell(h) for h in headers] if headers else None)
        safe.title = dataset.title
        for row in dataset:
            safe.append([safe_cell(value) for value in row])
        return safe

    def before_import_row(self, row: dict, **kwargs: object) -> None:
        for key, value in row.items():
            if isinstance(value, str):
                row[key] = unescape_cell(value)
        super().before_import_row(row, **kwargs)
