"""Black-Scholes European prices on arrays (continuous rate r, continuous dividend yield q).

Units: S, K in currency; T in years (calendar days / 365); r, q, sigma as decimals.
At T = 0 or sigma = 0 the price is its limit, the discounted intrinsic value of the forward,
so the function never divides by zero.
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtr


def price(
    S: np.ndarray | float,
    K: np.ndarray | float,
    T: np.ndarray | float,
    r: np.ndarray | float,
    sigma: np.ndarray | float,
    is_call: np.ndarray | bool,
    q: np.ndarray | float = 0.0,
) -> np.ndarray:
    S, K, T, r, sigma, q = (np.asarray(x, dtype=float) for x in (S, K, T, r, sigma, q))
    is_call = np.asarray(is_call, dtype=bool)
    S, K, T, r, sigma, q, is_call = np.broadcast_arrays(S, K, T, r, sigma, q, is_call)
    T = np.maximum(T, 0.0)
    disc_q = np.exp(-q * T)
    disc_r = np.exp(-r * T)
    forward_s, forward_k = S * disc_q, K * disc_r
    vol_t = sigma * np.sqrt(T)
    live = vol_t > 0
    safe = np.where(live, vol_t, 1.0)
    d1 = (np.log(S / K) + (r - q) * T + 0.5 * vol_t**2) / safe
    d2 = d1 - vol_t
    call_live = forward_s * ndtr(d1) - forward_k * ndtr(d2)
    put_live = forward_k * ndtr(-d2) - forward_s * ndtr(-d1)
    call_limit = np.maximum(forward_s - forward_k, 0.0)
    put_limit = np.maximum(forward_k - forward_s, 0.0)
    call = np.where(live, call_live, call_limit)
    put = np.where(live, put_live, put_limit)
    return np.where(is_call, call, put)
