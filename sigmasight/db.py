"""Fast bulk inserts for the few places that write tens of thousands of rows in one request.

`bulk_create` prepares every value through its model field (Decimal quantisation, timezone
handling), which dominated a 10,000-position import. Here rows carry values the drivers adapt
themselves (str, int, Decimal, date, None); timestamps are prepared once through the field.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from django.db import connection, models


def db_timestamp(model: type[models.Model], field: str, value: datetime) -> object:
    return model._meta.get_field(field).get_db_prep_save(value, connection)


def insert_rows(
    model: type[models.Model], columns: Sequence[str], rows: Sequence[Sequence[object]]
) -> int:
    """INSERT rows (tuples in `columns` order, by field attname) in one executemany."""
    if not rows:
        return 0
    quote = connection.ops.quote_name
    names = ", ".join(quote(model._meta.get_field(c).column) for c in columns)
    placeholders = ", ".join(["%s"] * len(columns))
    with connection.cursor() as cursor:
        cursor.executemany(
            f"INSERT INTO {quote(model._meta.db_table)} ({names}) VALUES ({placeholders})", rows
        )
    return len(rows)


def upsert_rows(
    model: type[models.Model],
    columns: Sequence[str],
    rows: Sequence[Sequence[object]],
    *,
    unique: Sequence[str],
) -> int:
    """INSERT .. ON CONFLICT (unique) DO UPDATE for every other column, in one executemany.
    Re-running a day writes the same rows again instead of duplicating them."""
    if not rows:
        return 0
    quote = connection.ops.quote_name
    column_names = [model._meta.get_field(c).column for c in columns]
    key_names = [model._meta.get_field(c).column for c in unique]
    updates = ", ".join(
        f"{quote(c)} = excluded.{quote(c)}" for c in column_names if c not in key_names
    )
    placeholders = ", ".join(["%s"] * len(columns))
    with connection.cursor() as cursor:
        cursor.executemany(
            f"INSERT INTO {quote(model._meta.db_table)} ({', '.join(quote(c) for c in column_names)}) "
            f"VALUES ({placeholders}) ON CONFLICT ({', '.join(quote(c) for c in key_names)}) "
            f"DO UPDATE SET {updates}",
            rows,
        )
    return len(rows)


def fetch_rows(queryset: models.QuerySet) -> list[tuple]:
    """The rows of a `values_list` queryset straight from the driver, skipping the per-value
    field converters (Decimal quantisation, date parsing) that dominate reading a few hundred
    thousand prices. Callers cast in SQL (e.g. `Cast(..., FloatField())`) and parse dates
    themselves: SQLite answers dates as ISO strings, PostgreSQL as `date`."""
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()
