"""Where the risk comes from: Euler allocation of volatility, VaR and expected shortfall over
the positions of a book, for whole books at once (vectorized; 10,000 positions).

Every measure R here is positively homogeneous of degree one in the positions' sizes, so with
e_i position i's dollar exposure, R = sum_i e_i dR/de_i (Euler). The component of position i is
c_i = e_i dR/de_i; the components add up to the total exactly (to rounding). Conventions, the same
as `analytics.calculations.risk` (whose functions give the totals):

- Currency throughout; P&L gains positive. Volatility, VaR and ES are POSITIVE numbers meaning
  losses (a volatility is positive), and a component is positive when the position adds to the
  measure: a hedge has a negative component. Components are not floored at zero.
- `shares` = component / total as a decimal fraction (0.25 = 25% of the total); NaN when the
  total is 0.
- `marginals` = dR/de_i, the change of the total per dollar of exposure added to position i
  (scaling the position: its factor exposures, specific variance or scenario P&L scale with it),
  = c_i / e_i. NaN where e_i = 0: a position without exposure carries no information about its
  per-dollar sensitivity (its factor loadings and P&L per dollar are unknown), and 0 would claim
  that adding to it is riskless.
- Parametric (delta-normal, the factor model; options enter by their delta): the total is
  `risk.parametric_var`'s, z_c sigma sqrt(h), with sigma^2 = d' Sigma d + sum_i s_i, d = D'1 the
  book's dollar factor exposures and s_i the specific (idiosyncratic) variances, which add up to
  `parametric_var`'s `residual_var`. Volatility is the ONE-DAY sigma (currency); VaR and ES are at
  `horizon_days` (square root of time). risk.py has no parametric ES; here it is the normal one,
  ES = phi(z_c) / (1 - c) x sigma x sqrt(h), the mean loss beyond the VaR of a zero-mean normal.
- Scenarios (historical and Monte Carlo alike, S scenarios x P positions of P&L, the book's P&L
  the row sum): VaR = -x_(k), k = ceil(S (1 - c)), ES = -mean of every scenario at or below x_(k)
  (ties included), exactly `risk.historical_var` / `risk.expected_shortfall` / the Monte Carlo
  tail of `risk.monte_carlo_var` on the row sums; volatility = std(book P&L, ddof=1) as in
  `risk.annualized_volatility`. The scenarios carry their horizon (Monte Carlo moves are drawn at
  the horizon; historical days are one day); scale a one-day result with `risk.scale_to_horizon`,
  which scales every component alike. A scenario whose P&L is NaN for any position is dropped
  (its book P&L is NaN, which risk.py drops); an infinite P&L is an error.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy import stats

from analytics.calculations import risk

FloatArray = npt.NDArray[np.float64]
Measure = Literal["volatility", "var", "es"]


@dataclass(frozen=True)
class Allocation:
    """One measure's Euler allocation over the P positions (currency; see the module docstring
    for signs and units)."""

    measure: Measure
    total: float
    components: FloatArray  # (P,) c_i, summing to total
    marginals: FloatArray  # (P,) d total / d e_i = c_i / e_i, NaN where e_i = 0

    @property
    def shares(self) -> FloatArray:
        """(P,) component / total as a decimal fraction; NaN when the total is 0."""
        return _share(self.components, self.total)


@dataclass(frozen=True)
class FactorAllocation(Allocation):
    """A parametric allocation, also split by source: per position `systematic` + `specific` =
    `components`; per factor, `factors` (K,) plus the one specific bucket `specific_total` add
    up to `total`."""

    systematic: FloatArray  # (P,) D_i . Sigma d / sigma, scaled
    specific: FloatArray  # (P,) s_i / sigma, scaled
    factors: FloatArray  # (K,) d_k (Sigma d)_k / sigma, scaled
    specific_total: float  # sum_i s_i / sigma, scaled


@dataclass(frozen=True)
class ParametricContributions:
    volatility: FactorAllocation  # one day
    var: FactorAllocation  # at horizon_days
    es: FactorAllocation  # at horizon_days
    confidence: float
    horizon_days: float


@dataclass(frozen=True)
class ScenarioContributions:
    volatility: Allocation
    var: Allocation
    es: Allocation
    observations: int  # scenarios used (rows with a NaN P&L dropped)


@dataclass(frozen=True)
class GroupContribution:
    """One group's share of a measure (currency, decimal share of the book's total)."""

    name: str
    component: float  # sum of the members' components
    share: float  # component / the book's total; NaN when the total is 0
    exposure: float  # sum of the members' signed exposures
    positions: int


def _share(components: FloatArray, total: float) -> FloatArray:
    if total == 0.0:
        return np.full_like(components, np.nan)
    share: FloatArray = components / total
    return share


def _marginals(components: FloatArray, exposures: FloatArray) -> FloatArray:
    out = np.full_like(components, np.nan)
    np.divide(components, exposures, out=out, where=exposures != 0.0)
    return out


def _exposures(exposures: npt.ArrayLike, positions: int) -> FloatArray:
    e = np.asarray(exposures, dtype=float)
    if e.shape != (positions,):
        raise ValueError(f"exposures must be {(positions,)}, got {e.shape}")
    if not np.isfinite(e).all():
        raise ValueError("exposures must be finite")
    return e


# --- parametric (factor model) -----------------------------------------------------------------


def parametric_contributions(
    dollar_exposures: npt.ArrayLike,
    factor_cov: npt.ArrayLike,
    specific_var: npt.ArrayLike,
    *,
    exposures: npt.ArrayLike,
    confidence: float,
    horizon_days: float = 1,
) -> ParametricContributions:
    """Euler components of the delta-normal volatility, VaR and ES of a factor-model book.

    Inputs: `dollar_exposures` D (P, K), position i's dollar exposure to factor k (options
    delta-adjusted: exposure x beta); `factor_cov` Sigma (K, K), the daily factor return
    covariance; `specific_var` s (P,), each position's daily specific variance in currency^2,
    (exposure x residual vol)^2; `exposures` e (P,), the dollar exposures the marginals are per
    (D_i = e_i b_i and s_i = e_i^2 v_i^2 scale with e_i).

    sigma^2 = d' Sigma d + sum_i s_i with d = D'1. Volatility components (one day):
    c_i = (D_i . Sigma d + s_i) / sigma = systematic_i + specific_i; by factor
    c_k = d_k (Sigma d)_k / sigma, plus the specific bucket sum_i s_i / sigma. VaR components are
    these x z_c sqrt(h) and ES components x phi(z_c) / (1 - c) sqrt(h). The VaR total is
    `risk.parametric_var(d, Sigma, sum(s), confidence, horizon_days)`. A book with zero variance
    has zero components and NaN marginals (sigma is not differentiable there).
    """
    D = np.asarray(dollar_exposures, dtype=float)
    if D.ndim != 2:
        raise ValueError(f"dollar_exposures must be (P, K), got shape {D.shape}")
    positions, k = D.shape
    cov = np.asarray(factor_cov, dtype=float)
    if cov.shape != (k, k):
        raise ValueError(f"factor_cov must be {(k, k)}, got {cov.shape}")
    s = np.asarray(specific_var, dtype=float)
    if s.shape != (positions,):
        raise ValueError(f"specific_var must be {(positions,)}, got {s.shape}")
    if not (np.isfinite(D).all() and np.isfinite(s).all()):
        raise ValueError("dollar_exposures and specific_var must be finite")
    if (s < 0).any():
        raise ValueError("specific_var must be non-negative")
    e = _exposures(exposures, positions)

    d = D.sum(axis=0)
    residual_var = float(s.sum())
    var_total = risk.parametric_var(d, cov, residual_var, confidence, horizon_days)
    # The same expression as parametric_var, so sigma is the sigma of its VaR.
    sigma = math.sqrt(float(d @ cov @ d) + residual_var)
    sigma_d = cov @ d
    if sigma > 0.0:
        systematic: FloatArray = (D @ sigma_d) / sigma
        specific: FloatArray = s / sigma
        factors: FloatArray = d * sigma_d / sigma
        specific_total = residual_var / sigma
    else:
        systematic, specific = np.zeros(positions), np.zeros(positions)
        factors, specific_total = np.zeros(k), 0.0
    components = systematic + specific
    marginals = _marginals(components, e) if sigma > 0.0 else np.full(positions, np.nan)

    z = float(stats.norm.ppf(confidence))
    root_h = math.sqrt(horizon_days)
    tail_density = float(stats.norm.pdf(z)) / (1.0 - confidence)

    def scaled(measure: Measure, scale: float, total: float) -> FactorAllocation:
        return FactorAllocation(
            measure=measure,
            total=total,
            components=components * scale,
            marginals=marginals * scale,
            systematic=systematic * scale,
            specific=specific * scale,
            factors=factors * scale,
            specific_total=specific_total * scale,
        )

    return ParametricContributions(
        volatility=scaled("volatility", 1.0, sigma),
        var=scaled("var", z * root_h, var_total),
        es=scaled("es", tail_density * root_h, tail_density * sigma * root_h),
        confidence=confidence,
        horizon_days=horizon_days,
    )


# --- scenarios (historical and Monte Carlo) ----------------------------------------------------


@dataclass(frozen=True)
class _Scenarios:
    pnl: FloatArray  # (S, P) scenarios kept
    book: FloatArray  # (S,) their row sums
    exposures: FloatArray


def _scenarios(pnl: npt.ArrayLike, exposures: npt.ArrayLike) -> _Scenarios:
    X = np.asarray(pnl, dtype=float)
    if X.ndim != 2:
        raise ValueError(f"pnl must be (scenarios, positions), got shape {X.shape}")
    e = _exposures(exposures, X.shape[1])
    with np.errstate(over="ignore"):  # an overflowing row is refused below
        book = X.sum(axis=1)
    # A row sum is finite only if every term is (IEEE: a NaN or an infinity propagates), so one
    # pass over the (S, P) matrix both sums and checks it; only the flagged rows are inspected.
    bad = ~np.isfinite(book)
    if bad.any():
        flagged = X[bad]
        if np.isinf(flagged).any() or not np.isnan(flagged).any(axis=1).all():
            raise ValueError("pnl contains infinite values (or its row sums overflow)")
        X, book = X[~bad], book[~bad]
    return _Scenarios(pnl=X, book=book, exposures=e)


def _tail_mean(X: FloatArray, rows: npt.NDArray[np.bool_]) -> FloatArray:
    """-mean of X over the selected rows, per column (a loss is positive)."""
    mean: FloatArray = -X[rows].mean(axis=0)
    return mean


def _var(sc: _Scenarios, confidence: float, window: int) -> Allocation:
    if window < 0:
        raise ValueError(f"window must be non-negative, got {window}")
    total = risk.historical_var(sc.book, confidence)
    quantile = -total  # x_(k) itself: negation is exact
    if window == 0:
        components = _tail_mean(sc.pnl, sc.book == quantile)
    else:
        n = sc.book.size
        k = risk._tail_count(n, confidence)  # the VaR's own k, rounding included
        lo_rank, hi_rank = max(0, k - 1 - window), min(n - 1, k - 1 + window)
        ordered = np.partition(sc.book, (lo_rank, hi_rank))
        rows = (sc.book >= ordered[lo_rank]) & (sc.book <= ordered[hi_rank])
        raw = _tail_mean(sc.pnl, rows)
        raw_total = float(raw.sum())
        if not raw_total * total > 0.0:
            # A window straddling zero P&L would flip or blow up the components when rescaled.
            raise ValueError(
                "the window's mean book loss does not have the VaR's sign: narrow the window "
                "or use window=0"
            )
        components = raw * (total / raw_total)
    return Allocation("var", total, components, _marginals(components, sc.exposures))


def _es(sc: _Scenarios, confidence: float) -> Allocation:
    total = risk.expected_shortfall(sc.book, confidence)
    components = _tail_mean(sc.pnl, sc.book <= -risk.historical_var(sc.book, confidence))
    return Allocation("es", total, components, _marginals(components, sc.exposures))


def _volatility(sc: _Scenarios) -> Allocation:
    n = sc.book.size
    if n < risk.MIN_RETURN_OBSERVATIONS:
        raise risk.InsufficientHistory("volatility", n, risk.MIN_RETURN_OBSERVATIONS)
    total = float(np.std(sc.book, ddof=1))
    if total == 0.0:
        positions = sc.pnl.shape[1]
        return Allocation("volatility", 0.0, np.zeros(positions), np.full(positions, np.nan))
    # X' (L - mean L) = (X - mean X)' (L - mean L): no demeaned copy of X is needed.
    centred = sc.book - sc.book.mean()
    components: FloatArray = (sc.pnl.T @ centred) / ((n - 1) * total)
    return Allocation("volatility", total, components, _marginals(components, sc.exposures))


def scenario_var_contributions(
    pnl: npt.ArrayLike, *, exposures: npt.ArrayLike, confidence: float, window: int = 0
) -> Allocation:
    """Components of the scenario VaR of the book whose position P&L is `pnl` (S, P), currency,
    gains positive (historical days or Monte Carlo draws); `exposures` (P,) for the marginals.

    The total is `risk.historical_var(pnl.sum(axis=1), confidence)` = -x_(k), a single order
    statistic (no interpolation). window=0: c_i = -mean of position i's P&L over the scenarios
    whose book P&L equals x_(k) (the VaR scenario; several only when tied), which sums to the VaR
    exactly and is dVaR/de_i while that scenario stays the k-th. window=w > 0 (smoother, for
    Monte Carlo): the same mean over every scenario whose book P&L lies between x_(k-w) and
    x_(k+w) (ranks clipped to 1..S, ties at the ends included), rescaled proportionally so the
    components sum to the VaR; a window whose mean loss is 0 or of the other sign than the VaR
    cannot be rescaled (ValueError). At least 60 scenarios (`InsufficientHistory`).
    """
    return _var(_scenarios(pnl, exposures), confidence, window)


def scenario_es_contributions(
    pnl: npt.ArrayLike, *, exposures: npt.ArrayLike, confidence: float
) -> Allocation:
    """Components of the scenario expected shortfall of the book whose position P&L is `pnl`
    (S, P), currency, gains positive: c_i = -mean of position i's P&L over the tail scenarios
    `risk.expected_shortfall` averages (every scenario whose book P&L is at or below x_(k),
    k = ceil(S (1 - c)), ties included). They sum to that total exactly and are dES/de_i while
    the tail set does not change. At least 60 scenarios (`InsufficientHistory`)."""
    return _es(_scenarios(pnl, exposures), confidence)


def scenario_volatility_contributions(
    pnl: npt.ArrayLike, *, exposures: npt.ArrayLike
) -> Allocation:
    """Components of the standard deviation (ddof=1, as `risk.annualized_volatility`, not
    annualized) of the book P&L L = pnl.sum(axis=1) over the scenarios (S, P), currency:
    c_i = cov(X_i, L) / std(L), both with ddof=1. Zero components and NaN marginals when L does
    not vary. At least 2 scenarios."""
    return _volatility(_scenarios(pnl, exposures))


def scenario_contributions(
    pnl: npt.ArrayLike, *, exposures: npt.ArrayLike, confidence: float, var_window: int = 0
) -> ScenarioContributions:
    """VaR, ES and volatility components of a scenario P&L matrix (S, P), as the three functions
    above give them, sharing the checks and the book P&L: the matrix is read twice in all (row
    sums, then the covariances with the book) plus the tail rows, where the three functions read
    it five times."""
    sc = _scenarios(pnl, exposures)
    return ScenarioContributions(
        volatility=_volatility(sc),
        var=_var(sc, confidence, var_window),
        es=_es(sc, confidence),
        observations=sc.book.size,
    )


# --- groups ------------------------------------------------------------------------------------


def _is_tag_list(member: object) -> bool:
    return isinstance(member, list | tuple | set | frozenset)


def group_contributions(
    components: npt.ArrayLike,
    membership: Sequence[str] | Sequence[Collection[str]] | npt.NDArray[np.str_],
    *,
    exposures: npt.ArrayLike,
    total: float,
) -> list[GroupContribution]:
    """Sum position components (P,) and exposures (P,) by group.

    `membership` per position is either one key (a str, e.g. its underlying or sector: the groups
    partition the book and their components add up to `total`) or a collection of group names
    (its tags: a position counts once in each of its tags, none when it has no tag, so tag groups
    can add up to more, or less, than the total, as tag aggregation does). Each group's share is
    its component / `total`, the book's total of the measure (NaN when 0). Ordered by component,
    largest first, then by name.
    """
    c = np.asarray(components, dtype=float)
    if c.ndim != 1:
        raise ValueError(f"components must be 1-d, got shape {c.shape}")
    e = _exposures(exposures, c.size)
    if len(membership) != c.size:
        raise ValueError(f"membership has {len(membership)} entries for {c.size} positions")
    tagged = [_is_tag_list(member) for member in membership]
    if any(tagged) and not all(tagged):
        raise TypeError("membership mixes single keys and tag collections")
    if all(tagged) and c.size:
        per_position = [sorted(set(member)) for member in membership]
        counts = np.fromiter((len(tags) for tags in per_position), dtype=np.intp, count=c.size)
        rows = np.repeat(np.arange(c.size), counts)
        names = np.asarray([name for tags in per_position for name in tags], dtype=str)
    else:
        rows = np.arange(c.size)
        names = np.asarray(membership, dtype=str).reshape(-1)
    labels, index = np.unique(names, return_inverse=True)
    # bincount with weights returns float64; numpy's stubs type it as integers.
    sums = np.asarray(np.bincount(index, weights=c[rows], minlength=labels.size), dtype=float)
    exposure = np.asarray(np.bincount(index, weights=e[rows], minlength=labels.size), dtype=float)
    members = np.bincount(index, minlength=labels.size)
    shares = _share(sums, total)
    order = np.lexsort((labels, -sums))
    return [
        GroupContribution(
            name=str(labels[g]),
            component=float(sums[g]),
            share=float(shares[g]),
            exposure=float(exposure[g]),
            positions=int(members[g]),
        )
        for g in order
    ]
