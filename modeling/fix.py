"""FIX 4.4 NewOrderSingle (35=D) encoding: pure, no Django.

Each message is `8=FIX.4.4|9=<BodyLength>|35=D|49=..|56=..|34=..|52=..|<order fields>|10=<CheckSum>|`
with SOH (\\x01) for `|`. BodyLength counts the bytes from the first byte after 9=..SOH up to and
including the SOH before 10=; CheckSum is the sum of every byte before `10=` modulo 256, written
as three digits. Order fields: 11 ClOrdID, 55 Symbol (an option's underlying), 54 Side (1 buy,
2 sell, 5 sell short), 38 OrderQty, 40 OrdType (2 limit), 44 Price, 167 SecurityType (CS or
OPT); options add 200 MaturityMonthYear, 541 MaturityDate, 201 PutOrCall (0 put, 1 call) and
202 StrikePrice; then 60 TransactTime. Times are UTC, YYYYMMDD-HH:MM:SS.sss. A file holds one
message per line, sequence numbers (34) counting from 1. Values go through
`sigmasight.exports.safe_cell`, as every cell of every file we write: text starting with
= + - @, a tab or a carriage return gets a leading apostrophe (numbers never start with one).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import NamedTuple

from sigmasight.exports import safe_cell

SOH = "\x01"
BEGIN_STRING = "FIX.4.4"
NEW_ORDER_SINGLE = "D"
BUY, SELL, SELL_SHORT = "1", "2", "5"
SIDE_NAMES = {BUY: "buy", SELL: "sell", SELL_SHORT: "sell_short"}
LIMIT = "2"
PUT, CALL = "0", "1"


@dataclass(frozen=True)
class Order:
    cl_ord_id: str
    symbol: str
    side: str  # BUY, SELL or SELL_SHORT
    quantity: Decimal  # shares or contracts, positive
    price: Decimal
    transact_time: datetime
    put_or_call: str | None = None  # "C" or "P" for options
    maturity: date | None = None
    strike: Decimal | None = None

    @property
    def security_type(self) -> str:
        return "OPT" if self.put_or_call else "CS"


def decimal_text(value: Decimal) -> str:
    """A plain decimal without exponent or trailing zeros (FIX float fields)."""
    text = f"{Decimal(value).normalize():f}"
    return text if text != "-0" else "0"


def utc_timestamp(moment: datetime) -> str:
    return moment.strftime("%Y%m%d-%H:%M:%S.") + f"{moment.microsecond // 1000:03d}"


class FixField(NamedTuple):
    """One `tag=value` field of a message."""

    tag: int
    value: object

    def encoded(self) -> str:
        text = str(self.value)
        if SOH in text or not text:
            raise ValueError(
                f"FIX tag {self.tag} needs a non-empty value without SOH, got {text!r}"
            )
        return f"{self.tag}={safe_cell(text)}{SOH}"


def order_fields(order: Order) -> list[FixField]:
    if order.side not in (BUY, SELL, SELL_SHORT):
        raise ValueError(f"Unknown side {order.side!r}")
    if not order.quantity > 0:
        raise ValueError("OrderQty must be positive")
    fields = [
        FixField(11, order.cl_ord_id),
        FixField(55, order.symbol),
        FixField(54, order.side),
        FixField(38, decimal_text(order.quantity)),
        FixField(40, LIMIT),
        FixField(44, decimal_text(order.price)),
        FixField(167, order.security_type),
    ]
    if order.put_or_call:
        if order.maturity is None or order.strike is None:
            raise ValueError("An option order needs its maturity and strike")
        fields += [
            FixField(200, f"{order.maturity:%Y%m}"),
            FixField(541, f"{order.maturity:%Y%m%d}"),
            FixField(201, CALL if order.put_or_call == "C" else PUT),
            FixField(202, decimal_text(order.strike)),
        ]
    fields.append(FixField(60, utc_timestamp(order.transact_time)))
    return fields


def checksum(data: bytes) -> str:
    return f"{sum(data) % 256:03d}"


def new_order_single(
    order: Order, *, sender: str, target: str, seq: int, sending_time: datetime
) -> bytes:
    header = [
        FixField(35, NEW_ORDER_SINGLE),
        FixField(49, sender),
        FixField(56, target),
        FixField(34, seq),
        FixField(52, utc_timestamp(sending_time)),
    ]
    body = "".join(f.encoded() for f in [*header, *order_fields(order)]).encode()
    head = f"8={BEGIN_STRING}{SOH}9={len(body)}{SOH}".encode()
    return head + body + f"10={checksum(head + body)}{SOH}".encode()


def encode_orders(
    orders: Sequence[Order], *, sender: str, target: str, sending_time: datetime
) -> bytes:
    """One NewOrderSingle per order, one per line, sequence numbers from 1."""
    return b"".join(
        new_order_single(order, sender=sender, target=target, seq=n, sending_time=sending_time)
        + b"\n"
        for n, order in enumerate(orders, start=1)
    )
