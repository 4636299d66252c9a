"""Position valuation on arrays (DESIGN.md conventions).

market_value = |qty| x price x multiplier (never negative); exposure = qty x price x multiplier
(signed); unrealized P&L = (price - entry) x qty x multiplier; daily P&L = (price - previous
session's close) x qty x multiplier. Money in the instrument's currency; NaN where a price is
missing, so a position without a price is reported as not valued, never as zero.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class Valuation:
    market_value: npt.NDArray[np.float64]
    exposure: npt.NDArray[np.float64]
    unrealized_pnl: npt.NDArray[np.float64]
    daily_pnl: npt.NDArray[np.float64]


def value_positions(
    *,
    quantity: npt.NDArray[np.float64],
    price: npt.NDArray[np.float64],
    previous_price: npt.NDArray[np.float64],
    entry_price: npt.NDArray[np.float64],
    multiplier: npt.NDArray[np.float64],
) -> Valuation:
    quantity, price, previous_price, entry_price, multiplier = (
        np.asarray(x, dtype=float)
        for x in (quantity, price, previous_price, entry_price, multiplier)
    )
    units = quantity * multiplier
    return Valuation(
        market_value=np.abs(units) * price,
        exposure=units * price,
        unrealized_pnl=(price - entry_price) * units,
        daily_pnl=(price - previous_price) * units,
    )
