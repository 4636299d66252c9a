"""What every uploaded CSV of market data shares (prices, dividend yields, corporate actions):
UTF-8 text (a BOM allowed), a header row, and a refusal that lists every problem with its row
(the header is row 1; 0 is the file itself) and column."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import IO


class FileProblems(Exception):
    """A file refused: `errors` lists each problem as {"row", "column", "message"}."""

    what = "file"

    def __init__(self, errors: list[dict]) -> None:
        super().__init__(f"{len(errors)} problem(s) in the {self.what}")
        self.errors = errors


def csv_rows(
    stream: IO[bytes] | IO[str], error: type[FileProblems]
) -> tuple[list[str], Iterator[list[str]]]:
    """The file's header (trimmed, lower-cased) and its remaining rows, or `error` when it is not
    UTF-8 text or is empty."""
    raw = stream.read()
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            message = f"The file is not UTF-8 text ({exc.reason})."
            raise error([{"row": 0, "column": "", "message": message}]) from exc
    reader = csv.reader(io.StringIO(raw, newline=""))
    header = [h.strip().lower() for h in next(reader, None) or []]
    if not header:
        raise error([{"row": 1, "column": "", "message": "The file is empty."}])
    return header, reader
