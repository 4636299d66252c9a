"""The bulk helpers against the database under test (SQLite, or PostgreSQL's COPY paths)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import numpy as np
import pytest
from django.db import transaction
from django.db.models import FloatField
from django.db.models.functions import Cast

from marketdata.models import DailyPrice, Security
from sigmasight.db import (
    COPY_FROM_ROWS,
    fetch_frame,
    fetch_rows,
    insert_rows,
    unordered,
    update_rows,
    upsert_rows,
)

pytestmark = pytest.mark.django_db

COLUMNS = [
    "security_id",
    "date",
    "open",
    "high",
    "low",
    "close",
    "adjusted_close",
    "source",
    "fetched_at",
]
NOW = datetime(2026, 11, 20, 22, 0, tzinfo=UTC)


def _rows(securities, days, bump=0.0):
    return [
        (s.pk, d, 10.0, 11.0, 9.0, 10.5 + i + bump, None if i % 3 else 10.25 + i, "csv", NOW)
        for s in securities
        for i, d in enumerate(days)
    ]


@pytest.mark.parametrize("count", [3, COPY_FROM_ROWS + 7])  # executemany, then COPY on PostgreSQL
def test_upsert_inserts_then_updates_in_place(count):
    securities = [Security.objects.create(symbol=f"T{n:04d}") for n in range(count)]
    days = [date(2026, 11, 18), date(2026, 11, 19)]
    assert upsert_rows(DailyPrice, COLUMNS, _rows(securities, days), unique=["security", "date"])
    upsert_rows(DailyPrice, COLUMNS, _rows(securities, days, bump=1.0), unique=["security", "date"])
    assert DailyPrice.objects.count() == 2 * count
    row = DailyPrice.objects.get(security=securities[-1], date=days[1])
    assert float(row.close) == pytest.approx(12.5) and row.adjusted_close is None


@pytest.mark.parametrize("count", [3, COPY_FROM_ROWS + 7])  # executemany, then COPY on PostgreSQL
def test_insert_writes_every_row_with_its_nulls_text_and_timestamps(count):
    securities = [Security.objects.create(symbol=f"I{n:04d}") for n in range(count)]
    days = [date(2026, 11, 18), date(2026, 11, 19)]
    rows = [(*row[:7], "csv\tx\\y", row[8]) for row in _rows(securities, days)]
    assert insert_rows(DailyPrice, COLUMNS, rows) == 2 * count
    assert DailyPrice.objects.count() == 2 * count
    first = DailyPrice.objects.get(security=securities[0], date=days[0])
    second = DailyPrice.objects.get(security=securities[-1], date=days[1])
    assert first.adjusted_close is not None and second.adjusted_close is None
    assert float(first.adjusted_close) == pytest.approx(10.25)
    assert second.source == "csv\tx\\y" and second.fetched_at == NOW


def test_fetch_frame_matches_the_rows_with_nulls_and_text_kept():
    securities = [Security.objects.create(symbol=s) for s in ("NAN", "AAPL")]
    days = [date(2026, 11, 18), date(2026, 11, 19), date(2026, 11, 20)]
    upsert_rows(DailyPrice, COLUMNS, _rows(securities, days), unique=["security", "date"])
    queryset = DailyPrice.objects.order_by("security__symbol", "date").values_list(
        "date",
        "security__symbol",
        Cast("close", FloatField()),
        Cast("adjusted_close", FloatField()),
    )
    frame = fetch_frame(queryset, ["date", "symbol", "close", "adj"], text=["date", "symbol"])
    rows = fetch_rows(queryset)
    assert list(frame["symbol"]) == [r[1] for r in rows] == ["AAPL"] * 3 + ["NAN"] * 3
    assert [str(d) for d in frame["date"]] == [str(r[0]) for r in rows]
    assert list(frame["close"]) == [r[2] for r in rows]
    assert frame["adj"].isna().tolist() == [r[3] is None for r in rows] == [False, True, True] * 2


@pytest.mark.parametrize("symbols", [[], ["NONE"]])  # matches nothing: without / with a query
def test_fetch_frame_and_rows_of_nothing_are_empty(symbols):
    Security.objects.create(symbol="AAPL")
    queryset = DailyPrice.objects.filter(security__symbol__in=symbols).values_list(
        "security__symbol", Cast("close", FloatField())
    )
    assert fetch_rows(queryset) == []
    frame = fetch_frame(queryset, ["symbol", "close"], text=["symbol"])
    assert frame.empty and list(frame.columns) == ["symbol", "close"]


@pytest.mark.parametrize("count", [3, COPY_FROM_ROWS + 7])  # executemany, then COPY on PostgreSQL
def test_update_rows_sets_each_row_by_its_key_and_touches_no_other(count):
    """Each row's values (nulls and text included) land on the row with its key, twice in one
    outer transaction (the temporary table starts empty each time); other rows are untouched."""
    securities = [Security.objects.create(symbol=f"U{n:04d}") for n in range(count + 1)]
    day = date(2026, 11, 20)
    insert_rows(DailyPrice, COLUMNS, _rows(securities, [day]))
    ids = dict(DailyPrice.objects.values_list("security_id", "id"))
    changed = securities[:-1]
    with transaction.atomic():
        update_rows(
            DailyPrice,
            ["close", "source"],
            [(1.0, "first", ids[s.pk]) for s in changed],
        )
        assert update_rows(
            DailyPrice,
            ["close", "adjusted_close", "source"],
            [(20.0 + n, None, f"csv\t{n}", ids[s.pk]) for n, s in enumerate(changed)],
        ) == len(changed)
    rows = {r.security_id: r for r in DailyPrice.objects.filter(date=day).order_by("security_id")}
    for n, s in enumerate(changed):
        assert float(rows[s.pk].close) == 20.0 + n and rows[s.pk].adjusted_close is None
        assert rows[s.pk].source == f"csv\t{n}"
    untouched = rows[securities[-1].pk]
    assert float(untouched.close) == 10.5 and untouched.source == "csv"


@pytest.mark.parametrize("count", [3, COPY_FROM_ROWS + 7])  # executemany, then binary COPY
def test_numbers_dates_and_booleans_only_are_written_exactly_with_numpy_values(count):
    """A write whose columns are all numbers, dates or booleans (PostgreSQL copies those in
    binary): every value lands exactly, numpy scalars as well as Python ones, on insert and on
    the upsert's update."""
    from analytics.models import PositionInterestRateBeta
    from portfolios.tests.factories import PortfolioFactory, stock

    book = PortfolioFactory()
    positions = [stock(book, f"B{n:04d}", 1) for n in range(count)]
    columns = ["position_id", "date", "ir_beta", "r_squared", "observations"]
    day = date(2026, 11, 20)
    first = [(p.pk, day, np.float64(n) / 3.0, 0.5, np.int64(60)) for n, p in enumerate(positions)]
    assert insert_rows(PositionInterestRateBeta, columns, first) == count
    again = [(p.pk, day, -n / 7.0, np.float64(0.25), 61) for n, p in enumerate(positions)]
    upsert_rows(PositionInterestRateBeta, columns, again, unique=["position_id", "date"])
    stored = {r.position_id: r for r in PositionInterestRateBeta.objects.all()}
    assert len(stored) == count
    for n, p in enumerate(positions):
        row = stored[p.pk]
        assert (row.date, row.ir_beta, row.r_squared, row.observations) == (day, -n / 7.0, 0.25, 61)


def test_fetch_frame_drops_only_the_default_ordering():
    """Without an explicit order the model's default ordering is not asked of the database (the
    frame is keyed by its callers); an explicit order is kept. fetch_frame reads `unordered`'s
    queryset (on PostgreSQL by COPY, which the query log does not see)."""
    assert DailyPrice._meta.ordering  # a default ordering to drop
    plain = DailyPrice.objects.values_list("security__symbol", Cast("close", FloatField()))
    assert "ORDER BY" in str(plain.query)
    assert "ORDER BY" not in str(unordered(plain).query)
    assert str(unordered(plain.order_by("-date")).query) == str(plain.order_by("-date").query)
