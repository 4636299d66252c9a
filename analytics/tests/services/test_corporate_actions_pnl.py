"""Corporate actions in the day's numbers: a split moves no P&L and keeps market value
continuous; a dividend of the ex-date is in the session's daily P&L (and in cash)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from analytics.jobs import JOBS, daily
from analytics.selectors import book_frame
from analytics.services import positions_value
from marketdata.models import CorporateAction, DailyPrice
from marketdata.services import securities_ensure
from portfolios.corporate_actions import corporate_actions_apply
from portfolios.models import Portfolio, Position
from portfolios.tests.factories import PortfolioFactory, stock

pytestmark = pytest.mark.django_db

BEFORE, EX = date(2024, 3, 1), date(2024, 3, 4)
RECORDED = datetime(2024, 1, 2, 12, tzinfo=UTC)


def close(symbol: str, day: date, value: str, fetched: datetime) -> None:
    DailyPrice.objects.create(
        security_id=securities_ensure([symbol])[symbol],
        date=day,
        close=Decimal(value),
        adjusted_close=Decimal(value),
        source="polygon",
        fetched_at=fetched,
    )


def action(symbol: str, **terms: object) -> None:
    CorporateAction.objects.create(
        security_id=securities_ensure([symbol])[symbol], ex_date=EX, source="csv", **terms
    )


def test_four_for_one_split_moves_no_pnl_and_keeps_value_continuous() -> None:
    book = PortfolioFactory()
    stock(book, "AAPL", "10", entry_price="300")
    Position.objects.update(created_at=RECORDED)
    close("AAPL", BEFORE, "400", RECORDED)  # cached before the split
    value_before = book_frame([book.id], BEFORE)[0]["market_value"].sum()
    action("AAPL", kind="split", split_to=Decimal(4), split_from=Decimal(1))

    corporate_actions_apply(as_of=EX, portfolio_ids=[book.id])
    close("AAPL", EX, "101", datetime(2024, 3, 4, 21, tzinfo=UTC))  # post-split close
    frame, _ = book_frame([book.id], EX)

    # The unsplit book: 10 shares from 400 to 404 (= 4 x 101).
    assert frame["daily_pnl"].sum() == pytest.approx(10 * (404 - 400))
    assert frame["market_value"].sum() == pytest.approx(10 * 404)
    assert frame["unrealized_pnl"].sum() == pytest.approx(10 * (404 - 300))
    # The previous session, re-read after the split: the same value, in post-split terms.
    again = book_frame([book.id], BEFORE)[0]
    assert again["market_value"].sum() == pytest.approx(value_before)


def test_dividend_is_in_cash_and_in_the_days_pnl() -> None:
    longs = PortfolioFactory(cash=Decimal("1000"))
    shorts = PortfolioFactory(cash=Decimal("1000"))
    stock(longs, "KO", "100", entry_price="60")
    stock(shorts, "KO", "-50", entry_price="60")
    Position.objects.update(created_at=RECORDED)
    close("KO", BEFORE, "60.00", RECORDED)
    close("KO", EX, "59.50", RECORDED)  # the close drops by the dividend
    action("KO", kind="cash_dividend", cash_amount=Decimal("0.50"))

    corporate_actions_apply(as_of=EX, portfolio_ids=[longs.id, shorts.id])
    frame, _ = book_frame([longs.id, shorts.id], EX)
    positions_value(as_of=EX, portfolio_ids=[longs.id, shorts.id])

    pnl = frame.groupby("portfolio_id")["daily_pnl"].sum()
    assert pnl[longs.id] == pytest.approx(0.0)  # -50 on the price, +50 in cash
    assert pnl[shorts.id] == pytest.approx(0.0)  # +25 on the price, -25 paid
    assert Portfolio.objects.get(pk=longs.pk).cash == Decimal("1050.00")
    assert Portfolio.objects.get(pk=shorts.pk).cash == Decimal("975.00")
    assert Position.objects.get(portfolio=longs).daily_pnl == Decimal("0.00")
    # The session after: no dividend any more.
    assert book_frame([longs.id], date(2024, 3, 5))[0]["daily_pnl"].sum() == pytest.approx(0.0)


def test_corporate_actions_job_runs_before_market_data() -> None:
    job = JOBS["corporate_actions"]
    assert (job.trigger, job.writes_inputs) == ("market-data", True)
    assert daily().index("corporate_actions") < daily().index("market_data")


def test_corporate_actions_job_applies_what_is_stored(settings) -> None:
    settings.SIGMASIGHT_MARKET_DATA_SOURCE = "synthetic"
    book = PortfolioFactory(cash=Decimal("0"))
    stock(book, "KO", "10")
    Position.objects.update(created_at=RECORDED)
    action("KO", kind="cash_dividend", cash_amount=Decimal("1"))

    first = JOBS["corporate_actions"].run(EX, [book.id], None)
    second = JOBS["corporate_actions"].run(EX, [book.id], None)

    assert (first["actions"], first["dividends"], first["actions_fetched"]) == (1, 1, 0)
    assert second["actions_applied"] == 0
    assert Portfolio.objects.get(pk=book.pk).cash == Decimal("10.00")
