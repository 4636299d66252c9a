"""NYSE sessions from pandas-market-calendars, always asked with explicit bounds.

Schedules are built ten calendar years at a time and cached by year; nothing outside 1990-2099 is answered
(pandas-market-calendars' holiday rules are not meant for arbitrary centuries).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from functools import lru_cache

import numpy as np
import pandas as pd
import pandas_market_calendars as mcal

from sigmasight.exceptions import InsufficientHistory, ValidationFailed

FIRST_YEAR = 1990
LAST_YEAR = 2099


def _check(d: date) -> None:
    if not FIRST_YEAR <= d.year <= LAST_YEAR:
        raise ValueError(
            f"{d.isoformat()} is outside the supported calendar ({FIRST_YEAR}-{LAST_YEAR})."
        )


BLOCK_YEARS = 10  # building a schedule costs about the same for one year as for ten


@lru_cache(maxsize=16)
def _block_schedule(block: int) -> pd.DataFrame:
    first = FIRST_YEAR + block * BLOCK_YEARS
    last = min(first + BLOCK_YEARS - 1, LAST_YEAR)
    schedule = mcal.get_calendar("NYSE").schedule(
        start_date=f"{first}-01-01", end_date=f"{last}-12-31"
    )
    return pd.DataFrame(
        {"session": schedule.index.date, "close": schedule["market_close"].dt.to_pydatetime()}
    )


@lru_cache(maxsize=256)
def _year_schedule(year: int) -> pd.DataFrame:
    block = _block_schedule((year - FIRST_YEAR) // BLOCK_YEARS)
    years = np.array([d.year for d in block["session"]])
    return block[years == year].reset_index(drop=True)


@lru_cache(maxsize=256)
def _year_sessions(year: int) -> np.ndarray:
    return np.array(_year_schedule(year)["session"].to_numpy(), dtype="datetime64[D]")


def trading_days(start: date, end: date) -> list[date]:
    """NYSE sessions in [start, end], both inclusive, ascending."""
    _check(start)
    _check(end)
    if end < start:
        return []
    days = np.concatenate([_year_sessions(y) for y in range(start.year, end.year + 1)])
    lo, hi = np.datetime64(start, "D"), np.datetime64(end, "D")
    return [d.item() for d in days[(days >= lo) & (days <= hi)]]


def is_trading_day(d: date) -> bool:
    _check(d)
    return bool((_year_sessions(d.year) == np.datetime64(d, "D")).any())


FIRST_DAY = date(FIRST_YEAR, 1, 1)


def previous_trading_day(d: date) -> date:
    """The last session strictly before `d`."""
    sessions = trading_days(max(d - timedelta(days=15), FIRST_DAY), d - timedelta(days=1))
    if not sessions:
        raise ValueError(f"No NYSE session in the 15 days before {d.isoformat()}.")
    return sessions[-1]


def sessions_back(end: date, count: int) -> list[date]:
    """The last `count` sessions ending at or before `end`; fewer when the calendar begins
    (1990-01-01) first, so a caller needing `count` reports too little history."""
    span = timedelta(days=int(count * 1.5) + 15)
    while True:
        start = max(end - span, FIRST_DAY)
        sessions = trading_days(start, end)
        if len(sessions) >= count or start == FIRST_DAY:
            return sessions[-count:] if count > 0 else []
        span *= 2


def last_completed_session(now: datetime | None = None) -> date:
    """The latest session whose close (16:00 New York, earlier on half days) has passed."""
    now = now or datetime.now(tz=UTC)
    today = now.date()
    for session in reversed(trading_days(today - timedelta(days=15), today)):
        schedule = _year_schedule(session.year)
        close = schedule.loc[schedule["session"] == session, "close"].iloc[0]
        if close <= now:
            return session
    raise ValueError(f"No completed NYSE session in the 15 days before {now.isoformat()}.")


def session_for(as_of: date | None) -> date:
    """The session a request or run is about: `as_of` itself on a trading day, the session
    before it otherwise, the last completed session when not given."""
    if as_of is None:
        return last_completed_session()
    if not FIRST_YEAR <= as_of.year <= LAST_YEAR:
        message = f"as_of must be in {FIRST_YEAR}-{LAST_YEAR}."
        raise ValidationFailed(message, fields={"as_of": [message]})
    if is_trading_day(as_of):
        return as_of
    if as_of.year == FIRST_YEAR and not trading_days(FIRST_DAY, as_of):
        # Before the calendar's first session (1990-01-01 is a holiday): no session, no data.
        message = f"No trading session on or before {as_of.isoformat()}."
        raise InsufficientHistory(message, fields={"as_of": [message]})
    return previous_trading_day(as_of)
