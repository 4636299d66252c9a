"""The one rule for the cells of every file we write: user text never runs, and always writes.

Report CSV and XLSX, the position export, trade blotters and FIX files, the price export and
every download of the admin's import-export pass each cell through `safe_cell`:

- Text starting with `=`, `+`, `-`, `@`, a tab or a carriage return gets a leading apostrophe
  (OWASP's CSV-injection rule), so a spreadsheet shows it instead of running it; in an XLSX
  such text is a string cell, never a formula. Text that already starts with apostrophes before
  one of those characters gets one more, so `unescape_cell` (which removes exactly one) gives
  back what was stored: an export imports back unchanged.
- Numbers stay numbers: ints, floats and Decimals are returned as they are, and so is text
  that is a plain number (`-5`, `-0.25`, `1e-05`), which a spreadsheet reads as that number.
- C0 and C1 control characters other than tab, line feed and carriage return become U+FFFD:
  XML 1.0 (XLSX) cannot hold them, and whatever is already stored must still export.

`csv_writer` is the CSV writer of our own files: every cell through `safe_cell`, lines ending
in "\n", and a cell holding a carriage return quoted (Python's writer quotes only the characters
of its line terminator, so with "\n" a bare "\r" would split the row when read back).

Pure Python: the FIX encoder uses it too.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from typing import Protocol, overload

REPLACEMENT = "\ufffd"
_TRIGGER = r"[=+\-@\t\r]"
_NEEDS_QUOTE = re.compile(rf"'*{_TRIGGER}")
_QUOTED = re.compile(rf"'+{_TRIGGER}")
_PLAIN_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_UNWRITABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


@overload
def safe_cell(value: str) -> str: ...
@overload
def safe_cell(value: object) -> object: ...
def safe_cell(value: object) -> object:
    """`value` as a file may hold it: text neutralised and cleaned, anything else unchanged."""
    if not isinstance(value, str):
        return value
    text = _UNWRITABLE.sub(REPLACEMENT, value)
    if _QUOTED.match(text):
        return "'" + text
    if _NEEDS_QUOTE.match(text) and not _PLAIN_NUMBER.fullmatch(text):
        return "'" + text
    return text


class TextSink(Protocol):
    """Where text goes: a file, a StringIO, a management command's stdout."""

    def write(self, text: str, /) -> object: ...


class SafeCsvWriter:
    def __init__(self, out: TextSink) -> None:
        self._out = out
        self._row = io.StringIO()
        self._writer = csv.writer(self._row, lineterminator="\r\n")

    def writerow(self, cells: Iterable[object]) -> None:
        self._row.seek(0)
        self._row.truncate()
        self._writer.writerow([safe_cell(cell) for cell in cells])
        self._out.write(self._row.getvalue()[:-2] + "\n")


def csv_writer(out: TextSink) -> SafeCsvWriter:
    return SafeCsvWriter(out)


def unescape_cell(text: str) -> str:
    """A cell read back from a file `safe_cell` wrote: the one apostrophe it added removed."""
    return text[1:] if _QUOTED.match(text) else text
