"""Black-Scholes-Merton European options on arrays: prices, Greeks and implied volatility.

The product's one Black-Scholes engine (pure numpy/scipy, so every app can use it). Every
function broadcasts its inputs against each other and works on a whole book at once.

Units. S, K in currency; T in years (calendar days / 365); r (continuous rate), q (continuous
dividend yield) and sigma as decimals. Greeks are per share in mibian's units: delta per 1 of
S, gamma (change of delta) per 1 of S, theta per calendar day (annual theta / 365: the change
in value as one calendar day passes), vega per 1 vol point (d price / d sigma / 100) and rho
per 1 rate point (d price / d r / 100, with q held fixed).

Limits, never a division error or a floating-point warning:
- expired, T <= 0: the price is the intrinsic value max(S - K, 0) / max(K - S, 0) and all five
  Greeks are 0, delta included (the design's rule: an expired option carries no risk);
- no volatility, sigma * sqrt(T) == 0 with T > 0: the option is worth the discounted intrinsic
  value of the forward, max(S e^-qT - K e^-rT, 0) for a call. Delta is the step e^-qT (calls
  in the money on the forward, else 0; puts mirrored), and e^-qT / 2 exactly at the money on
  the forward (the limit as sigma -> 0); gamma = vega = 0 (at the money on the forward gamma
  is a point mass, reported as 0); theta and rho are those of the
  deterministic payoff, e.g. a call in the money has theta = (q S e^-qT - r K e^-rT) / 365
  and rho = K T e^-rT / 100.

Reason codes (`Reason`, int8 arrays). A row that cannot be priced is NaN in every output and
says why; the first failing check, in this order, names it:
    0 OK
    1 NAN_INPUT            an input is NaN or infinite
    2 NON_POSITIVE_SPOT    S <= 0
    3 NON_POSITIVE_STRIKE  K <= 0
    4 NEGATIVE_VOLATILITY  sigma < 0
implied_volatility adds (after 1-3, where a NaN or infinite price is a NAN_INPUT):
    5 EXPIRED              T <= 0: the price says nothing about volatility
    6 BELOW_LOWER_BOUND    price <= the discounted intrinsic value of the forward
    7 ABOVE_UPPER_BOUND    price >= S e^-qT (a call) or K e^-rT (a put)
    8 NOT_CONVERGED        the bounded iterations did not reach the tolerance (not seen in tests;
                           reported rather than returning an unconverged value)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import IntEnum
from functools import partial
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.special import ndtr, ndtri

DAYS_PER_YEAR = 365.0  # calendar days: option expiries, theta
TRADING_DAYS = 252  # sessions: annualising daily returns and volatilities
_INV_SQRT_2PI = 1.0 / np.sqrt(2.0 * np.pi)
# Total volatility sigma * sqrt(T) at which every Black price equals its upper bound in double
# precision (N(-MAX/2) ~ 5e-198): the top of the implied-volatility bracket.
_MAX_TOTAL_VOL = 60.0
# A Halley step below this fraction of the total volatility ends the iteration: the error left
# after such a step is of the order of its cube, far below the 1e-8 asked of sigma.
_STEP_TOL = 1e-6
# Rows per pass. A whole book is worked through in slices of this size, so the dozens of
# temporaries of a pass stay in cache and are reused instead of being paged in fresh: about
# 1.5x faster for 100,000 options than one pass, and still no Python loop per option.
_CHUNK = 16_384


class Reason(IntEnum):
    """Why a row has no number (module docstring); stored as int8 in `reason` arrays."""

    OK = 0
    NAN_INPUT = 1
    NON_POSITIVE_SPOT = 2
    NON_POSITIVE_STRIKE = 3
    NEGATIVE_VOLATILITY = 4
    EXPIRED = 5
    BELOW_LOWER_BOUND = 6
    ABOVE_UPPER_BOUND = 7
    NOT_CONVERGED = 8


@dataclass(frozen=True, eq=False)
class Greeks:
    """Per-share price and Greeks (units in the module docstring); NaN where reason != 0."""

    price: npt.NDArray[np.float64]
    delta: npt.NDArray[np.float64]
    gamma: npt.NDArray[np.float64]
    theta: npt.NDArray[np.float64]
    vega: npt.NDArray[np.float64]
    rho: npt.NDArray[np.float64]
    reason: npt.NDArray[np.int8]


@dataclass(frozen=True, eq=False)
class ImpliedVol:
    """Implied volatility (decimal, NaN where reason != 0) and the iterations each row took."""

    sigma: npt.NDArray[np.float64]
    reason: npt.NDArray[np.int8]
    iterations: npt.NDArray[np.int16]


# A pass over flat inputs: its outputs, of mixed dtypes (float values, int8 reasons, ...).
Pass = Callable[..., tuple[npt.NDArray[Any], ...]]


def _flat(*values: npt.ArrayLike) -> tuple[tuple[int, ...], list[npt.NDArray[np.float64]]]:
    """Broadcast to one shape and return it with each input as a flat float array."""
    arrays = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in values))
    return arrays[0].shape, [a.ravel() for a in arrays]


def _in_chunks(
    fn: Pass, inputs: list[npt.NDArray[np.float64]], shape: tuple[int, ...]
) -> list[npt.NDArray[Any]]:
    """fn over flat inputs, _CHUNK rows at a time; its outputs joined and shaped."""
    n = inputs[0].size
    parts: Sequence[npt.NDArray[Any]]
    if n <= _CHUNK:
        parts = fn(*inputs)
    else:
        pieces = [fn(*(a[i : i + _CHUNK] for a in inputs)) for i in range(0, n, _CHUNK)]
        parts = [np.concatenate(column) for column in zip(*pieces, strict=True)]
    return [part.reshape(shape) for part in parts]


def _input_reasons(
    S: npt.NDArray[np.float64],
    K: npt.NDArray[np.float64],
    T: npt.NDArray[np.float64],
    r: npt.NDArray[np.float64],
    q: npt.NDArray[np.float64],
    sigma: npt.NDArray[np.float64],
) -> npt.NDArray[np.int8]:
    finite = np.isfinite(S) & np.isfinite(K) & np.isfinite(T) & np.isfinite(r) & np.isfinite(q)
    finite &= np.isfinite(sigma)
    # Later assignments win, so the checks are written from the last to the first.
    reason = np.where(sigma < 0, Reason.NEGATIVE_VOLATILITY, Reason.OK).astype(np.int8)
    reason[K <= 0] = Reason.NON_POSITIVE_STRIKE
    reason[S <= 0] = Reason.NON_POSITIVE_SPOT
    reason[~finite] = Reason.NAN_INPUT
    return reason


def validate(
    S: npt.ArrayLike,
    K: npt.ArrayLike,
    T: npt.ArrayLike,
    r: npt.ArrayLike,
    sigma: npt.ArrayLike,
    q: npt.ArrayLike = 0.0,
) -> npt.NDArray[np.int8]:
    """Per-option reason code (0 OK, 1 NaN/inf input, 2 S <= 0, 3 K <= 0, 4 sigma < 0)."""
    shape, (S, K, T, r, sigma, q) = _flat(S, K, T, r, sigma, q)
    return _input_reasons(S, K, T, r, q, sigma).reshape(shape)


def _evaluate(
    S: npt.NDArray[np.float64],
    K: npt.NDArray[np.float64],
    T: npt.NDArray[np.float64],
    r: npt.NDArray[np.float64],
    sigma: npt.NDArray[np.float64],
    q: npt.NDArray[np.float64],
    call: npt.NDArray[np.float64],
    *,
    with_greeks: bool,
) -> tuple[npt.NDArray[Any], ...]:
    """(price,) or (price, delta, gamma, theta, vega, rho, reason) of flat float inputs."""
    reason = _input_reasons(S, K, T, r, q, sigma)
    bad = reason != Reason.OK
    if bad.any():
        # Harmless stand-ins keep the arithmetic quiet; these rows become NaN at the end.
        S, K = np.where(bad, 1.0, S), np.where(bad, 1.0, K)
        T, r, q, sigma = (np.where(bad, 0.0, v) for v in (T, r, q, sigma))
    expired = T <= 0
    t = np.where(expired, 1.0, T)
    sqrt_t = np.sqrt(t)
    vol_t = sigma * sqrt_t
    live = (vol_t > 0) & ~expired
    safe_vol_t = np.where(live, vol_t, 1.0)
    sign = 2.0 * (call != 0) - 1.0
    disc_q, disc_r = np.exp(-q * t), np.exp(-r * t)
    fwd_s, fwd_k = S * disc_q, K * disc_r
    with np.errstate(over="ignore", under="ignore", divide="ignore", invalid="ignore"):
        d1 = (np.log(S / K) + (r - q + 0.5 * sigma * sigma) * t) / safe_vol_t
        d2 = d1 - safe_vol_t
        # One tail per row (N(d) for calls, N(-d) for puts) keeps far out-of-the-money values
        # accurate to their last digits instead of 1 - N(d).
        n1, n2 = ndtr(sign * d1), ndtr(sign * d2)
        if not live.all():
            # Without volatility both are the step of the forward's moneyness, 1/2 at the money.
            step = np.heaviside(sign * (fwd_s - fwd_k), 0.5)
            n1, n2 = np.where(live, n1, step), np.where(live, n2, step)
        value = sign * (fwd_s * n1 - fwd_k * n2)
        dead = bad | expired
        if dead.any():
            intrinsic = np.maximum(sign * (S - K), 0.0)
            value = np.where(dead, np.where(bad, np.nan, intrinsic), value)
        if not with_greeks:
            return (value,)
        pdf = np.where(live, np.exp(-0.5 * d1 * d1) * _INV_SQRT_2PI, 0.0)
        decay = fwd_s * pdf * sigma / (2.0 * sqrt_t)
        greeks = {
            "delta": sign * disc_q * n1,
            "gamma": disc_q * pdf / (S * safe_vol_t),
            "theta": (-decay + sign * (q * fwd_s * n1 - r * fwd_k * n2)) / DAYS_PER_YEAR,
            "vega": fwd_s * pdf * sqrt_t / 100.0,
            "rho": sign * t * fwd_k * n2 / 100.0,
        }
    if dead.any():
        fill = np.where(bad, np.nan, 0.0)
        greeks = {name: np.where(dead, fill, v) for name, v in greeks.items()}
    return (value, *greeks.values(), reason)


def price(
    S: npt.ArrayLike,
    K: npt.ArrayLike,
    T: npt.ArrayLike,
    r: npt.ArrayLike,
    sigma: npt.ArrayLike,
    is_call: npt.ArrayLike,
    q: npt.ArrayLike = 0.0,
) -> npt.NDArray[np.float64]:
    """Black-Scholes-Merton price per share; limits and NaN rows as in `greeks`."""
    shape, inputs = _flat(S, K, T, r, sigma, q, is_call)
    return _in_chunks(partial(_evaluate, with_greeks=False), inputs, shape)[0]


def price_at_spots(
    spots: npt.NDArray[np.float64],
    K: npt.NDArray[np.float64],
    T: npt.NDArray[np.float64],
    r: npt.NDArray[np.float64],
    sigma: npt.NDArray[np.float64],
    is_call: npt.NDArray[np.bool_],
    q: npt.NDArray[np.float64],
) -> npt.NDArray[np.float64]:
    """`price` of L options at many spots each: `spots` (n, L), the other inputs (L,). What
    depends on the option alone (discounting, drift, volatility x sqrt(T)) is computed once per
    option instead of once per cell, in the same operations as `price`, so every value is the
    same to the last bit; options whose inputs `price` treats apart (invalid, expired, no
    volatility) and columns with a spot that is not a finite positive number go through
    `price` itself."""
    spots = np.asarray(spots, dtype=float)
    values = np.empty_like(spots)
    with np.errstate(invalid="ignore"):
        plain = (
            (_input_reasons(np.ones_like(K), K, T, r, q, sigma) == Reason.OK)
            & (T > 0)
            & (sigma * np.sqrt(np.where(T > 0, T, 1.0)) > 0)
            & (np.isfinite(spots) & (spots > 0)).all(axis=0)
        )
    other = ~plain
    if other.any():
        values[:, other] = price(
            spots[:, other], K[other], T[other], r[other], sigma[other], is_call[other], q[other]
        )
    if not plain.any():
        return values
    K, T, r, sigma, q = (v[plain] for v in (K, T, r, sigma, q))
    sign = 2.0 * (is_call[plain] != 0) - 1.0
    vol_t = sigma * np.sqrt(T)
    drift = (r - q + 0.5 * sigma * sigma) * T
    disc_q, fwd_k = np.exp(-q * T), K * np.exp(-r * T)
    S = spots[:, plain]
    with np.errstate(over="ignore", under="ignore", divide="ignore", invalid="ignore"):
        d1 = (np.log(S / K) + drift) / vol_t
        d2 = d1 - vol_t
        values[:, plain] = sign * (S * disc_q * ndtr(sign * d1) - fwd_k * ndtr(sign * d2))
    return values


def greeks(
    S: npt.ArrayLike,
    K: npt.ArrayLike,
    T: npt.ArrayLike,
    r: npt.ArrayLike,
    sigma: npt.ArrayLike,
    is_call: npt.ArrayLike,
    q: npt.ArrayLike = 0.0,
) -> Greeks:
    """Price, delta, gamma, theta (per day), vega (per vol point), rho (per rate point)."""
    shape, inputs = _flat(S, K, T, r, sigma, q, is_call)
    value, delta, gamma, theta, vega, rho, reason = _in_chunks(
        partial(_evaluate, with_greeks=True), inputs, shape
    )
    return Greeks(value, delta, gamma, theta, vega, rho, reason)


def _normalized_otm(
    x: npt.NDArray[np.float64],
    w: npt.NDArray[np.float64],
    half_x_exp: npt.NDArray[np.float64],
    side: npt.NDArray[np.float64] | float,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """The normalized out-of-the-money value and its complement, for x = ln(F/K) <= 0 and
    total volatility w > 0: with side = +1, b(w) = e^{x/2} N(d1) - e^{-x/2} N(d2), the call
    price / discount / sqrt(F K); with side = -1, its distance from the bound e^{x/2},
    e^{x/2} N(-d1) + e^{-x/2} N(d2), summed directly so it keeps its digits near the bound.
    d1,2 = x / w +- w / 2. Also returns db/dw = e^{x/2} phi(d1)."""
    h = x / w
    d1 = h + 0.5 * w
    value = half_x_exp * ndtr(side * d1) - side * ndtr(h - 0.5 * w) / half_x_exp
    slope = half_x_exp * np.exp(-0.5 * d1 * d1) * _INV_SQRT_2PI
    return value, slope


def implied_volatility(
    price: npt.ArrayLike,
    S: npt.ArrayLike,
    K: npt.ArrayLike,
    T: npt.ArrayLike,
    r: npt.ArrayLike,
    is_call: npt.ArrayLike,
    q: npt.ArrayLike = 0.0,
    *,
    tol: float = 1e-8,
    max_iter: int = 32,
) -> ImpliedVol:
    """The sigma at which the Black-Scholes-Merton price equals `price`, per option.

    Solves for the time value of the out-of-the-money option on the forward (an in-the-money
    price is turned into it by put-call parity), in total volatility w = sigma sqrt(T). That
    value b(w) rises from 0 to its bound with one inflection, at w_c = sqrt(2 |ln F/K|), so
    b(w_c) tells whether the root lies in [0, w_c] or [w_c, inf): each row gets a bracket.
    Below w_c the iteration runs on ln b (close to -ln(F/K)^2 / 2w^2 there), above it on the
    log of the distance to the bound, both from Jaeckel's starting guesses ("By implication",
    2006). Each step is a Halley step (Newton with the curvature, so the error is cubed), and
    one that leaves the bracket is replaced by bisection. A row stops once its step is under
    1e-6 of w (typically after two or three steps) or after `max_iter` steps. Every answer is
    then repriced: unless |BS(sigma) - price| <= tol the row is NOT_CONVERGED. Prices strictly
    inside the no-arbitrage bounds converge; on or outside the bounds, or at T <= 0, sigma is
    NaN with the reason code (module docstring), never a guess.
    """
    shape, inputs = _flat(price, S, K, T, r, q, is_call)
    sigma, reason, iterations = _in_chunks(
        partial(_implied, tol=tol, max_iter=max_iter), inputs, shape
    )
    return ImpliedVol(sigma, reason, iterations)


def _implied(
    target: npt.NDArray[np.float64],
    S: npt.NDArray[np.float64],
    K: npt.NDArray[np.float64],
    T: npt.NDArray[np.float64],
    r: npt.NDArray[np.float64],
    q: npt.NDArray[np.float64],
    call: npt.NDArray[np.float64],
    *,
    tol: float,
    max_iter: int,
) -> tuple[npt.NDArray[Any], ...]:
    """(sigma, reason, iterations) of flat float inputs."""
    reason = _input_reasons(S, K, T, r, q, target)
    # A negative price is not a negative volatility: the bound check below names it.
    reason[reason == Reason.NEGATIVE_VOLATILITY] = Reason.OK
    reason[(reason == Reason.OK) & (T <= 0)] = Reason.EXPIRED
    sigma = np.full(target.shape, np.nan)
    iterations = np.zeros(target.shape, dtype=np.int16)
    rows = np.flatnonzero(reason == Reason.OK)
    p, t, call = target[rows], T[rows], call[rows] != 0
    fwd_s, fwd_k = S[rows] * np.exp(-q[rows] * t), K[rows] * np.exp(-r[rows] * t)
    lower = np.maximum(np.where(call, fwd_s - fwd_k, fwd_k - fwd_s), 0.0)
    upper = np.where(call, fwd_s, fwd_k)
    reason[rows[p <= lower]] = Reason.BELOW_LOWER_BOUND
    reason[rows[p >= upper]] = Reason.ABOVE_UPPER_BOUND
    inside = (p > lower) & (p < upper)
    rows, p, t, lower, upper = rows[inside], p[inside], t[inside], lower[inside], upper[inside]
    fwd_s, fwd_k = fwd_s[inside], fwd_k[inside]
    with np.errstate(all="ignore"):
        scale = np.sqrt(fwd_s * fwd_k)
        w, miss, steps = _solve_total_vol(
            -np.abs(np.log(fwd_s / fwd_k)), (p - lower) / scale, (upper - p) / scale, max_iter
        )
    converged = miss * scale <= tol
    sigma[rows[converged]] = w[converged] / np.sqrt(t[converged])
    reason[rows[~converged]] = Reason.NOT_CONVERGED
    iterations[rows] = steps
    return sigma, reason, iterations


def _solve_total_vol(
    x: npt.NDArray[np.float64],
    b_target: npt.NDArray[np.float64],
    gap_target: npt.NDArray[np.float64],
    max_iter: int,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.int16]]:
    """Total volatility w with b(x, w) = b_target, for x <= 0, where b_target > 0 and
    gap_target = e^{x/2} - b_target > 0 are both given (each keeps its own digits); with
    |b(x, w) - b_target| at the answer and the steps each row took."""
    half_x_exp = np.exp(0.5 * x)
    w_c = np.sqrt(-2.0 * x)
    # At w_c, d1 = 0 and d2 = -w_c: b and its distance to the bound need one tail each.
    tail_c = ndtr(-w_c) / half_x_exp
    b_c, gap_c = 0.5 * half_x_exp - tail_c, 0.5 * half_x_exp + tail_c
    low = b_target < b_c
    side = 2.0 * low - 1.0
    goal = np.where(low, b_target, gap_target)
    guess = np.where(
        low,
        np.sqrt(2.0 * x * x / (-x - 4.0 * np.log(b_target / b_c))),
        -2.0 * ndtri(gap_target / gap_c * ndtr(-0.5 * w_c)),
    )
    lo = np.where(low, 0.0, w_c)
    hi = np.where(low, w_c, _MAX_TOTAL_VOL)
    w = np.where((guess > lo) & (guess < hi), guess, 0.5 * (lo + hi))
    solved, steps = np.empty(len(x)), np.full(len(x), max_iter, dtype=np.int16)
    # The rows still iterating, one array per field, compacted together as rows finish.
    state = np.stack([np.arange(len(x)), x, w, lo, hi, side, half_x_exp, goal, np.log(goal)])
    for step_no in range(1, max_iter + 1):
        if not state.shape[1]:
            break
        rows, xa, wa, lo, hi, sa, hxa, goal_a, log_goal = state
        value, slope = _normalized_otm(xa, wa, hxa, sa)
        too_high = sa * (value - goal_a) > 0  # b(w) above b_target: w is an upper end
        hi, lo = np.where(too_high, wa, hi), np.where(too_high, lo, wa)
        # Halley on f = ln(value) - ln(goal): f' = v'/v and f''/f' = b''/b' - v'/v, where
        # v' = side * b' and b''/b' = x^2 / w^3 - w / 4.
        rate = sa * slope / value
        ratio = (np.log(value) - log_goal) / rate
        curvature = xa * xa / (wa * wa * wa) - 0.25 * wa - rate
        step = -ratio / np.clip(1.0 - 0.5 * ratio * curvature, 0.5, 2.0)
        nxt = wa + step
        # A converged step may cross the bracket by rounding: accept it before bisecting.
        done = np.abs(step) <= _STEP_TOL * wa
        keep = done | (np.isfinite(nxt) & (nxt > lo) & (nxt < hi))
        state[2], state[3], state[4] = np.where(keep, nxt, 0.5 * (lo + hi)), lo, hi
        finished = np.flatnonzero(done)
        if len(finished):
            at = rows[finished].astype(np.intp)
            solved[at], steps[at] = state[2, finished], step_no
            state = np.compress(~done, state, axis=1)
    solved[state[0].astype(np.intp)] = state[2]
    miss = np.abs(_normalized_otm(x, solved, half_x_exp, side)[0] - goal)
    return solved, miss, steps
