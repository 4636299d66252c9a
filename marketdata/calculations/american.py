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

Greeks are exact derivatives of the approximation: the formula (`_american_jets`) is evaluated
once on forward-mode jets, in the call's terms, carrying the first derivatives along the spot,
sigma, the rate and the dividend yield and the second along the spot, each elementary function
with its analytic derivative (the bivariate normal's from the univariate one). The put's delta
and gamma and every theta follow exactly from two properties of the value (`_formula`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from marketdata.calculations import black_scholes as bs
from marketdata.calculations._american_jets import Model, _Boundary, _call, _Jet, _Market
from marketdata.calculations.black_scholes import DAYS_PER_YEAR, Greeks, ImpliedVol, Reason

Array = npt.NDArray[np.float64]

_MAX_TOTAL_VOL = 10.0  # top of the implied-volatility bracket when the European one has none
_SIGMA_STEP = 1e-6  # a Halley step under this fraction of sigma ends the IV iteration
_PRICE_STOP = 1e-4  # so does a price within this fraction of the tolerance


# Rows per pass: a quarter of black_scholes._CHUNK, as a pass here holds its (12 x rows)
# quadrature exponents and four-direction jets, and these stay in cache only at this size.
_CHUNK = 4_096


def _in_chunks(fn: bs.Pass, inputs: list[Array], shape: tuple[int, ...]) -> list[npt.NDArray[Any]]:
    """fn over flat inputs, _CHUNK rows at a time; its outputs joined and shaped."""
    n = inputs[0].size
    pieces = [fn(*(a[i : i + _CHUNK] for a in inputs)) for i in range(0, max(n, 1), _CHUNK)]
    return [np.concatenate(column).reshape(shape) for column in zip(*pieces, strict=True)]


_DIRECTIONS = ("S", "sigma", "r", "T")


def _volga(S: Array, K: Array, T: Array, r: Array, sigma: Array, q: Array, vega: Array) -> Array:
    """The European d2 value / d sigma2 from its vega (per unit of sigma): vega d1 d2 / sigma
    (0 where sigma sqrt(T) is 0 or the inputs are bad)."""
    with np.errstate(all="ignore"):
        vol_t = sigma * np.sqrt(T)
        d1 = (np.log(S / K) + (r - q) * T) / vol_t + 0.5 * vol_t
        volga = vega * d1 * (d1 - vol_t) / sigma
    return np.where(np.isfinite(volga), volga, 0.0)


# The formula is seeded in the call's terms (inputs spot, strike, T, rate, div, sigma) along
# the spot, sigma, the rate and the dividend yield; the strike and T stay constants, which is
# cheaper. The put's delta and gamma (along its S, the call's strike) follow from the value's
# homogeneity in (spot, strike), C = spot dC/dspot + strike dC/dstrike, and theta from its
# invariance under T -> l T, (r, q) -> (r, q) / l, sigma -> sigma / sqrt(l):
# T dC/dT = rate dC/drate + div dC/ddiv + sigma / 2 dC/dsigma.
_SEEDS = {"s": 0, "r_c": 3, "q_c": 4, "sigma": 5}
_NEEDS = {"S": ("s",), "sigma": ("sigma",), "r": ("r_c", "q_c"), "T": ("sigma", "r_c", "q_c")}


def _formula(
    inputs: list[Array],
    call: npt.NDArray[np.bool_],
    directions: tuple[str, ...],
    second: bool,
    model: Model,
) -> tuple[Array, Array, Array]:
    """The approximation's value, derivatives along `directions` (rows) and second derivative
    along the first (S or sigma) on rows where it applies, from jets in the call's terms."""
    seeds = list(dict.fromkeys(d for name in directions for d in _NEEDS[name]))
    n = inputs[0].size
    jets = [_Jet(a, None) for a in inputs]
    for i, d in enumerate(seeds):
        g = np.zeros((len(seeds), n))
        g[i] = 1.0
        jets[_SEEDS[d]] = _Jet(inputs[_SEEDS[d]], g, np.zeros(n) if second else None)
    m = _Market(*jets)
    am = _call(m, jets[1], _Boundary(m, jets[1], model), model)
    v, h = am.v, am.h if am.h is not None else np.zeros(n)
    rows = dict(zip(seeds, am.g if am.g is not None else [], strict=True))
    spot, strike, t, rate, div, sigma = inputs
    grad = []
    for d in directions:
        if d == "S":
            grad.append(np.where(call, rows["s"], (v - spot * rows["s"]) / strike))
            if second and d == directions[0]:
                h = np.where(call, h, (spot / strike) ** 2 * h)
        elif d == "sigma":
            grad.append(rows["sigma"])
        elif d == "r":
            grad.append(np.where(call, rows["r_c"], rows["q_c"]))
        else:
            rates = rate * rows["r_c"] + div * rows["q_c"]
            grad.append((rates + 0.5 * sigma * rows["sigma"]) / t)
    return v, np.array(grad).reshape(len(directions), n), h


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
    second: bool = False,
) -> tuple[Array, Array, Array, Array, npt.NDArray[np.int8]]:
    """(American value, its derivatives along `directions` (rows), the second derivative along
    the first direction (S or sigma; zeros unless `second`), European value, reason) of flat
    inputs."""
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
        curv = np.zeros(n)
        if second and directions[0] == "S":
            curv = eu.gamma.copy()
        elif second:
            curv = _volga(S, K, T, r, sigma, q, parts["sigma"])
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
        inputs = [spot[rows], strike[rows], T[rows], rate[rows], div[rows], sigma[rows]]
        with np.errstate(all="ignore"):
            # The boundary alone (values, no derivatives) first: rows past it or where it runs
            # away take the intrinsic or the European value, so the formula skips them.
            plain = [_Jet(a, None) for a in inputs]
            edge = _Boundary(_Market(*plain), plain[1], model)
            now, runaway = edge.now, edge.runaway
            formula = np.flatnonzero(~(now | runaway))
            am_v, am_g = np.zeros(rows.size), np.zeros((k, rows.size))
            am_h = np.zeros(rows.size)
            if formula.size:
                picked = [a[formula] for a in inputs]
                am_v[formula], am_g[:, formula], am_h[formula] = _formula(
                    picked, c[formula], directions, second, model
                )
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
        value, grad, curv, euro, reason = _evaluate(
            *inputs, directions=directions, model=model, second=bool(directions)
        )
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

    The European implied volatility sigma_E of the same price bounds it from above (an American
    option is worth at least the European one at every sigma), so each row has the bracket
    [0, sigma_E] (or up to a total volatility of 10 when the price is above the European
    bound). Where the American value at sigma_E is the European one, sigma_E is the answer;
    elsewhere the start is the European implied volatility of the price less the early exercise
    premium at sigma_E, then Halley steps on sigma with the analytic vega and volga (the
    error is cubed each step); a step that leaves the bracket is replaced by bisection. A row
    stops once its price is within 1e-4 tol (the answer is that sigma) or its step is under
    1e-6 of sigma (the answer is where the step lands: the error left is of the order of the
    step's cube); otherwise, after `max_iter` steps, it is NOT_CONVERGED unless the last point
    priced is within tol of the price. Reasons as in `black_scholes.implied_volatility`;
    BELOW_LOWER_BOUND when the price is at or below the value at sigma = 0 (max of intrinsic
    and discounted forward intrinsic), ABOVE_UPPER_BOUND at or above S (a call) or K (a put).
    """
    shape, inputs = bs._flat(price, S, K, T, r, q, is_call)
    sigma, reason, iterations = _implied(*inputs, tol=tol, max_iter=max_iter)
    return ImpliedVol(sigma.reshape(shape), reason.reshape(shape), iterations.reshape(shape))


def _sweep(
    inputs: Sequence[Array], directions: tuple[str, ...] = (), second: bool = False
) -> tuple[Array, Array, Array, Array]:
    """The 2002 model's (value, derivatives along `directions` (rows), second derivative along
    the first, European value) of flat inputs (S, K, T, r, sigma, q, call), _CHUNK rows a pass."""
    n = inputs[0].size
    pieces = [
        _evaluate(
            *(a[i : i + _CHUNK] for a in inputs),
            directions=directions,
            model="2002",
            second=second,
        )
        for i in range(0, n, _CHUNK)
    ]
    if not pieces:
        return np.zeros(0), np.zeros((len(directions), 0)), np.zeros(0), np.zeros(0)
    value, grad, curv, euro = (
        np.concatenate([piece[j] for piece in pieces], axis=-1) for j in range(4)
    )
    return value, grad, curv, euro


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
) -> tuple[Array, npt.NDArray[np.int8], npt.NDArray[np.int16]]:
    """(sigma, reason, iterations) of flat float inputs."""
    reason = bs.validate(S, K, T, r, target, q)
    reason[reason == Reason.NEGATIVE_VOLATILITY] = Reason.OK
    reason[(reason == Reason.OK) & (T <= 0)] = Reason.EXPIRED
    sigma = np.full(target.shape, np.nan)
    iterations = np.zeros(target.shape, dtype=np.int16)
    rows = np.flatnonzero(reason == Reason.OK)
    p, s, k, t, rr, qq, c = (a[rows] for a in (target, S, K, T, r, q, call))
    lower = _sweep([s, k, t, rr, np.zeros(rows.size), qq, c])[0]
    upper = np.where(c != 0, s, k)
    reason[rows[p <= lower]] = Reason.BELOW_LOWER_BOUND
    reason[rows[p >= upper]] = Reason.ABOVE_UPPER_BOUND
    inside = (p > lower) & (p < upper)
    rows = rows[inside]
    p, s, k, t, rr, qq, c = (a[inside] for a in (p, s, k, t, rr, qq, c))
    european = bs.implied_volatility(p, s, k, t, rr, c, qq).sigma
    bounded = np.isfinite(european)
    top = np.where(bounded, european, _MAX_TOTAL_VOL / np.sqrt(t))
    # At the European volatility the American value is at least the price: equal where early
    # exercise adds nothing (a root), else its premium there shifts the start.
    at_top, _, _, euro = _sweep([s, k, t, rr, top, qq, c])
    first = bounded & (at_top == euro)
    solved, steps = top.copy(), np.full(rows.size, max_iter, dtype=np.int16)
    steps[first] = 0
    miss_at = at_top - p
    settled = np.zeros(rows.size, dtype=bool)  # stopped by the step rule or on the price
    active = np.flatnonzero(~first)
    lo, hi = np.zeros(active.size), np.where(bounded, european * (1.0 + 1e-12), top)[active]
    market = [a[active] for a in (s, k, t, rr, qq, c)]
    s_a, k_a, t_a, r_a, q_a, c_a = market
    with np.errstate(all="ignore"):
        # The premium varies little with sigma: the European implied volatility of the price
        # less the premium at the top is close to the root.
        shifted = (p - (at_top - euro))[active]
        x = bs.implied_volatility(shifted, s_a, k_a, t_a, r_a, c_a, q_a).sigma
    x = np.where(np.isfinite(x) & (x > lo) & (x < hi), x, hi)
    state = [p[active], *market, lo, hi, x]
    stop = _PRICE_STOP * tol
    for step_no in range(1, max_iter + 1):
        if not active.size:
            break
        p_a, s_a, k_a, t_a, r_a, q_a, c_a, lo_a, hi_a, x_a = state
        value, grad, curv, _ = _sweep([s_a, k_a, t_a, r_a, x_a, q_a, c_a], ("sigma",), True)
        miss = value - p_a
        hi_a, lo_a = np.where(miss > 0, x_a, hi_a), np.where(miss > 0, lo_a, x_a)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            ratio = miss / grad[0]
            bend = np.where(np.isfinite(curv), 0.5 * ratio * curv / grad[0], 0.0)
            nxt = x_a - ratio / np.clip(1.0 - bend, 0.5, 2.0)
        exact = np.abs(miss) <= stop
        done = exact | (np.abs(nxt - x_a) <= _SIGMA_STEP * x_a)
        inside_b = np.isfinite(nxt) & (nxt > lo_a) & (nxt < hi_a)
        nxt = np.where(done | inside_b, nxt, 0.5 * (lo_a + hi_a))
        finished = active[done]
        solved[finished] = np.where(exact, x_a, nxt)[done]
        miss_at[finished], steps[finished], settled[finished] = miss[done], step_no, True
        keep = ~done
        active = active[keep]
        miss_at[active] = miss[keep]
        state = [a[keep] for a in (p_a, s_a, k_a, t_a, r_a, q_a, c_a, lo_a, hi_a, nxt)]
    solved[active] = state[-1]
    converged = settled | (np.abs(miss_at) <= tol)
    sigma[rows[converged]] = solved[converged]
    reason[rows[~converged]] = Reason.NOT_CONVERGED
    iterations[rows] = steps
    return sigma, reason, iterations
