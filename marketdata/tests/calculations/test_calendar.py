from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from marketdata import calendar


def test_trading_days_2024_has_252_nyse_sessions():
    assert len(calendar.trading_days(date(2024, 1, 1), date(2024, 12, 31))) == 252


def test_trading_days_skip_thanksgiving_and_weekends():
    days = calendar.trading_days(date(2024, 11, 25), date(2024, 12, 2))
    assert date(2024, 11, 28) not in days
    assert days == [
        date(2024, 11, 25),
        date(2024, 11, 26),
        date(2024, 11, 27),
        date(2024, 11, 29),
        date(2024, 12, 2),
    ]
    assert not calendar.is_trading_day(date(2024, 11, 28))
    assert calendar.is_trading_day(date(2024, 11, 29))


def test_previous_trading_day_crosses_holiday_and_weekend():
    assert calendar.previous_trading_day(date(2024, 11, 29)) == date(2024, 11, 27)
    assert calendar.previous_trading_day(date(2024, 12, 2)) == date(2024, 11, 29)
    assert calendar.previous_trading_day(date(2025, 1, 2)) == date(2024, 12, 31)


def test_last_completed_session_waits_for_the_close_including_half_days():
    # 2024-11-29 closed early at 13:00 New York (18:00 UTC).
    assert calendar.last_completed_session(datetime(2024, 11, 29, 17, 59, tzinfo=UTC)) == date(
        2024, 11, 27
    )
    assert calendar.last_completed_session(datetime(2024, 11, 29, 18, 1, tzinfo=UTC)) == date(
        2024, 11, 29
    )
    # A regular day closes at 16:00 New York = 21:00 UTC in winter.
    assert calendar.last_completed_session(datetime(2024, 12, 2, 20, 59, tzinfo=UTC)) == date(
        2024, 11, 29
    )
    assert calendar.last_completed_session(datetime(2024, 12, 2, 21, 0, tzinfo=UTC)) == date(
        2024, 12, 2
    )


def test_sessions_back_stops_at_the_calendars_first_day():
    sessions = calendar.sessions_back(date(1990, 3, 1), 252)
    assert sessions[0] == date(1990, 1, 2) and sessions[-1] == date(1990, 3, 1)
    assert len(sessions) == len(calendar.trading_days(date(1990, 1, 1), date(1990, 3, 1))) < 252
    assert calendar.previous_trading_day(date(1990, 1, 3)) == date(1990, 1, 2)


def test_sessions_back_counts_sessions_not_days():
    sessions = calendar.sessions_back(date(2024, 12, 31), 252)
    assert len(sessions) == 252
    assert sessions[0] == date(2024, 1, 2)
    assert sessions[-1] == date(2024, 12, 31)


def test_calendar_refuses_dates_outside_explicit_bounds():
    with pytest.raises(ValueError, match="outside the supported calendar"):
        calendar.trading_days(date(1850, 1, 1), date(1850, 12, 31))
    assert calendar.trading_days(date(2024, 12, 31), date(2024, 1, 1)) == []
