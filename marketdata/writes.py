"""Bulk upsert of daily prices: the one write path for providers, CSV imports and chains.

Rows go in as floats through plain SQL: the ORM's per-value Decimal conversion costs more than
the insert itself at these volumes (a 200,000-row backfill). The shared upsert gives PostgreSQL
COPY into a temporary table and one INSERT .. ON CONFLICT; SQLite an executemany.
"""

from __future__ import annotations

import math
from datetime import datetime

import numpy as np
import pandas as pd

from marketdata.models import DailyPrice
from sigmasight.api.caching import everything_changed
from sigmasight.db import upsert_rows

COLUMNS = [
    "security_id", "date", "open", "high", "low", "close", "adjusted_close", "volume",
    "implied_volatility", "source", "fetched_at",
]  # fmt: skip


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
    written = upsert_rows(
        DailyPrice, COLUMNS, _records(frame, source, fetched_at), unique=["security_id", "date"]
    )
    everything_changed()  # any portfolio may hold these symbols: cached reads show their closes
    return written
