"""Applying splits and dividends to the books on the ex-date: the rules, once, audited."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from marketdata.models import CorporateAction, DailyPrice, PriceAdjustment, Security
from marketdata.services import securities_ensure
from marketdata.symbols import build_occ
from portfolios.corporate_actions import corporate_actions_apply
from portfolios.models import AppliedCorporateAction, Portfolio, Position
from portfolios.tests.factories import PortfolioFactory, option, stock
from sigmasight.audit.models import AuditEvent

pytestmark = pytest.mark.django_db

EX = date(2024, 3, 4)  # a Monday session
BEFORE = date(2024, 3, 1)
EXP = date(2024, 12, 20)
RECORDED = datetime(2024, 1, 2, 12, tzinfo=UTC)  # positions recorded long before the ex-date


def held(position: Position) -> Position:
    Position.objects.filter(pk=position.pk).update(created_at=RECORDED)
    position.refresh_from_db()
    return position


def split(symbol: str, to: int, frm: int, ex: date = EX) -> CorporateAction:
    return CorporateAction.objects.create(
        security_id=securities_ensure([symbol])[symbol],
        kind="split",
        split_to=Decimal(to),
        split_from=Decimal(frm),
        ex_date=ex,
        source="csv",
    )


def dividend(symbol: str, amount: str) -> CorporateAction:
    return CorporateAction.objects.create(
        security_id=securities_ensure([symbol])[symbol],
        kind="cash_dividend",
        cash_amount=Decimal(amount),
        ex_date=EX,
        pay_date=date(2024, 3, 14),
        source="csv",
    )


def bar(symbol: str, day: date, close: str, source: str = "polygon", fetched: datetime = RECORDED):
    return DailyPrice.objects.create(
        security_id=securities_ensure([symbol])[symbol],
        date=day,
        open=Decimal(close),
        high=Decimal(close),
        low=Decimal(close),
        close=Decimal(close),
        adjusted_close=Decimal(close),
        source=source,
        fetched_at=fetched,
    )


def test_stock_split_multiplies_quantity_and_divides_entry_price() -> None:
    book = PortfolioFactory()
    lot = held(stock(book, "AAPL", "10", entry_price="400"))
    split("AAPL", 4, 1)

    report = corporate_actions_apply(as_of=EX, portfolio_ids=[book.id])

    lot.refresh_from_db()
    assert (lot.quantity, lot.entry_price) == (Decimal("40"), Decimal("100"))
    assert lot.quantity * lot.entry_price == Decimal("4000")  # cost basis unchanged
    assert report.stock_splits == 1
    (record,) = AppliedCorporateAction.objects.all()
    assert (record.rule, record.old_quantity, record.new_quantity) == (
        "stock_split",
        Decimal("10"),
        Decimal("40"),
    )


def test_stock_split_divides_unadjusted_closes_once() -> None:
    book = PortfolioFactory()
    held(stock(book, "AAPL", "10", entry_price="400"))
    split("AAPL", 4, 1)
    raw = bar("AAPL", BEFORE, "400")  # fetched before the split: not adjusted
    csv_row = bar("AAPL", date(2024, 2, 29), "396", source="csv", fetched=datetime.now(UTC))
    adjusted = bar("AAPL", date(2024, 2, 28), "98", fetched=datetime(2024, 3, 5, tzinfo=UTC))
    bar("AAPL", EX, "101", fetched=datetime(2024, 3, 5, tzinfo=UTC))

    first = corporate_actions_apply(as_of=EX, portfolio_ids=[book.id])
    again = corporate_actions_apply(as_of=EX, portfolio_ids=[book.id])

    assert first.prices_adjusted == 2
    assert again.prices_adjusted == 0
    closes = {p.pk: p.close for p in DailyPrice.objects.all()}
    assert closes[raw.pk] == Decimal("100")
    assert closes[csv_row.pk] == Decimal("99")
    assert closes[adjusted.pk] == Decimal("98")  # Polygon served it split-adjusted already
    assert PriceAdjustment.objects.get().rows == 2


def test_option_integer_split_makes_new_contracts() -> None:
    book = PortfolioFactory()
    call = held(option(book, "AAPL", EXP, "C", "200", "3", entry_price="12"))
    old_symbol = call.symbol
    bar(old_symbol, BEFORE, "12")
    split("AAPL", 2, 1)

    report = corporate_actions_apply(as_of=EX, portfolio_ids=[book.id])

    call.refresh_from_db()
    new_symbol = build_occ("AAPL", EXP, "C", Decimal("100"))
    assert call.symbol == new_symbol
    assert call.security.symbol == new_symbol
    assert call.security.strike == Decimal("100")
    assert (call.quantity, call.strike, call.entry_price) == (
        Decimal("6"),
        Decimal("100"),
        Decimal("6"),
    )
    assert call.multiplier == 100
    assert report.option_splits == 1
    record = AppliedCorporateAction.objects.get(position=call)
    assert (record.old_symbol, record.new_symbol) == (old_symbol, new_symbol)
    assert (record.old_strike, record.new_strike) == (Decimal("200"), Decimal("100"))
    # The new contract carries the old one's history, per share of the new deliverable.
    assert DailyPrice.objects.get(security__symbol=new_symbol, date=BEFORE).close == Decimal("6")


def test_option_three_for_two_changes_the_deliverable() -> None:
    book = PortfolioFactory()
    put = held(option(book, "AAPL", EXP, "P", "150", "-2", entry_price="9"))
    bar(put.symbol, BEFORE, "9", fetched=datetime.now(UTC))
    split("AAPL", 3, 2)

    report = corporate_actions_apply(as_of=EX, portfolio_ids=[book.id])

    put.refresh_from_db()
    assert put.multiplier == 150
    assert (put.strike, put.quantity) == (Decimal("150"), Decimal("-2"))
    assert put.entry_price == Decimal("6")  # cost basis -2 x 9 x 100 unchanged
    assert Security.objects.get(symbol=put.symbol).multiplier == 150
    # Value continuous: the stored close per share of the 150-share deliverable.
    assert DailyPrice.objects.get(security__symbol=put.symbol).close == Decimal("6")
    assert report.option_deliverables == 1
    assert AppliedCorporateAction.objects.get().rule == "option_deliverable"


def test_cash_dividend_credits_a_long_and_debits_a_short() -> None:
    longs = PortfolioFactory(cash=Decimal("1000"))
    shorts = PortfolioFactory(cash=Decimal("1000"))
    held(stock(longs, "KO", "100"))
    held(stock(shorts, "KO", "-50"))
    held(option(longs, "KO", EXP, "C", "60", "1"))  # options receive no ordinary dividend
    dividend("KO", "0.485")

    report = corporate_actions_apply(as_of=EX, portfolio_ids=[longs.id, shorts.id])

    assert Portfolio.objects.get(pk=longs.pk).cash == Decimal("1048.50")
    assert Portfolio.objects.get(pk=shorts.pk).cash == Decimal("975.75")
    assert report.dividends == 2
    cash = dict(AppliedCorporateAction.objects.values_list("portfolio_id", "cash"))
    assert cash == {longs.id: Decimal("48.50"), shorts.id: Decimal("-24.25")}


def test_rerunning_the_session_applies_nothing_twice() -> None:
    book = PortfolioFactory(cash=Decimal("1000"))
    lot = held(stock(book, "AAPL", "10", entry_price="400"))
    held(option(book, "AAPL", EXP, "C", "200", "1"))
    split("AAPL", 4, 1)
    dividend("AAPL", "0.25")

    corporate_actions_apply(as_of=EX, portfolio_ids=[book.id])
    again = corporate_actions_apply(as_of=EX, portfolio_ids=[book.id])
    corporate_actions_apply(as_of=EX)

    lot.refresh_from_db()
    assert lot.quantity == Decimal("40")
    assert Portfolio.objects.get(pk=book.pk).cash == Decimal("1010.00")  # 40 x 0.25 once
    assert again.applied == 0
    assert AppliedCorporateAction.objects.count() == 3
    assert AuditEvent.objects.filter(action="corporate_action.apply").count() == 3


def test_positions_not_held_into_the_ex_date_are_untouched() -> None:
    book = PortfolioFactory()
    bought_on_ex = held(stock(book, "AAPL", "10", entry_date=EX))
    uploaded_later = stock(book, "AAPL", "5", entry_date=date(2024, 2, 1))  # created today
    split("AAPL", 4, 1)

    report = corporate_actions_apply(as_of=EX, portfolio_ids=[book.id])

    assert report.applied == 0
    bought_on_ex.refresh_from_db()
    uploaded_later.refresh_from_db()
    assert (bought_on_ex.quantity, uploaded_later.quantity) == (Decimal("10"), Decimal("5"))


def test_each_owner_is_audited_for_their_own_book(user, other_user) -> None:
    mine = PortfolioFactory(owner=user)
    theirs = PortfolioFactory(owner=other_user)
    a = held(stock(mine, "AAPL", "10"))
    b = held(stock(theirs, "AAPL", "-3"))
    split("AAPL", 4, 1)

    corporate_actions_apply(as_of=EX, portfolio_ids=[mine.id])

    b.refresh_from_db()
    assert b.quantity == Decimal("-3")  # the other book waits for its own chunk
    corporate_actions_apply(as_of=EX, portfolio_ids=[theirs.id])

    a.refresh_from_db()
    b.refresh_from_db()
    assert (a.quantity, b.quantity) == (Decimal("40"), Decimal("-12"))
    events = {e.portfolio_id: e for e in AuditEvent.objects.filter(action="corporate_action.apply")}
    assert set(events) == {mine.id, theirs.id}
    assert events[mine.id].details["owner_id"] == user.id
    assert events[theirs.id].details["owner_id"] == other_user.id
    assert events[theirs.id].details["new"]["quantity"] == "-12.000000"


def test_the_admin_lists_applied_actions_read_only(staff) -> None:
    """Staff see what each action did to each position (every owner's); nobody adds, edits or
    deletes a record by hand (the batch owns them)."""
    mine, theirs = PortfolioFactory(name="Mine"), PortfolioFactory(name="Theirs")
    held(stock(mine, "KO", "100"))
    held(stock(theirs, "KO", "-50"))
    dividend("KO", "0.485")
    corporate_actions_apply(as_of=EX)
    records = list(AppliedCorporateAction.objects.order_by("portfolio_id"))
    base = "/admin/portfolios/appliedcorporateaction/"
    page = staff.get(base).content.decode()
    assert "2 applied corporate actions" in page
    for name, cash in (("Mine", "48.50"), ("Theirs", "-24.25")):
        assert name in page and cash in page
    assert "dividend_long" in page and "dividend_short" in page
    assert staff.get(f"{base}add/").status_code == 403
    detail = staff.get(f"{base}{records[0].pk}/change/")
    assert detail.status_code == 200 and b'name="_save"' not in detail.content
    assert staff.post(f"{base}{records[0].pk}/delete/", {"post": "yes"}).status_code == 403
    assert AppliedCorporateAction.objects.count() == 2
