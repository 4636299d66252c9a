"""The export rule (`safe_cell`, `unescape_cell`) and the control-character rule (the validator),
on their own; every writer and entry point is tested in its app with these same names."""

from __future__ import annotations

import csv
import io
from datetime import date
from decimal import Decimal

import pytest
from django.contrib import admin
from django.core.exceptions import ValidationError
from import_export.admin import ExportMixin, ImportMixin

from sigmasight.exports import csv_writer, safe_cell, unescape_cell
from sigmasight.resources import SafeModelResource
from sigmasight.validators import (
    NoControlCharacters,
    no_control_characters,
    no_control_characters_multiline,
)

DANGEROUS = [
    '=HYPERLINK("http://example.com","open")',
    "@SUM(1+1)",
    "+cmd|' /C calc'!A0",
    "-2+3",
    "\t=1+1",
    "\r=1+1",
]


@pytest.mark.parametrize("text", DANGEROUS)
def test_safe_cell_prefixes_text_starting_with_a_formula_character(text):
    assert safe_cell(text) == "'" + text


@pytest.mark.parametrize(
    "value",
    [
        -5,
        -0.25,
        Decimal("-5.000001"),
        "-5",
        "-0.25",
        "+5",
        "-1e-05",
        ".5",
        "plain",
        "",
        "a=b",
        date(2024, 1, 2),
        None,
        True,
    ],
)
def test_safe_cell_leaves_numbers_and_harmless_text_alone(value):
    assert safe_cell(value) == value
    assert type(safe_cell(value)) is type(value)


@pytest.mark.parametrize("text", ["-5% stop", "- 5", "-inf", "-1,000", "+44 20 7946 0000", "-٣"])
def test_safe_cell_escapes_text_that_only_looks_numeric(text):
    assert safe_cell(text) == "'" + text


def test_safe_cell_replaces_control_characters_but_keeps_tabs_and_line_breaks():
    assert safe_cell("bad\x1a\x06name\x7f\x85") == "bad\ufffd\ufffdname\ufffd\ufffd"
    assert safe_cell("two\nlines\r\nand\ta tab") == "two\nlines\r\nand\ta tab"
    assert safe_cell("\x00=1") == "\ufffd=1"


@pytest.mark.parametrize("text", [*DANGEROUS, "'=already quoted", "''-x", "'-5", "-5", "'plain"])
def test_unescape_cell_gives_back_what_safe_cell_was_given(text):
    assert unescape_cell(safe_cell(text)) == text


def test_csv_writer_neutralises_cells_and_quotes_a_carriage_return():
    out = io.StringIO()
    writer = csv_writer(out)
    writer.writerow(["name", "quantity", "notes"])
    writer.writerow(["\r=1+1", -5, "a\rb"])
    writer.writerow(["=x", "-5", "two\nlines"])
    assert out.getvalue().count("\n") == 4  # three rows and the line break inside a cell
    rows = list(csv.reader(io.StringIO(out.getvalue(), newline="")))
    assert rows == [
        ["name", "quantity", "notes"],
        ["'\r=1+1", "-5", "a\rb"],
        ["'=x", "-5", "two\nlines"],
    ]


@pytest.mark.parametrize(
    "text", ["bad\x1a\x06name", "\x00", "a\x1fb", "a\x7fb", "a\x85b", "a\x9fb"]
)
def test_no_control_characters_refuses_c0_and_c1(text):
    for validator in (no_control_characters, no_control_characters_multiline):
        with pytest.raises(ValidationError) as caught:
            validator(text)
        assert caught.value.code == "control_character"
        assert "U+" in caught.value.messages[0]


@pytest.mark.parametrize("text", ["a\tb", "two\nlines", "windows\r\nlines"])
def test_no_control_characters_allows_tabs_and_line_breaks_only_when_multiline(text):
    no_control_characters_multiline(text)
    with pytest.raises(ValidationError):
        no_control_characters(text)


def test_no_control_characters_accepts_ordinary_text_and_compares_for_migrations():
    no_control_characters("Café \u2013 €100 \u00a0 ✓ 日本")
    assert NoControlCharacters() == no_control_characters
    assert NoControlCharacters(multiline=True) != no_control_characters


def test_every_admin_download_and_import_is_built_on_the_safe_resource(rf):
    request = rf.get("/")
    checked = []
    for model, model_admin in admin.site._registry.items():
        if isinstance(model_admin, ExportMixin):
            classes = list(model_admin.get_export_resource_classes(request))
            if isinstance(model_admin, ImportMixin):
                classes += model_admin.get_import_resource_classes(request)
            assert all(issubclass(c, SafeModelResource) for c in classes), model
            checked.append(model._meta.label)
    assert {"portfolios.Portfolio", "portfolios.Tag", "analytics.PositionGreeks"} <= set(checked)
