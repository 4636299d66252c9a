"""Real prices for tests: the S&P 500 daily history 1999-2018 shipped with the `arch` package
(open, high, low, close, adjusted close, volume), written as an import_prices file."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from pathlib import Path

import pandas as pd
from arch.data import sp500


def sp500_frame(start: date, end: date, *, drop: Iterable[date] = ()) -> pd.DataFrame:
    """The index's sessions in [start, end] in the import columns, without the `drop` dates."""
    history = sp500.load().loc[pd.Timestamp(start) : pd.Timestamp(end)]
    frame = pd.DataFrame(
        {
            "date": history.index.date,
            "open": history["Open"].to_numpy(),
            "high": history["High"].to_numpy(),
            "low": history["Low"].to_numpy(),
            "close": history["Close"].to_numpy(),
            "volume": history["Volume"].to_numpy(),
            "adjusted_close": history["Adj Close"].to_numpy(),
        }
    )
    return frame[~frame["date"].isin(set(drop))].reset_index(drop=True)


def sp500_csv(
    path: Path, start: date, end: date, *, symbol: str = "SPX", drop: Iterable[date] = ()
) -> Path:
    """Write the slice as an import_prices file for `symbol`; return its path."""
    frame = sp500_frame(start, end, drop=drop)
    frame.insert(0, "symbol", symbol)
    frame.to_csv(path, index=False)
    return path
