"""Position CSV files the API refuses: `POST portfolios/{id}/upload/` with a bad file, one over
the row or size limit, no file, an unknown mode, a JSON body, another user's book or no token.

Every refused file must leave the database exactly as it was, so each case compares a snapshot
taken before and after the request: row counts, and the existing lots, their tags and the
strategies as stored. The parser's own errors, without the API: calculations/test_position_csv.py.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.test import override_settings

from portfolios.tests.helpers import (
    post_file,
    problem_cells,
    snapshot,
    upload_url,
)
from portfolios.tests.position_files import (
    BAD_FILES,
    after_good,
    csv_file,
    lines,
    many_tags,
    row,
)
from sigmasight.tests.helpers import assert_envelope

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(raw, cells) for _, raw, cells in BAD_FILES],
    ids=[n for n, *_ in BAD_FILES],
)
def test_upload_bad_file_lists_problems_and_writes_nothing(
    auth_client, portfolio, raw: bytes, expected: list[tuple[int, str]]
):
    before = snapshot(portfolio)
    error = assert_envelope(post_file(auth_client, portfolio, raw), 400, "validation_error")
    assert problem_cells(error) == expected
    assert snapshot(portfolio) == before


def test_upload_zero_byte_file_is_refused_by_the_form(auth_client, portfolio):
    before = snapshot(portfolio)
    error = assert_envelope(post_file(auth_client, portfolio, b""), 400, "validation_error")
    assert list(error["fields"]) == ["file"]
    assert snapshot(portfolio) == before


def test_upload_over_row_limit_is_413_and_writes_nothing(auth_client, portfolio):
    before = snapshot(portfolio)
    records = [
        {
            "symbol": f"R{i % 50}",
            "quantity": "1",
            "entry_price": "1",
            "entry_date": (date(2000, 1, 3) + timedelta(days=i // 50)).isoformat(),
        }
        for i in range(10_001)
    ]
    raw = csv_file(records)
    assert len(raw) < 5 * 1024 * 1024
    assert_envelope(post_file(auth_client, portfolio, raw), 413, "payload_too_large")
    assert snapshot(portfolio) == before


@override_settings(SIGMASIGHT_UPLOAD_MAX_ROWS=3)
def test_upload_over_configured_row_limit_is_413_even_after_bad_rows(auth_client, portfolio):
    before = snapshot(portfolio)
    raw = lines(row(quantity="0"), *(row(symbol=f"N{i}") for i in range(3)))
    assert_envelope(post_file(auth_client, portfolio, raw), 413, "payload_too_large")
    assert snapshot(portfolio) == before


@pytest.mark.parametrize("size", [5 * 1024 * 1024 + 1, 7 * 1024 * 1024], ids=["5MB+1", "7MB"])
def test_upload_over_five_megabytes_is_413_and_writes_nothing(auth_client, portfolio, size: int):
    before = snapshot(portfolio)
    head = after_good()
    raw = head + b"\n" * (size - len(head))  # blank lines: a valid file but for its size
    assert len(raw) == size
    error = assert_envelope(post_file(auth_client, portfolio, raw), 413, "payload_too_large")
    assert "5,242,880" in error["message"]
    assert snapshot(portfolio) == before


@override_settings(SIGMASIGHT_UPLOAD_MAX_BYTES=2_048)
def test_upload_size_limit_is_inclusive(auth_client, portfolio):
    head = after_good()
    exactly = head + b"\n" * (2_048 - len(head))
    before = snapshot(portfolio)
    assert_envelope(post_file(auth_client, portfolio, exactly + b"\n"), 413, "payload_too_large")
    assert snapshot(portfolio) == before
    response = post_file(auth_client, portfolio, exactly)
    assert response.status_code == 200, response.content
    assert response.json() == {"created": 2, "updated": 0, "total": 2}


def test_upload_without_file_is_400(auth_client, portfolio):
    before = snapshot(portfolio)
    response = auth_client.post(upload_url(portfolio), {"mode": "append"}, format="multipart")
    error = assert_envelope(response, 400, "validation_error")
    assert list(error["fields"]) == ["file"]
    assert snapshot(portfolio) == before


def test_upload_unknown_mode_is_400(auth_client, portfolio):
    before = snapshot(portfolio)
    error = assert_envelope(post_file(auth_client, portfolio, after_good(), "sideways"), 400)
    assert list(error["fields"]) == ["mode"]
    assert snapshot(portfolio) == before


def test_upload_json_body_is_415(auth_client, portfolio):
    before = snapshot(portfolio)
    response = auth_client.post(
        upload_url(portfolio), {"file": after_good().decode(), "mode": "append"}, format="json"
    )
    assert_envelope(response, 415, "unsupported_media_type")
    assert snapshot(portfolio) == before


def test_upload_replace_with_bad_file_keeps_old_positions(auth_client, portfolio):
    before = snapshot(portfolio)
    raw = after_good(row(quantity="NaN"))
    error = assert_envelope(post_file(auth_client, portfolio, raw, "replace"), 400)
    assert problem_cells(error) == [(4, "quantity")]
    assert snapshot(portfolio) == before


def test_upload_replace_failing_in_the_database_phase_keeps_old_positions(auth_client, portfolio):
    """The tag limit is checked after the old positions would go: the swap must roll back."""
    before = snapshot(portfolio)
    raw = lines(*(row(symbol=f"S{i}", tags=many_tags(25, 25 * i)) for i in range(5)))
    error = assert_envelope(post_file(auth_client, portfolio, raw, "replace"), 400)
    assert problem_cells(error) == [(5, "tags")]
    assert snapshot(portfolio) == before


@pytest.mark.parametrize("text", ["20240102", "2024-W01-2"])
def test_upload_refuses_dates_not_in_yyyy_mm_dd_form(auth_client, portfolio, text: str):
    before = snapshot(portfolio)
    error = assert_envelope(
        post_file(auth_client, portfolio, after_good(row(entry_date=text))), 400
    )
    assert problem_cells(error) == [(4, "entry_date")]
    assert snapshot(portfolio) == before


def test_upload_refuses_expirations_an_occ_symbol_cannot_hold(auth_client, portfolio):
    before = snapshot(portfolio)
    raw = after_good(row(symbol="AAPL", option_type="C", strike="200", expiration="2100-01-15"))
    error = assert_envelope(post_file(auth_client, portfolio, raw), 400)
    assert [r for r, _ in problem_cells(error)] == [4]
    assert snapshot(portfolio) == before


def test_upload_refuses_nul_characters(auth_client, portfolio):
    before = snapshot(portfolio)
    raw = after_good(row(notes="before\x00after"))
    error = assert_envelope(post_file(auth_client, portfolio, raw), 400)
    assert problem_cells(error) == [(4, "notes")]
    assert snapshot(portfolio) == before


def test_upload_wide_header_is_refused_before_looking_at_each_column(auth_client, portfolio):
    # 20,000 columns: refused as a whole (the format has 11), with no per-column work.
    raw = lines("x", header=",".join(f"c{i}" for i in range(20_000)))
    error = assert_envelope(post_file(auth_client, portfolio, raw), 400)
    assert error["fields"]["rows"] == [
        {"row": 1, "column": "", "message": "The header has 20,000 columns; the format has 11."}
    ]


def test_other_user_gets_404_even_with_a_bad_file(other_client, portfolio):
    assert_envelope(post_file(other_client, portfolio, b"junk"), 404, "not_found")


def test_upload_needs_authentication(api_client, portfolio):
    before = snapshot(portfolio)
    assert_envelope(post_file(api_client, portfolio, after_good()), 401)
    assert snapshot(portfolio) == before
