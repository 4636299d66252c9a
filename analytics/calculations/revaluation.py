"""Full revaluation of a book's options at shocked underlyings: the one repricing that market
scenarios, stress tests, Monte Carlo VaR and what-if all use (pure numpy, whole book at once).

An option leg is revalued by Black-Scholes (`marketdata.calculations.black_scholes`) at its
underlying moved by a decimal return (-0.10 = the underlying down 10%), its volatility, time to
expiry and rate unchanged; its P&L is (shocked price - today's model price) x units, in the
book's currency, gains positive. Units are signed contracts x multiplier (shares controlled).

Spot floor, the one rule: a shocked spot is spot x (1 + return), never below spot x SPOT_FLOOR.
A move of -100% or worse leaves the underlying at a millionth of today's spot, where
Black-Scholes is still defined and already at its limit (a call worth ~0, a put ~K e^-rT, the
discounted intrinsic value at spot 0), instead of the NaN it gives at a spot of 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from marketdata.calculations import black_scholes as bs

SPOT_FLOOR = 1e-6  # the lowest shocked spot, as a fraction of today's spot


@dataclass(frozen=True, eq=False)
class OptionLegs:
    """The option positions of a book frame that can be revalued (an option without a
    volatility cannot, and contributes nothing), one entry per leg; `rows` index the legs among
    the frame's rows, so a per-position array `a` gives the legs' values as `a[rows]`."""

    rows: npt.NDArray[np.intp]  # positions of the legs in the frame
    spot: npt.NDArray[np.float64]  # today's underlying price, currency per share
    strike: npt.NDArray[np.float64]  # currency per share
    years: npt.NDArray[np.float64]  # time to expiry: calendar days / bs.DAYS_PER_YEAR
    rate: npt.NDArray[np.float64]  # continuous risk-free rate, decimal
    volatility: npt.NDArray[np.float64]  # annualized, decimal
    is_call: npt.NDArray[np.bool_]
    units: npt.NDArray[np.float64]  # signed contracts x multiplier

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> OptionLegs:
        """The legs of a valued book frame (`book_frame`'s columns:
        is_option, volatility, underlying_price, strike, days_to_expiry, risk_free_rate,
        option_type "C"/"P", quantity, multiplier)."""
        leg = frame["is_option"].to_numpy(dtype=bool) & frame["volatility"].notna().to_numpy()

        def column(name: str) -> npt.NDArray[np.float64]:
            values: npt.NDArray[np.float64] = frame[name].to_numpy(dtype=float)[leg]
            return values

        return cls(
            rows=np.flatnonzero(leg),
            spot=column("underlying_price"),
            strike=column("strike"),
            years=column("days_to_expiry") / bs.DAYS_PER_YEAR,
            rate=column("risk_free_rate"),
            volatility=column("volatility"),
            is_call=(frame["option_type"] == "C").to_numpy()[leg],
            units=(frame["quantity"] * frame["multiplier"]).to_numpy(dtype=float)[leg],
        )


def shocked_spot(
    spot: npt.NDArray[np.float64], returns: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """spot x (1 + returns), floored at spot x SPOT_FLOOR (the module's one rule); broadcasts."""
    return np.maximum(spot * (1.0 + returns), spot * SPOT_FLOOR)


def revalue(
    legs: OptionLegs, returns: npt.NDArray[np.float64], *, by_leg: bool = False
) -> npt.NDArray[np.float64]:
    """P&L of the legs, in currency, when each leg's underlying moves by a decimal return.

    `returns` is (S, L): scenario s moves leg l's underlying by returns[s, l] (a 1-d (L,) array
    is one scenario). Returns the (S,) P&L of the legs together, or with `by_leg` the (S, L)
    P&L of each. A leg without a spot, or with any NaN input, has NaN P&L (never a silent 0)."""
    returns = np.atleast_2d(np.asarray(returns, dtype=float))
    if not len(legs.rows):
        return np.zeros((len(returns), 0)) if by_leg else np.zeros(len(returns))
    terms = (legs.strike, legs.years, legs.rate, legs.volatility, legs.is_call)
    change = bs.price(shocked_spot(legs.spot, returns), *terms) - bs.price(legs.spot, *terms)
    return change * legs.units if by_leg else change @ legs.units
