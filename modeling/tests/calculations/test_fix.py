"""The FIX 4.4 encoder, checked by a small independent parser (framing, BodyLength, CheckSum)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from modeling import fix
from modeling.tests.helpers import parse_fix

NOW = datetime(2026, 11, 23, 14, 30, 5, 123456, tzinfo=UTC)


def test_stock_order_has_every_tag_and_a_valid_frame():
    order = fix.Order(
        cl_ord_id="SS1-7",
        symbol="AAPL",
        side=fix.BUY,
        quantity=Decimal("150.000000"),
        price=Decimal("646.789100"),
        transact_time=NOW,
    )
    message = fix.new_order_single(
        order, sender="SIGMASIGHT", target="BROKER", seq=3, sending_time=NOW
    )
    pairs = parse_fix(message)
    tags = dict(pairs)
    assert [t for t, _ in pairs[:7]] == ["8", "9", "35", "49", "56", "34", "52"]
    assert tags["8"] == "FIX.4.4" and tags["35"] == "D"
    assert (tags["49"], tags["56"], tags["34"]) == ("SIGMASIGHT", "BROKER", "3")
    assert tags["11"] == "SS1-7" and tags["55"] == "AAPL" and tags["54"] == "1"
    assert tags["38"] == "150" and tags["40"] == "2" and tags["44"] == "646.7891"
    assert tags["167"] == "CS"
    assert tags["52"] == tags["60"] == "20261123-14:30:05.123"
    assert not {"200", "541", "201", "202"} & set(tags)


@pytest.mark.parametrize(("right", "put_or_call"), [("C", "1"), ("P", "0")])
def test_option_order_carries_maturity_right_and_strike(right, put_or_call):
    order = fix.Order(
        cl_ord_id="SS2-9",
        symbol="MSFT",
        side=fix.SELL_SHORT,
        quantity=Decimal("3"),
        price=Decimal("12.5"),
        transact_time=NOW,
        put_or_call=right,
        maturity=date(2027, 1, 15),
        strike=Decimal("402.5000"),
    )
    tags = dict(
        parse_fix(fix.new_order_single(order, sender="S", target="T", seq=1, sending_time=NOW))
    )
    assert tags["167"] == "OPT" and tags["54"] == "5" and tags["55"] == "MSFT"
    assert (tags["200"], tags["541"]) == ("202701", "20270115")
    assert tags["201"] == put_or_call and tags["202"] == "402.5"


def test_a_file_holds_one_message_per_line_with_sequence_numbers():
    orders = [
        fix.Order(
            cl_ord_id=f"X{n}",
            symbol="SPY",
            side=side,
            quantity=Decimal(n + 1),
            price=Decimal("400"),
            transact_time=NOW,
        )
        for n, side in enumerate([fix.BUY, fix.SELL, fix.SELL_SHORT])
    ]
    content = fix.encode_orders(orders, sender="S", target="T", sending_time=NOW)
    lines = content.split(b"\n")
    assert lines[-1] == b"" and len(lines) == 4
    parsed = [dict(parse_fix(line)) for line in lines[:-1]]
    assert [p["34"] for p in parsed] == ["1", "2", "3"]
    assert [p["54"] for p in parsed] == ["1", "2", "5"]


def test_a_corrupted_byte_fails_the_checksum():
    order = fix.Order(
        cl_ord_id="A",
        symbol="SPY",
        side=fix.BUY,
        quantity=Decimal(1),
        price=Decimal(1),
        transact_time=NOW,
    )
    message = fix.new_order_single(order, sender="S", target="T", seq=1, sending_time=NOW)
    tampered = message.replace(b"55=SPY", b"55=SPX")
    with pytest.raises(AssertionError, match="CheckSum"):
        parse_fix(tampered)


def test_bad_orders_are_refused():
    base: dict[str, Any] = {
        "cl_ord_id": "A",
        "symbol": "SPY",
        "price": Decimal(1),
        "transact_time": NOW,
    }
    with pytest.raises(ValueError, match="side"):
        fix.order_fields(fix.Order(side="9", quantity=Decimal(1), **base))
    with pytest.raises(ValueError, match="OrderQty"):
        fix.order_fields(fix.Order(side=fix.BUY, quantity=Decimal(0), **base))
    with pytest.raises(ValueError, match="maturity"):
        fix.order_fields(fix.Order(side=fix.BUY, quantity=Decimal(1), put_or_call="C", **base))
    with pytest.raises(ValueError, match="SOH"):
        fix.new_order_single(
            fix.Order(side=fix.BUY, quantity=Decimal(1), **{**base, "symbol": "S\x01PY"}),
            sender="S",
            target="T",
            seq=1,
            sending_time=NOW,
        )
