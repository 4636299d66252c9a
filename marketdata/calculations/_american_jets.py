"""The Bjerksund-Stensland formula of the American engine (`american`) on forward-mode jets:
values with their first derivatives along a few directions and, when asked for, the second
along the first (constants, with none, cost one array operation a step); elementary functions
carrying their analytic derivatives; the bivariate normal distribution at the fixed
correlations +-sqrt(t1 / T) of the 2002 model; and the call's value in either model, its
exercise boundaries, and the terms that the 2002 model's phi and psi functions share."""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy.special import ndtr

Array = npt.NDArray[np.float64]
Model = Literal["2002", "1993"]

T1 = 0.5 * (np.sqrt(5.0) - 1.0)  # t1 / T, the golden section of the life
_RHO = float(np.sqrt(T1))
_INV_2PI = 1.0 / (2.0 * np.pi)
_INV_SQRT_2PI = 1.0 / np.sqrt(2.0 * np.pi)
_SCALE = float(1.0 / np.sqrt(1.0 - T1))  # 1 / sqrt(1 - rho^2)
_RUNAWAY = 12.5  # boundary this many standard deviations above the forward: European value


def _quadrature(rho: float) -> tuple[Array, Array]:
    """Nodes of M(a, b, rho) - N(a) N(b) = 1/2pi int_0^asin(rho) exp(-(a^2 - 2ab sin + b^2) /
    2cos^2) (Drezner 1978): the weights, and (sin/cos^2, -1/(2cos^2)) at each node (rows)."""
    x, w = np.polynomial.legendre.leggauss(12)
    half = 0.5 * np.arcsin(rho)
    s = np.sin(half * (x + 1.0))
    c2 = 1.0 - s * s
    return w * half * _INV_2PI, np.stack([s / c2, -0.5 / c2], axis=1)


_NODES = {1: _quadrature(_RHO), -1: _quadrature(-_RHO)}


class _Jet:
    """Values with their first derivatives along a few directions (g, one row each) and, when
    asked for, the second derivative along the first direction (h). A constant, with no
    derivative in any direction, has g = h = None and costs one array operation a step."""

    __slots__ = ("g", "h", "v")
    __array_ufunc__ = None  # numpy defers to these operators: array * jet is a jet

    def __init__(self, v: Array, g: Array | None, h: Array | None = None) -> None:
        self.v, self.g, self.h = v, g, h

    def __add__(self, o: _Jet | Array | float) -> _Jet:
        if not isinstance(o, _Jet):
            return _Jet(self.v + o, self.g, self.h)
        if o.g is None:
            return _Jet(self.v + o.v, self.g, self.h)
        if self.g is None:
            return _Jet(self.v + o.v, o.g, o.h)
        h = None if self.h is None or o.h is None else self.h + o.h
        return _Jet(self.v + o.v, self.g + o.g, h)

    __radd__ = __add__

    def __neg__(self) -> _Jet:
        if self.g is None:
            return _Jet(-self.v, None)
        return _Jet(-self.v, -self.g, None if self.h is None else -self.h)

    def __sub__(self, o: _Jet | Array | float) -> _Jet:
        if not isinstance(o, _Jet):
            return _Jet(self.v - o, self.g, self.h)
        if o.g is None:
            return _Jet(self.v - o.v, self.g, self.h)
        if self.g is None:
            return _Jet(self.v - o.v, -o.g, None if o.h is None else -o.h)
        h = None if self.h is None or o.h is None else self.h - o.h
        return _Jet(self.v - o.v, self.g - o.g, h)

    def __rsub__(self, o: Array | float) -> _Jet:
        return (-self) + o

    def _scaled(self, v: Array, by: Array | float) -> _Jet:
        """This jet's derivatives times `by`, with the value v."""
        if self.g is None:
            return _Jet(v, None)
        return _Jet(v, self.g * by, None if self.h is None else self.h * by)

    def __mul__(self, o: _Jet | Array | float) -> _Jet:
        if not isinstance(o, _Jet):
            return self._scaled(self.v * o, o)
        if o.g is None:
            return self._scaled(self.v * o.v, o.v)
        if self.g is None:
            return o._scaled(self.v * o.v, self.v)
        h = None
        if self.h is not None and o.h is not None:
            h = self.h * o.v
            h += 2.0 * self.g[0] * o.g[0]
            h += self.v * o.h
        g = self.g * o.v
        g += o.g * self.v
        return _Jet(self.v * o.v, g, h)

    __rmul__ = __mul__

    def __truediv__(self, o: _Jet | Array | float) -> _Jet:
        if not isinstance(o, _Jet):
            inv = 1.0 / o
            return self._scaled(self.v * inv, inv)
        inv = 1.0 / o.v
        v = self.v * inv
        if o.g is None:
            return self._scaled(v, inv)
        # q = a / b: q' = (a' - q b') / b, q'' = (a'' - 2 q' b' - q b'') / b.
        g = o.g * (-v) if self.g is None else self.g - o.g * v
        g *= inv
        h = None
        if o.h is not None and (self.g is None or self.h is not None):
            h = -2.0 * g[0] * o.g[0]
            h -= v * o.h
            if self.h is not None:
                h += self.h
            h *= inv
        return _Jet(v, g, h)

    def __rtruediv__(self, o: Array | float) -> _Jet:
        return _Jet(np.asarray(o, dtype=float), None) / self


def _unary(a: _Jet, f0: Array, f1: Array, f2: Array) -> _Jet:
    """f(a) from f, f' and f'' at a.v."""
    if a.g is None:
        return _Jet(f0, None)
    h = None if a.h is None else a.h * f1 + f2 * a.g[0] * a.g[0]
    return _Jet(f0, a.g * f1, h)


def _exp(a: _Jet) -> _Jet:
    e = np.exp(a.v)
    return _Jet(e, None) if a.g is None else _unary(a, e, e, e)


def _log(a: _Jet) -> _Jet:
    if a.g is None:
        return _Jet(np.log(a.v), None)
    inv = 1.0 / a.v
    return _unary(a, np.log(a.v), inv, -inv * inv)


def _sqrt(a: _Jet) -> _Jet:
    root = np.sqrt(a.v)
    if a.g is None:
        return _Jet(root, None)
    return _unary(a, root, 0.5 / root, -0.25 / (root * a.v))


def _marginal(x: Array) -> tuple[Array, Array]:
    """N(x) and the normal density at x."""
    return ndtr(x), np.exp(-0.5 * x * x) * _INV_SQRT_2PI


def _ndtr(a: _Jet, marginal: tuple[Array, Array] | None = None) -> _Jet:
    """N(a), from `_marginal(a.v)` when given."""
    if a.g is None and marginal is None:
        return _Jet(ndtr(a.v), None)
    cdf, pdf = _marginal(a.v) if marginal is None else marginal
    return _Jet(cdf, None) if a.g is None else _unary(a, cdf, pdf, -a.v * pdf)


def _where(cond: npt.NDArray[np.bool_], a: _Jet, b: _Jet) -> _Jet:
    value = np.where(cond, a.v, b.v)
    some = a.g if a.g is not None else b.g
    if some is None:
        return _Jet(value, None)
    g_a = np.zeros_like(some) if a.g is None else a.g
    g_b = np.zeros_like(some) if b.g is None else b.g
    h = None
    if (a.h is not None or a.g is None) and (b.h is not None or b.g is None):
        zero = np.zeros(value.shape)
        h = np.where(cond, zero if a.h is None else a.h, zero if b.h is None else b.h)
    return _Jet(value, np.where(cond, g_a, g_b), h)


def _conditional(x: Array, y: Array, side: int) -> tuple[Array, Array]:
    """N(u) and the normal density at u = (y - rho x) / sqrt(1 - rho^2), rho = side * rho:
    d M(x, y, rho) / dx = density(x) N(u). For the psi terms it is the same at (x, y) and at
    the reflected (x - gap, y - rho gap), so it is worked out once for the two."""
    return _marginal((y - side * _RHO * x) * _SCALE)


def _bivariate(
    a: _Jet,
    b: _Jet,
    side: int,
    marginal: tuple[Array, Array] | None = None,
    conditional: tuple[Array, Array] | None = None,
) -> _Jet:
    """M(a, b, side * rho): P(X < a, Y < b) for standard normals of correlation side * rho
    (`marginal`: `_marginal(a.v)`, `conditional`: `_conditional(a.v, b.v, side)`, when known)."""
    rho = side * _RHO
    weights, coefficients = _NODES[side]
    x, y = a.v, b.v
    cdf_x, pdf_x = _marginal(x) if marginal is None else marginal
    # The exponents at all nodes (nodes x rows), exponentiated in place and summed with their
    # weights by elementwise numpy, not BLAS: a matrix product here is slower with a thread
    # pool (2-8 rows of 4,096) and its result would depend on the batch (blocking order).
    exponent = np.multiply.outer(coefficients[:, 0], x * y)
    exponent += np.multiply.outer(coefficients[:, 1], x * x + y * y)
    np.exp(exponent, out=exponent)
    exponent *= weights[:, None]
    tail = exponent.sum(axis=0)
    value = ndtr(y)
    value *= cdf_x
    value += tail
    if a.g is None and b.g is None:
        return _Jet(value, None)
    cdf_u, pdf_u = _conditional(x, y, side) if conditional is None else conditional
    cdf_w, pdf_y = ndtr((x - rho * y) * _SCALE), np.exp(-0.5 * y * y) * _INV_SQRT_2PI
    ma, mb = pdf_x * cdf_u, pdf_y * cdf_w
    # The joint density, for the second derivatives: density(x) density(u) / sqrt(1 - rho^2).
    density = pdf_x * pdf_u
    density *= _SCALE
    if a.g is None or b.g is None:
        # One argument constant: the chain rule through the other alone.
        var, slope, at = (b, mb, y) if a.g is None else (a, ma, x)
        return _unary(var, value, slope, -(at * slope + rho * density))
    g = a.g * ma
    g += b.g * mb
    h = None
    if a.h is not None and b.h is not None:
        a0, b0 = a.g[0], b.g[0]
        h = a.h * ma
        h += b.h * mb
        h -= (x * ma + rho * density) * a0 * a0
        h -= (y * mb + rho * density) * b0 * b0
        h += 2.0 * density * a0 * b0
    return _Jet(value, g, h)


class _Market:
    """The call's inputs in logs and the drift terms shared by every phi and psi."""

    def __init__(self, S: _Jet, K: _Jet, T: _Jet, r: _Jet, q: _Jet, sigma: _Jet) -> None:
        self.x_s, self.x_k = _log(S), _log(K)
        self.T, self.r, self.b = T, r, r - q
        self.var = sigma * sigma
        self.sigma = sigma
        self.ratio = 2.0 * self.b / self.var


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


class _Periods:
    """What every 2002 phi and psi term shares, whatever its gamma: the boundaries' log
    distances from S, also over the volatilities of [0, t1] and [0, T] (vol1, vol2), and the
    shifts of the psi terms' reflected second arguments."""

    def __init__(self, m: _Market, x_i1: _Jet, x_i2: _Jet) -> None:
        sqrt_t = _sqrt(m.T)
        self.t_1 = T1 * m.T
        inv1 = 1.0 / (m.sigma * (np.sqrt(T1) * sqrt_t))
        inv2 = 1.0 / (m.sigma * sqrt_t)
        self.tv1, self.tv2 = self.t_1 * inv1, m.T * inv2  # mu t / vol = mu * these
        self.dx1, self.dx2 = x_i1 - m.x_s, x_i2 - m.x_s
        self.d_1, self.d_2 = self.dx1 * inv1, self.dx2 * inv1  # -d(I1) and -d(I2) less drift
        self.gap = 2.0 * self.d_2  # the reflection in I2 over [0, t1]
        self.to_i1 = self.dx1 * inv2
        self.inv2 = inv2
        self.shifts = (2.0 * (self.dx2 * inv2), 2.0 * self.to_i1)


class _Gamma:
    """One gamma's terms: the drift, the four first arguments of its psi (with their N and
    density, shared with the phi terms over [0, t1]) and its exponents."""

    def __init__(self, m: _Market, w: _Periods, gamma: _Jet | float) -> None:
        mu = m.b + (gamma - 0.5) * m.var
        m_1 = mu * w.tv1
        self.m_2 = mu * w.tv2
        e_0, e_2 = w.d_1 - m_1, w.d_1 + m_1
        self.e = (e_0, e_0 - w.gap, e_2, e_2 - w.gap)
        self.marginals = [_marginal(e.v) for e in self.e]
        self.near, self.far = w.d_2 - m_1, w.d_2 - m_1 - w.gap  # -d(I2), -d(I2) - gap
        kappa = m.ratio + (2.0 * gamma - 1.0)
        self.k_1, self.k_2 = kappa * w.dx1, kappa * w.dx2  # exponents of (I1/S), (I2/S)
        self.lam = gamma * m.b - m.r
        if isinstance(gamma, _Jet):  # the term in sigma^2 is 0 at gamma = 0 and 1
            self.lam = self.lam + (0.5 * gamma) * (gamma - 1.0) * m.var
        self.lead = 0.0 if isinstance(gamma, float) and gamma == 0.0 else gamma * m.x_s

    def ndtr(self, j: int) -> _Jet:
        return _ndtr(self.e[j], self.marginals[j])

    def phi(
        self,
        m: _Market,
        w: _Periods,
        log_c: _Jet | float = 0.0,
        at_i1: bool = False,
        minus_i1: bool = False,
    ) -> _Jet:
        """e^log_c phi(S, t1, gamma, H, I2) of Bjerksund-Stensland, H = I1 if `at_i1` else I2
        (less the same at H = I1 if `minus_i1`)."""
        lead = self.lam * w.t_1 + self.lead + log_c
        if at_i1:
            near, far = self.ndtr(0), self.ndtr(1)
        else:
            near, far = _ndtr(self.near), _ndtr(self.far)
            if minus_i1:
                near, far = near - self.ndtr(0), far - self.ndtr(1)
        return _exp(lead) * near - _exp(lead + self.k_2) * far

    def psi(
        self, m: _Market, w: _Periods, log_c: _Jet | float = 0.0, minus_k: bool = False
    ) -> _Jet:
        """e^log_c psi(S, T, gamma, I1, I2, I1, t1) of Bjerksund-Stensland 2002 (less the same
        at H = K if `minus_k`)."""
        sides = (1, 1, -1, -1)

        def terms(to_h: _Jet) -> list[_Jet]:
            b_0 = to_h - self.m_2
            b_2 = b_0 - w.shifts[1]
            second = (b_0, b_0 - w.shifts[0], b_2, b_2 + w.shifts[0])
            # Each reflected term (1, 3) has the same conditional N as its own (0, 2).
            pairs: list[tuple[Array, Array] | None] = [None, None]
            if b_0.g is not None or self.e[0].g is not None:
                pairs = [
                    _conditional(self.e[0].v, b_0.v, 1),
                    _conditional(self.e[2].v, b_2.v, -1),
                ]
            return [
                _bivariate(self.e[j], second[j], sides[j], self.marginals[j], pairs[j // 2])
                for j in range(4)
            ]

        m_j = terms(w.to_i1)
        if minus_k:
            m_j = [a - b for a, b in zip(m_j, terms((m.x_k - m.x_s) * w.inv2), strict=True)]
        lead = self.lam * m.T + self.lead + log_c
        return (
            _exp(lead) * m_j[0]
            - _exp(lead + self.k_2) * m_j[1]
            - _exp(lead + self.k_1) * m_j[2]
            + _exp(lead + (self.k_1 - self.k_2)) * m_j[3]
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
            self.i_1, self.i_2 = boundary(T1 * m.T, scale), boundary(m.T, scale)
        self.x_i2 = _log(self.i_2)
        self.now = m.x_s.v >= self.x_i2.v
        forward = m.x_s.v + m.b.v * m.T.v
        self.runaway = (self.x_i2.v - forward) / np.sqrt(m.var.v * m.T.v) > _RUNAWAY


def _call(m: _Market, K: _Jet, edge: _Boundary, model: Model) -> _Jet:
    """The approximation of the call on rows with q > 0."""
    beta, i_1, i_2, x_i2 = edge.beta, edge.i_1, edge.i_2, edge.x_i2
    if model == "1993":
        value = (i_2 - K) * (
            _exp(beta * (m.x_s - x_i2)) - _phi(m, m.T, beta, x_i2, x_i2, -beta * x_i2)
        )
        value = value + _phi(m, m.T, 1.0, x_i2, x_i2, minus=m.x_k)
        return value - K * _phi(m, m.T, 0.0, x_i2, x_i2, minus=m.x_k)
    x_i1 = _log(i_1)
    w = _Periods(m, x_i1, x_i2)
    # One gamma at a time, so that only its terms are held.
    g = _Gamma(m, w, beta)
    value = (i_2 - K) * (_exp(beta * (m.x_s - x_i2)) - g.phi(m, w, -beta * x_i2))
    c_1 = -beta * x_i1
    value = value + (i_1 - K) * (g.phi(m, w, c_1, at_i1=True) - g.psi(m, w, c_1))
    g = _Gamma(m, w, 1.0)
    value = value + (g.phi(m, w, minus_i1=True) + g.psi(m, w, minus_k=True))
    g = _Gamma(m, w, 0.0)
    return value - K * (g.phi(m, w, minus_i1=True) + g.psi(m, w, minus_k=True))
