"""One entry point for option prices, Greeks and implied volatility, European or American.

Every consumer calls this facade rather than an engine. Each row says whether it is American
(`american`, a bool array broadcast against the other inputs, or one bool for all rows); the
American rows go to `american` (Bjerksund-Stensland 2002), the others to `black_scholes`
(Black-Scholes-Merton), each engine once over its whole subset, and the results are merged back
in the input order and shape.

Units, limits and reason codes are those of `black_scholes` (its module docstring): S, K in
currency; T in years (calendar days / DAYS_PER_YEAR); r, q (continuous dividend yield), sigma as
decimals; theta per calendar day, vega per vol point, rho per rate point; NaN rows carry a
`Reason`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from marketdata.calculations import american as am
from marketdata.calculations import black_scholes as bs
from marketdata.calculations.black_scholes import Greeks, ImpliedVol

__all__ = [
    "Greeks",
    "ImpliedVol",
    "early_exercise_premium",
    "greeks",
    "implied_volatility",
    "price",
]

# A whole-array engine call returning one array or a tuple of arrays.
_Engine = Callable[..., Any]


def _split(
    american: npt.ArrayLike, *values: npt.ArrayLike
) -> tuple[tuple[int, ...], npt.NDArray[np.bool_], list[npt.NDArray[Any]]]:
    """Broadcast the inputs and the American flags to one shape, flattened."""
    arrays = np.broadcast_arrays(np.asarray(american, dtype=bool), *map(np.asarray, values))
    return arrays[0].shape, arrays[0].ravel(), [a.ravel() for a in arrays[1:]]


def _dispatch(
    european: _Engine,
    american_engine: _Engine,
    american: npt.ArrayLike,
    values: tuple[npt.ArrayLike, ...],
    **kwargs: Any,
) -> list[npt.NDArray[Any]]:
    """Each engine over its rows, the outputs merged in input order (as a list of arrays)."""
    flags = np.asarray(american, dtype=bool)
    if flags.ndim == 0:
        engine = american_engine if flags else european
        return _as_list(engine(*values, **kwargs))
    shape, mask, flat = _split(flags, *values)
    if mask.all() or not mask.any():
        engine = american_engine if mask.all() else european
        return [np.reshape(a, shape) for a in _as_list(engine(*flat, **kwargs))]
    rows_am = np.flatnonzero(mask)
    rows_eu = np.flatnonzero(~mask)
    out_am = _as_list(american_engine(*(a[rows_am] for a in flat), **kwargs))
    out_eu = _as_list(european(*(a[rows_eu] for a in flat), **kwargs))
    merged = []
    for a, e in zip(out_am, out_eu, strict=True):
        column = np.empty(mask.size, dtype=np.result_type(a, e))
        column[rows_am], column[rows_eu] = a, e
        merged.append(column.reshape(shape))
    return merged


def _as_list(result: Any) -> list[npt.NDArray[Any]]:
    if isinstance(result, Greeks):
        return [
            result.price,
            result.delta,
            result.gamma,
            result.theta,
            result.vega,
            result.rho,
            result.reason,
        ]
    if isinstance(result, ImpliedVol):
        return [result.sigma, result.reason, result.iterations]
    return [np.asarray(result)]


def price(
    S: npt.ArrayLike,
    K: npt.ArrayLike,
    T: npt.ArrayLike,
    r: npt.ArrayLike,
    sigma: npt.ArrayLike,
    is_call: npt.ArrayLike,
    q: npt.ArrayLike = 0.0,
    american: npt.ArrayLike = False,
) -> npt.NDArray[np.float64]:
    """Price per share: Bjerksund-Stensland 2002 where `american`, else Black-Scholes-Merton."""
    return _dispatch(bs.price, am.price, american, (S, K, T, r, sigma, is_call, q))[0]


def greeks(
    S: npt.ArrayLike,
    K: npt.ArrayLike,
    T: npt.ArrayLike,
    r: npt.ArrayLike,
    sigma: npt.ArrayLike,
    is_call: npt.ArrayLike,
    q: npt.ArrayLike = 0.0,
    american: npt.ArrayLike = False,
) -> Greeks:
    """Price, delta, gamma, theta (per day), vega (per vol point), rho (per rate point)."""
    return Greeks(*_dispatch(bs.greeks, am.greeks, american, (S, K, T, r, sigma, is_call, q)))


def implied_volatility(
    price: npt.ArrayLike,
    S: npt.ArrayLike,
    K: npt.ArrayLike,
    T: npt.ArrayLike,
    r: npt.ArrayLike,
    is_call: npt.ArrayLike,
    q: npt.ArrayLike = 0.0,
    american: npt.ArrayLike = False,
    *,
    tol: float = 1e-8,
) -> ImpliedVol:
    """The sigma that reproduces `price` under each row's exercise style (reasons as in
    `black_scholes.implied_volatility`)."""
    return ImpliedVol(
        *_dispatch(
            bs.implied_volatility,
            am.implied_volatility,
            american,
            (price, S, K, T, r, is_call, q),
            tol=tol,
        )
    )


def early_exercise_premium(
    S: npt.ArrayLike,
    K: npt.ArrayLike,
    T: npt.ArrayLike,
    r: npt.ArrayLike,
    sigma: npt.ArrayLike,
    is_call: npt.ArrayLike,
    q: npt.ArrayLike = 0.0,
    american: npt.ArrayLike = True,
) -> npt.NDArray[np.float64]:
    """American minus European price per share (>= 0); 0 on European rows, NaN on bad rows."""

    def _zero(*values: npt.ArrayLike) -> npt.NDArray[np.float64]:
        return bs.price(*values) * 0.0

    return _dispatch(_zero, am.early_exercise_premium, american, (S, K, T, r, sigma, is_call, q))[0]
