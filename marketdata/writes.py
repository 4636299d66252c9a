"""Bulk upsert of daily prices: the one write path for providers, CSV imports and chains.

Rows go in as floats through plain SQL: the ORM's per-value Decimal conversion costs more than
the insert itself at these volumes (a 200,000-row backfill). PostgreSQL gets COPY into a temporary
table and one INSERT .. ON CONFLICT; SQLite an executemany of the same upsert.
"""

from __future__ import annotations

import io
import math
from datetime import datetime

import numpy as np
import pandas as pd
from django.db import connection, transaction

from marketdata.models import DailyPrice

COLUMNS = [
    "security_id", "date", "open", "high", "low", "close", "adjusted_close", "volume",
    "implied_volatility", "source", "fetched_at",
]  # fmt: skip
_UPDATE = [c for c in COLUMNS if c not in ("security_id", "date")]


def _sql_columns() -> str:
    return ", ".join(connection.ops.quote_name(c) for c in COLUMNS)


def _conflict_clause() -> str:
    quote = connection.ops.quote_name
    updates = ", ".join(f"{quote(c)} = excluded.{quote(c)}" for c in _UPDATE)
    return f"ON CONFLICT ({quote('security_id')}, {quote('date')}) DO UPDATE SET {updates}"


def _records(frame: pd.DataFrame, source: str, fetched_at: datetime) -> list[tuple]:
    def column(name: str) -> list:
        if name not in frame:
            return [None] * len(frame)
        values = frame[name].to_numpy(dtype=object)
        return [
            None if v is None or (isinstance(v, float) and math.isnan(v)) else v for v in values
        ]

    volume = column("volume")
    volume = [None if v is None else int(v) for v in volume]
    numeric = {
        name: [None if v is None else float(v) for v in column(name)]
        for name in ("open", "high", "low", "close", "adjusted_close", "implied_volatility")
    }
    return list(
        zip(
            frame["security_id"].astype(np.int64).tolist(),
            frame["date"].tolist(),
            numeric["open"], numeric["high"], numeric["low"], numeric["close"],
            numeric["adjusted_close"], volume, numeric["implied_volatility"],
            [source] * len(frame), [fetched_at] * len(frame),
            strict=True,
        )
    )  # fmt: skip


def prices_upsert(frame: pd.DataFrame, *, source: str, fetched_at: datetime) -> int:
    """Insert or update rows (security_id, date, open .. volume[, implied_volatility])."""
    if frame.empty:
        return 0
    records = _records(frame, source, fetched_at)
    table = connection.ops.quote_name(DailyPrice._meta.db_table)
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            _copy_upsert(cursor, table, records)
        else:
            placeholders = ", ".join(["%s"] * len(COLUMNS))
            cursor.executemany(
                f"INSERT INTO {table} ({_sql_columns()}) VALUES ({placeholders}) "
                f"{_conflict_clause()}",
                records,
            )
    return len(records)


def _copy_upsert(cursor, table: str, records: list[tuple]) -> None:
    columns = _sql_columns()
    # Only the loaded columns (no id): LIKE would copy id's NOT NULL without its identity.
    cursor.execute(
        "CREATE TEMPORARY TABLE IF NOT EXISTS dailyprice_load ON COMMIT DELETE ROWS AS "
        f"SELECT {columns} FROM {table} WITH NO DATA"
    )
    # Within one outer transaction ON COMMIT has not fired yet: start from an empty table.
    cursor.execute("TRUNCATE dailyprice_load")
    buffer = io.StringIO()
    for row in records:
        buffer.write("\t".join(r"\N" if v is None else str(v) for v in row))
        buffer.write("\n")
    with cursor.cursor.copy(f"COPY dailyprice_load ({columns}) FROM STDIN") as copy:
        copy.write(buffer.getvalue())
    cursor.execute(
        f"INSERT INTO {table} ({columns}) SELECT {columns} FROM dailyprice_load "
        f"{_conflict_clause()}"
    )
