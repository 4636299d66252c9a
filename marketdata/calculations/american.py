"""American options on arrays: the Bjerksund-Stensland (2002) approximation, vectorized.

Prices, Greeks, implied volatility and the early exercise premium of American calls and puts
for a whole book at once, with the units, limits and `Reason` codes of `black_scholes` (its
module docstring): S, K in currency; T in years (calendar days / DAYS_PER_YEAR); r, q
(continuous dividend yield), sigma as decimals; delta and gamma per 1 of S, theta per calendar
day, vega per vol point, rho per rate point (q held fixed).

The model. Bjerksund and Stensland ("Closed form valuation of American options", 2002) price a
call as if it were exercised when S first reaches a flat boundary, with two boundaries: I2 on
[0, t1] and I1 on [t1, T], t1 = (sqrt 5 - 1) T / 2. It needs the univariate and the bivariate
normal distribution (the latter at the fixed correlations +-sqrt(t1 / T), by 12-point
Gauss-Legendre quadrature of Drezner's integral: within 2e-15 of QuantLib's We04DP). It is about
twice as accurate as their 1993 one-boundary approximation (`model="1993"`), which is what
QuantLib's BjerksundStenslandApproximationEngine implements (that engine's rules are kept in
both models: the European value when the boundary is more than 12.5 standard deviations away,
and never less than the European value or the intrinsic value). A put is the call with spot and
strike, r and q exchanged: P(S, K, T, r, q, sigma) = C(K, S, T, q, r, sigma).

Where early exercise is never optimal, a call with q <= 0 and q <= r or a put with r <= 0 and
r <= q, the value and Greeks are the European ones exactly. Where the approximation does not
apply (the double-boundary case, a call with r < q < 0 or a put with q < r < 0) the value is
max(European, intrinsic), a lower bound. Expired options are worth their intrinsic value with
zero Greeks; with sigma = 0 (T > 0) the value is max(intrinsic, European), that of exercising now
or at expiry.

Greeks are exact derivatives of the approximation: the formula is evaluated once on forward-mode
jets (value, first derivatives in S, sigma, r and T, and the second in S), each elementary
function carrying its analytic derivative (the bivariate normal's from the univariate one).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from marketdata.calculations import black_scholes as bs
from marketdata.calculations._american_jets import T1 as _T1
from marketdata.calculations._american_jets import (
    _bivariate,
    _exp,
    _Jet,
    _log,
    _ndtr,
    _sqrt,
    _where,
)
from marketdata.calculations.black_scholes import DAYS_PER_YEAR, Greeks, ImpliedVol, Reason

Array = npt.NDArray[np.float64]
Model = Literal["2002", "1993"]

_RUNAWAY = 12.5  # boundary this many standard deviations above the forward: European value
_MAX_TOTAL_VOL = 10.0  # top of the implied-volatility bracket when the European one has none
_SIGMA_STEP = 1e-11  # a Newton step below this ends the implied-volatility iteration
_PRICE_STOP = 1e-4  # so does a price within this fraction of the tolerance


# Rows per pass: a quarter of black_scholes._CHUNK, as a pass here holds its (12 x rows)
# quadrature exponents and four-direction jets, and these stay in cache only at this size.
_CHUNK = 4_096


# The implied-volatility iteration: its last passes run on a few rows each, whose cost is the
# per-pass overhead, so it takes black_scholes' larger slices (4x fewer of those passes;
# 65,536 rows is 3x slower again, out of cache).
_IV_CHUNK = bs._CHUNK


def _in_chunks(
    fn: bs.Pass, inputs: list[Array], shape: tuple[int, ...], chunk: int = _CHUNK
) -> list[npt.NDArray[Any]]:
    """fn over flat inputs, `chunk` rows at a time; its outputs joined and shaped."""
    n = inputs[0].size
    pieces = [fn(*(a[i : i + chunk] for a in inputs)) for i in range(0, max(n, 1), chunk)]
    return [np.concatenate(column).reshape(shape) for column in zip(*pieces, strict=True)]


class _Market:
    """The call's inputs in logs and the drift terms shared by every phi and psi."""

    def __init__(self, S: _Jet, K: _Jet, T: _Jet, r: _Jet, q: _Jet, sigma: _Jet) -> None:
        self.x_s, self.x_k = _log(S), _log(K)
        self.T, self.r, self.b = T, r, r - q
        self.var = sigma * sigma
        self.sigma = sigma


def _phi(
    m: _Market,
    t: _Jet,
    gamma: _Jet | float,
    x_h: _Jet,
    x_i: _Jet,
    log_c: _Jet | float = 0.0,
    minus: _Jet | None = None,
) -> _Jet:
    """e^log_c phi(S, t, gamma, H, I) of Bjerksund-Stensland, from x = ln S, ln H, ln I (less
    the same at H = e^minus: the terms not in H are shared)."""
    vol = _sqrt(m.var * t)
    lam = (gamma * m.b - m.r + 0.5 * gamma * (gamma - 1.0) * m.var) * t
    kappa = 2.0 * m.b / m.var + (2.0 * gamma - 1.0)
    drift = m.x_s + (m.b + (gamma - 0.5) * m.var) * t
    lead = lam + gamma * m.x_s + log_c
    gap = 2.0 * (x_i - m.x_s) / vol
    d = (drift - x_h) / vol
    near, far = _ndtr(-d), _ndtr(-d - gap)
    if minus is not None:
        d = (drift - minus) / vol
        near, far = near - _ndtr(-d), far - _ndtr(-d - gap)
    return _exp(lead) * near - _exp(lead + kappa * (x_i - m.x_s)) * far


def _psi(
    m: _Market,
    gamma: _Jet | float,
    x_h: _Jet,
    x_i2: _Jet,
    x_i1: _Jet,
    vol1: _Jet,
    log_c: _Jet | float = 0.0,
    minus: _Jet | None = None,
) -> _Jet:
    """e^log_c psi(S, T, gamma, H, I2, I1, t1) of Bjerksund-Stensland 2002 (less the same at
    H = e^minus)."""
    mu = m.b + (gamma - 0.5) * m.var
    mu1, mu2 = mu * (_T1 * m.T), mu * m.T
    vol2 = _sqrt(m.var * m.T)
    near, far = m.x_s - x_i1, 2.0 * x_i2 - m.x_s - x_i1
    e = (
        -((near + mu1) / vol1),
        -((far + mu1) / vol1),
        -((near - mu1) / vol1),
        -((far - mu1) / vol1),
    )
    shifts: tuple[_Jet | float, ...] = (
        0.0,
        2.0 * (x_i2 - m.x_s),
        2.0 * (x_i1 - m.x_s),
        2.0 * (x_i1 - x_i2),
    )
    sides = (1, 1, -1, -1)

    def terms(x: _Jet) -> list[_Jet]:
        base = m.x_s - x + mu2
        return [
            _bivariate(e_j, -((base + shift) / vol2), side)
            for e_j, shift, side in zip(e, shifts, sides, strict=True)
        ]

    m_j = terms(x_h)
    if minus is not None:
        m_j = [a - b for a, b in zip(m_j, terms(minus), strict=True)]
    lam = (gamma * m.b - m.r + 0.5 * gamma * (gamma - 1.0) * m.var) * m.T
    kappa = 2.0 * m.b / m.var + (2.0 * gamma - 1.0)
    lead = lam + gamma * m.x_s + log_c
    return (
        _exp(lead) * m_j[0]
        - _exp(lead + kappa * (x_i2 - m.x_s)) * m_j[1]
        - _exp(lead + kappa * (x_i1 - m.x_s)) * m_j[2]
        + _exp(lead + kappa * (x_i1 - x_i2)) * m_j[3]
    )


class _Boundary:
    """The call's exercise boundaries (I1 only in the 2002 model) and beta, with the rows where
    S is at or past the boundary (exercise now) and those where it runs away (European value)."""

    def __init__(self, m: _Market, K: _Jet, model: Model) -> None:
        ratio = m.b / m.var
        beta = (0.5 - ratio) + _sqrt((ratio - 0.5) * (ratio - 0.5) + 2.0 * m.r / m.var)
        b_inf = beta / (beta - 1.0) * K
        q = m.r - m.b
        b_0 = _where(m.r.v > q.v, K * m.r / q, K)
        span = b_inf - b_0

        def boundary(t: _Jet, scale: _Jet) -> _Jet:
            return b_0 + span * (1.0 - _exp(-(m.b * t + 2.0 * _sqrt(m.var * t)) * scale))

        self.beta = beta
        if model == "1993":
            self.i_2 = self.i_1 = boundary(m.T, b_0 / span)
        else:
            scale = K * K / (span * b_0)
            self.i_1, self.i_2 = boundary(_T1 * m.T, scale), boundary(m.T, scale)
        self.x_i2 = _log(self.i_2)
        self.now = m.x_s.v >= self.x_i2.v
        forward = m.x_s.v + m.b.v * m.T.v
        self.runaway = (self.x_i2.v - forward) / np.sqrt(m.var.v * m.T.v) > _RUNAWAY


def _call(m: _Market, K: _Jet, edge: _Boundary, model: Model) -> _Jet:
    """The approximation of the call on rows with q > 0."""
    beta, i_1, i_2, x_i2 = edge.beta, edge.i_1, edge.i_2, edge.x_i2
    x_k = m.x_k
    if model == "1993":
        value = (i_2 - K) * (
            _exp(beta * (m.x_s - x_i2)) - _phi(m, m.T, beta, x_i2, x_i2, -beta * x_i2)
        )
        value = value + _phi(m, m.T, 1.0, x_i2, x_i2, minus=x_k)
        value = value - K * _phi(m, m.T, 0.0, x_i2, x_i2, minus=x_k)
    else:
        t_1 = _T1 * m.T
        x_i1 = _log(i_1)
        vol1 = _sqrt(m.var * t_1)
        value = (i_2 - K) * (
            _exp(beta * (m.x_s - x_i2)) - _phi(m, t_1, beta, x_i2, x_i2, -beta * x_i2)
        )
        value = value + _phi(m, t_1, 1.0, x_i2, x_i2, minus=x_i1)
        value = value - K * _phi(m, t_1, 0.0, x_i2, x_i2, minus=x_i1)
        c_1 = -beta * x_i1
        value = value + (i_1 - K) * (
            _phi(m, t_1, beta, x_i1, x_i2, c_1) - _psi(m, beta, x_i1, x_i2, x_i1, vol1, c_1)
        )
        value = value + _psi(m, 1.0, x_i1, x_i2, x_i1, vol1, minus=x_k)
        value = value - K * _psi(m, 0.0, x_i1, x_i2, x_i1, vol1, minus=x_k)
    return value


_DIRECTIONS = ("S", "sigma", "r", "T")


def _seeded(values: Sequence[Array], seeds: Sequence[Array], second: bool) -> list[_Jet]:
    """Jets of independent inputs: values[i] with derivative seeds[i][d] along direction d."""
    return [
        _Jet(v, s, np.zeros_like(v) if second else None) for v, s in zip(values, seeds, strict=True)
    ]


def _evaluate(
    S: Array,
    K: Array,
    T: Array,
    r: Array,
    sigma: Array,
    q: Array,
    call_flag: Array,
    *,
    directions: tuple[str, ...],
    model: Model,
) -> tuple[Array, Array, Array, Array, npt.NDArray[np.int8]]:
    """(American value, its derivatives along `directions` (rows), d2/dS2 (zeros unless the
    first direction is S), European value, reason) of flat inputs."""
    second = directions[:1] == ("S",)
    n, k = S.size, len(directions)
    call = call_flag != 0
    if k:
        eu = bs.greeks(S, K, T, r, sigma, call, q)
        reason, euro = eu.reason, eu.price
        parts = {
            "S": eu.delta,
            "sigma": eu.vega * 100.0,
            "r": eu.rho * 100.0,
            "T": -eu.theta * DAYS_PER_YEAR,
        }
        grad = np.stack([parts[d] for d in directions])
        curv = eu.gamma.copy() if second else np.zeros(n)
    else:
        reason = bs.validate(S, K, T, r, sigma, q)
        euro = bs.price(S, K, T, r, sigma, call, q)
        grad, curv = np.zeros((0, n)), np.zeros(n)
    value = euro.copy()
    ok = reason == Reason.OK
    live = ok & (T > 0)
    spot, strike = np.where(call, S, K), np.where(call, K, S)
    rate, div = np.where(call, r, q), np.where(call, q, r)
    european_only = live & (div <= 0) & (div <= rate)
    approx = live & (sigma > 0) & (div > 0)
    rows = np.flatnonzero(approx)
    if rows.size:
        c = call[rows]
        one, zero = np.ones(rows.size), np.zeros(rows.size)
        seed = {
            "S": (c * 1.0, ~c * 1.0, zero, zero, zero, zero),
            "sigma": (zero, zero, zero, zero, zero, one),
            "r": (zero, zero, zero, c * 1.0, ~c * 1.0, zero),
            "T": (zero, zero, one, zero, zero, zero),
        }
        columns = [
            np.array([seed[d][i] for d in directions]).reshape(k, rows.size) for i in range(6)
        ]
        inputs = [spot[rows], strike[rows], T[rows], rate[rows], div[rows], sigma[rows]]
        with np.errstate(all="ignore"):
            # The boundary alone (values, no derivatives) first: rows past it or where it runs
            # away take the intrinsic or the European value, so the formula skips them.
            plain = _seeded(inputs, [np.zeros((0, rows.size))] * 6, False)
            edge = _Boundary(_Market(*plain), plain[1], model)
            now, runaway = edge.now, edge.runaway
            formula = np.flatnonzero(~(now | runaway))
            am_v, am_g = np.zeros(rows.size), np.zeros((k, rows.size))
            am_h = np.zeros(rows.size)
            if formula.size:
                picked = [a[formula] for a in inputs]
                jets = _seeded(picked, [a[:, formula] for a in columns], second)
                m = _Market(*jets)
                am = _call(m, jets[1], _Boundary(m, jets[1], model), model)
                am_v[formula], am_g[:, formula] = am.v, am.g
                if am.h is not None:
                    am_h[formula] = am.h
        intrinsic = spot[rows] - strike[rows]
        # QuantLib's order: exercise now past the boundary, then never below the European
        # value (nor where the boundary runs away or the model is undefined), then never below
        # the intrinsic value.
        am_v = np.where(now, intrinsic, am_v)
        use_euro = runaway | ~(am_v >= euro[rows])
        a_v = np.where(use_euro, euro[rows], am_v)
        a_g = np.where(use_euro, grad[:, rows], am_g)
        a_h = np.where(use_euro, curv[rows], am_h)
        if "S" in directions:
            a_g[directions.index("S"), now & ~use_euro] = np.where(c, 1.0, -1.0)[now & ~use_euro]
        now = a_v < intrinsic * (1.0 + 10.0 * np.finfo(float).eps)
        value[rows] = np.where(now, intrinsic, a_v)
        grad[:, rows] = np.where(now, 0.0, a_g)
        curv[rows] = np.where(now, 0.0, a_h)
        if "S" in directions:
            grad[directions.index("S"), rows[now]] = np.where(c[now], 1.0, -1.0)
    rest = np.flatnonzero(live & ~approx & ~european_only)
    if rest.size:
        # sigma = 0 or the double-boundary case: the better of exercising now and at expiry.
        intrinsic = np.maximum(np.where(call[rest], 1.0, -1.0) * (S[rest] - K[rest]), 0.0)
        now = intrinsic > value[rest]
        at = rest[now]
        value[at], grad[:, at], curv[at] = intrinsic[now], 0.0, 0.0
        if "S" in directions:
            grad[directions.index("S"), at] = np.where(call[at], 1.0, -1.0)
    return value, grad, curv, euro, reason


def _pass(directions: tuple[str, ...], model: Model) -> bs.Pass:
    def run(*inputs: Array) -> tuple[npt.NDArray[np.generic], ...]:
        value, grad, curv, euro, reason = _evaluate(*inputs, directions=directions, model=model)
        return (value, *grad, curv, euro, reason)

    return run


def price(
    S: npt.ArrayLike,
    K: npt.ArrayLike,
    T: npt.ArrayLike,
    r: npt.ArrayLike,
    sigma: npt.ArrayLike,
    is_call: npt.ArrayLike,
    q: npt.ArrayLike = 0.0,
    *,
    model: Model = "2002",
) -> Array:
    """American price per share (module docstring); NaN where `black_scholes.validate` fails."""
    shape, inputs = bs._flat(S, K, T, r, sigma, q, is_call)
    return _in_chunks(_pass((), model), inputs, shape)[0]


def greeks(
    S: npt.ArrayLike,
    K: npt.ArrayLike,
    T: npt.ArrayLike,
    r: npt.ArrayLike,
    sigma: npt.ArrayLike,
    is_call: npt.ArrayLike,
    q: npt.ArrayLike = 0.0,
    *,
    model: Model = "2002",
) -> Greeks:
    """Price, delta, gamma, theta (per day), vega (per vol point), rho (per rate point)."""
    shape, inputs = bs._flat(S, K, T, r, sigma, q, is_call)
    value, d_s, d_sigma, d_r, d_t, curv, _, reason = _in_chunks(
        _pass(_DIRECTIONS, model), inputs, shape
    )
    return Greeks(value, d_s, curv, -d_t / DAYS_PER_YEAR, d_sigma / 100.0, d_r / 100.0, reason)


def early_exercise_premium(
    S: npt.ArrayLike,
    K: npt.ArrayLike,
    T: npt.ArrayLike,
    r: npt.ArrayLike,
    sigma: npt.ArrayLike,
    is_call: npt.ArrayLike,
    q: npt.ArrayLike = 0.0,
    *,
    model: Model = "2002",
) -> Array:
    """American minus European (Black-Scholes-Merton) price per share: >= 0, and exactly 0
    where early exercise is never optimal."""
    shape, inputs = bs._flat(S, K, T, r, sigma, q, is_call)
    value, _, euro, _ = _in_chunks(_pass((), model), inputs, shape)
    premium: Array = value - euro
    return premium


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
    max_iter: int = 40,
) -> ImpliedVol:
    """The sigma at which the American price equals `price`, per option.

    The European implied volatility of the same price bounds it from above (an American option
    is worth at least the European one at every sigma), so each row has the bracket [0, sigma_E]
    (or up to a total volatility of 10 when the price is above the European bound). Where the
    American value at sigma_E is the European one, sigma_E is the answer; elsewhere the start
    is the European implied volatility of the price less the early exercise premium at sigma_E,
    then Halley steps on sigma with the analytic vega and the Black-Scholes curvature
    (d1 d2 / sigma); a step that leaves the bracket is replaced by bisection. A row stops once
    its step is under 1e-11 in sigma, or its price is within 1e-4 tol; unless the last point
    priced is within tol of the price it is NOT_CONVERGED. Reasons as in
    `black_scholes.implied_volatility`; BELOW_LOWER_BOUND when the price is at or below the
    value at sigma = 0 (max of intrinsic and discounted forward intrinsic), ABOVE_UPPER_BOUND
    at or above S (a call) or K (a put).
    """
    shape, inputs = bs._flat(price, S, K, T, r, q, is_call)
    sigma, reason, iterations = _in_chunks(
        lambda *a: _implied(*a, tol=tol, max_iter=max_iter), inputs, shape, _IV_CHUNK
    )
    return ImpliedVol(sigma, reason, iterations)


def _implied(
    target: Array,
    S: Array,
    K: Array,
    T: Array,
    r: Array,
    q: Array,
    call: Array,
    *,
    tol: float,
    max_iter: int,
) -> tuple[npt.NDArray[np.generic], ...]:
    """(sigma, reason, iterations) of flat float inputs."""
    reason = bs.validate(S, K, T, r, target, q)
    reason[reason == Reason.NEGATIVE_VOLATILITY] = Reason.OK
    reason[(reason == Reason.OK) & (T <= 0)] = Reason.EXPIRED
    sigma = np.full(target.shape, np.nan)
    iterations = np.zeros(target.shape, dtype=np.int16)
    rows = np.flatnonzero(reason == Reason.OK)
    p, s, k, t, rr, qq, c = (a[rows] for a in (target, S, K, T, r, q, call))
    lower = _evaluate(s, k, t, rr, np.zeros(rows.size), qq, c, directions=(), model="2002")[0]
    upper = np.where(c != 0, s, k)
    reason[rows[p <= lower]] = Reason.BELOW_LOWER_BOUND
    reason[rows[p >= upper]] = Reason.ABOVE_UPPER_BOUND
    inside = (p > lower) & (p < upper)
    rows = rows[inside]
    p, s, k, t, rr, qq, c = (a[inside] for a in (p, s, k, t, rr, qq, c))
    european = bs.implied_volatility(p, s, k, t, rr, c, qq).sigma
    bounded = np.isfinite(european)
    x = np.where(bounded, european, _MAX_TOTAL_VOL / np.sqrt(t))
    # At the European volatility the American value is at least the price: equal where early
    # exercise adds nothing (a root), else its premium there shifts the start.
    at_top, _, _, euro, _ = _evaluate(s, k, t, rr, x, qq, c, directions=(), model="2002")
    premium = at_top - euro
    first = bounded & (premium == 0.0)
    with np.errstate(all="ignore"):
        start = bs.implied_volatility(p - premium, s, k, t, rr, c, qq).sigma
    hi = np.where(bounded, european * (1.0 + 1e-12), x)
    lo = np.zeros(rows.size)
    x = np.where(np.isfinite(start) & (start > lo) & (start < hi), start, hi)
    solved, steps = x.copy(), np.full(rows.size, max_iter, dtype=np.int16)
    miss_at = at_top - p
    steps[first] = 0
    active = np.flatnonzero(~first)
    state = [a[active] for a in (p, s, k, t, rr, qq, c, lo, hi, x)]
    stop = _PRICE_STOP * tol
    for step_no in range(1, max_iter + 1):
        if not active.size:
            break
        p_a, s_a, k_a, t_a, r_a, q_a, c_a, lo_a, hi_a, x_a = state
        value, grad, *_ = _evaluate(
            s_a, k_a, t_a, r_a, x_a, q_a, c_a, directions=("sigma",), model="2002"
        )
        miss = value - p_a
        hi_a, lo_a = np.where(miss > 0, x_a, hi_a), np.where(miss > 0, lo_a, x_a)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            # Halley with the European curvature: vega'/vega = d1 d2 / sigma (Black-Scholes).
            vol_t = x_a * np.sqrt(t_a)
            d1 = (np.log(s_a / k_a) + (r_a - q_a) * t_a) / vol_t + 0.5 * vol_t
            ratio = miss / grad[0]
            bend = 0.5 * ratio * d1 * (d1 - vol_t) / x_a
            nxt = x_a - ratio / np.clip(1.0 - bend, 0.5, 2.0)
        exact = np.abs(miss) <= stop
        done = exact | (np.abs(nxt - x_a) <= _SIGMA_STEP)
        inside_b = np.isfinite(nxt) & (nxt > lo_a) & (nxt < hi_a)
        nxt = np.where(done | inside_b, nxt, 0.5 * (lo_a + hi_a))
        finished = active[done]
        solved[finished] = np.where(exact, x_a, nxt)[done]
        miss_at[finished], steps[finished] = miss[done], step_no
        keep = ~done
        active = active[keep]
        miss_at[active] = miss[keep]
        state = [a[keep] for a in (p_a, s_a, k_a, t_a, r_a, q_a, c_a, lo_a, hi_a, nxt)]
    solved[active] = state[-1]
    converged = np.abs(miss_at) <= tol
    sigma[rows[converged]] = solved[converged]
    reason[rows[~converged]] = Reason.NOT_CONVERGED
    iterations[rows] = steps
    return sigma, reason, iterations
