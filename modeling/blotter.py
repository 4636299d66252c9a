"""The CSV blotter of a trades export: a line per trade, its order's fields in words (the FIX
file carries the same orders, `modeling.fix`). Pure, no Django."""

from __future__ import annotations

import io
from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, NamedTuple

from modeling import fix
from sigmasight.exports import csv_writer

if TYPE_CHECKING:
    from modeling.models import ProFormaTrade


class OrderLine(NamedTuple):
    """A line of the blotter; the fields are its columns."""

    cl_ord_id: str
    symbol: str
    underlying: str
    side: str
    quantity: str
    price: str
    security_type: str
    option_type: str
    strike: str
    expiration: str
    multiplier: int
    notional: str


def blotter_csv(orders: Sequence[fix.Order], trades: Sequence[ProFormaTrade]) -> bytes:
    """The blotter of `orders`, each the order of the trade at the same index."""
    out = io.StringIO()
    writer = csv_writer(out)
    writer.writerow(OrderLine._fields)
    for order, trade in zip(orders, trades, strict=True):
        notional = abs(trade.quantity) * trade.price * trade.multiplier
        writer.writerow(
            OrderLine(
                cl_ord_id=order.cl_ord_id,
                symbol=trade.symbol,
                underlying=trade.underlying_symbol,
                side=fix.SIDE_NAMES[order.side],
                quantity=fix.decimal_text(order.quantity),
                price=fix.decimal_text(order.price),
                security_type=order.security_type,
                option_type=trade.option_type,
                strike="" if trade.strike is None else fix.decimal_text(trade.strike),
                expiration=trade.expiration.isoformat() if trade.expiration else "",
                multiplier=trade.multiplier,
                notional=f"{notional.quantize(Decimal('0.01'))}",
            )
        )
    return out.getvalue().encode()
