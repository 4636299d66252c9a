"""Bulk upsert of daily prices: the one write path for providers, CSV imports and chains.

Rows go in as floats through plain SQL: the ORM's per-value Decimal conversion costs more than
the insert itself at these volumes (a 200,000-row backfill). The shared upsert gives PostgreSQL
COPY into a temporary table and one INSERT .. ON CONFLICT; SQLite an executemany.
"""

from __future__ import annotations

import math
from datetime import date, datetime
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from marketdata.models import DailyPrice
from sigmasight.api.caching import everything_changed
from sigmasight.db import records, upsert_records


class PriceRow(NamedTuple):
    """A `DailyPrice` row as upserted (prices as floats; None where the frame has none)."""

    security_id: int
    date: date
    open: float | None
    high: float | None
    low: float | None
    close: float | None
    adjusted_close: float | None
    volume: int | None
    implied_volatility: float | None
    source: str
    fetched_at: datetime


def _records(frame: pd.DataFrame, source: str, fetched_at: datetime) -> list[PriceRow]:
    def column(name: str) -> list[Any]:
        if name not in frame:
            return [None] * len(frame)
        values = frame[name].to_numpy(dtype=object)
        return [
            None if v is None or (isinstance(v, float) and math.isnan(v)) else v for v in values
        ]

    def numbers(name: str) -> list[float | None]:
        return [None if v is None else float(v) for v in column(name)]

    return records(
        PriceRow,
        security_id=frame["security_id"].astype(np.int64).tolist(),
        date=frame["date"].tolist(),
        open=numbers("open"),
        high=numbers("high"),
        low=numbers("low"),
        close=numbers("close"),
        adjusted_close=numbers("adjusted_close"),
        volume=[None if v is None else int(v) for v in column("volume")],
        implied_volatility=numbers("implied_volatility"),
        source=[source] * len(frame),
        fetched_at=[fetched_at] * len(frame),
    )


def prices_upsert(frame: pd.DataFrame, *, source: str, fetched_at: datetime) -> int:
    """Insert or update rows (security_id, date, open .. volume[, implied_volatility])."""
    if frame.empty:
        return 0
    written = upsert_records(
        DailyPrice, _records(frame, source, fetched_at), unique=["security_id", "date"]
    )
    everything_changed()  # any portfolio may hold these symbols: cached reads show their closes
    return written
