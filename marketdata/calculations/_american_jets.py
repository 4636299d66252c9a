"""Forward-mode jets for the American engine (`american`): values with their first derivatives
along a few directions and, when the first direction is S, the second along it; elementary
functions carrying their analytic derivatives, and the bivariate normal distribution at the
fixed correlations +-sqrt(t1 / T) of Bjerksund-Stensland 2002."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy.special import ndtr

Array = npt.NDArray[np.float64]

T1 = 0.5 * (np.sqrt(5.0) - 1.0)  # t1 / T, the golden section of the life
_RHO = float(np.sqrt(T1))
_INV_2PI = 1.0 / (2.0 * np.pi)
_INV_SQRT_2PI = 1.0 / np.sqrt(2.0 * np.pi)


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
    the first direction is S, the second derivative along it (h)."""

    __slots__ = ("g", "h", "v")

    def __init__(self, v: Array, g: Array, h: Array | None) -> None:
        self.v, self.g, self.h = v, g, h

    def __add__(self, o: _Jet | Array | float) -> _Jet:
        if not isinstance(o, _Jet):
            return _Jet(self.v + o, self.g, self.h)
        h = None if self.h is None or o.h is None else self.h + o.h
        return _Jet(self.v + o.v, self.g + o.g, h)

    __radd__ = __add__

    def __neg__(self) -> _Jet:
        return _Jet(-self.v, -self.g, None if self.h is None else -self.h)

    def __sub__(self, o: _Jet | Array | float) -> _Jet:
        return self + (-o)

    def __rsub__(self, o: Array | float) -> _Jet:
        return (-self) + o

    def __mul__(self, o: _Jet | Array | float) -> _Jet:
        if not isinstance(o, _Jet):
            return _Jet(self.v * o, self.g * o, None if self.h is None else self.h * o)
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
            return self * (1.0 / o)
        inv = 1.0 / o.v
        return self * _unary(o, inv, -inv * inv, 2.0 * inv * inv * inv)

    def __rtruediv__(self, o: Array | float) -> _Jet:
        inv = 1.0 / self.v
        return _unary(self, inv, -inv * inv, 2.0 * inv * inv * inv) * o


def _unary(a: _Jet, f0: Array, f1: Array, f2: Array) -> _Jet:
    """f(a) from f, f' and f'' at a.v."""
    h = None if a.h is None else a.h * f1 + f2 * a.g[0] * a.g[0]
    return _Jet(f0, a.g * f1, h)


def _exp(a: _Jet) -> _Jet:
    e = np.exp(a.v)
    return _unary(a, e, e, e)


def _log(a: _Jet) -> _Jet:
    inv = 1.0 / a.v
    return _unary(a, np.log(a.v), inv, -inv * inv)


def _sqrt(a: _Jet) -> _Jet:
    root = np.sqrt(a.v)
    return _unary(a, root, 0.5 / root, -0.25 / (root * a.v))


def _ndtr(a: _Jet) -> _Jet:
    pdf = np.exp(-0.5 * a.v * a.v) * _INV_SQRT_2PI
    return _unary(a, ndtr(a.v), pdf, -a.v * pdf)


def _where(cond: npt.NDArray[np.bool_], a: _Jet, b: _Jet) -> _Jet:
    h = None if a.h is None or b.h is None else np.where(cond, a.h, b.h)
    return _Jet(np.where(cond, a.v, b.v), np.where(cond, a.g, b.g), h)


def _bivariate(a: _Jet, b: _Jet, side: int) -> _Jet:
    """M(a, b, side * rho): P(X < a, Y < b) for standard normals of correlation side * rho."""
    rho = side * _RHO
    weights, coefficients = _NODES[side]
    x, y = a.v, b.v
    hs = x * x + y * y
    # The exponents at all nodes as one (nodes x 2) @ (2 x rows) product, exponentiated in place.
    exponent = coefficients @ np.stack([x * y, hs])
    tail = weights @ np.exp(exponent, out=exponent)
    value = ndtr(x) * ndtr(y) + tail
    scale = 1.0 / np.sqrt(1.0 - rho * rho)
    pdf_x, pdf_y = np.exp(-0.5 * x * x), np.exp(-0.5 * y * y)
    ma = pdf_x * ndtr((y - rho * x) * scale) * _INV_SQRT_2PI
    mb = pdf_y * ndtr((x - rho * y) * scale) * _INV_SQRT_2PI
    g = a.g * ma + b.g * mb
    h = None
    if a.h is not None and b.h is not None:
        density = np.exp(-0.5 * (hs - 2.0 * rho * x * y) * scale * scale) * _INV_2PI * scale
        a0, b0 = a.g[0], b.g[0]
        h = (
            a.h * ma
            + b.h * mb
            - (x * ma + rho * density) * a0 * a0
            - (y * mb + rho * density) * b0 * b0
            + 2.0 * density * a0 * b0
        )
    return _Jet(value, g, h)
