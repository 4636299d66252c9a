"""Where the risk comes from: how fast a book can be sold (liquidity) and how much of it rests on
a few names or sectors (concentration). Arrays in, arrays and frozen dataclasses out, for a whole
book at once.

Units and conventions:
- Volumes and shares are in shares; ADV is shares per session; days are NYSE sessions.
- Average daily volume (ADV): the mean of the stored volumes in the window; a session without a
  stored volume (NaN) is left out of the mean, not read as zero. Fewer than `min_observations`
  volumes: the ADV is unknown (NaN) and so are the days of every position trading through it.
- Days to liquidate = |shares| / (participation x ADV), participation a decimal share of the
  daily volume (0.20 = trade at most 20% of a session's volume), 0 < participation <= 1.
  `shares` are delta-equivalent shares: a stock's quantity, an option's |position delta| (the
  option is liquidated through its underlying's volume at its delta).
- Liquidatable share within h days: sum |exposure| x min(1, h / days) over the positions, over
  the book's gross exposure (sum |exposure|). A position of unknown days contributes nothing to
  the numerator (nothing shows it can be sold) and its |exposure| to the denominator; zero
  shares count as liquid at once. Unvalued positions (NaN exposure) are in neither.
- Concentration: a name's gross is the sum of |exposure| of its positions (an option's exposure
  is its premium, qty x price x multiplier, as in the book's gross exposure), its weight that
  over the book's gross; Herfindahl = sum of squared weights (1 for a single name, 1/n for n
  equal names), effective names = 1 / Herfindahl. Shares and weights are decimals (0.25 = 25%).
  Ratios over a book of zero gross are NaN (undefined), not 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float64]


@dataclass(frozen=True)
class AverageVolume:
    adv: Floats  # shares per session, one per column; NaN where unknown
    observations: npt.NDArray[np.int64]  # sessions with a stored volume, one per column


def average_daily_volume(volumes: Floats, *, min_observations: int) -> AverageVolume:
    """ADV per column of a (sessions x names) volume panel, NaN where not stored; a column with
    fewer than `min_observations` stored volumes has an unknown (NaN) ADV."""
    panel = np.asarray(volumes, dtype=float)
    if panel.ndim != 2:
        raise ValueError("volumes is a (sessions x names) panel")
    if np.isinf(panel).any() or (panel < 0).any():
        raise ValueError("volumes are finite and not negative")
    stored = ~np.isnan(panel)
    observations = stored.sum(axis=0).astype(np.int64)
    total = np.where(stored, panel, 0.0).sum(axis=0)
    enough = observations >= max(min_observations, 1)
    adv = np.full(panel.shape[1], np.nan)
    np.divide(total, observations, out=adv, where=enough)
    return AverageVolume(adv=adv, observations=observations)


def days_to_liquidate(shares: Floats, adv: Floats, participation: float) -> Floats:
    """Sessions to sell |shares| trading `participation` of the ADV each session; NaN where the
    ADV or the shares are unknown or the ADV is not positive (no session traded anything); inf
    where the quotient overflows a double (a tiny participation)."""
    if not 0 < participation <= 1:
        raise ValueError("participation is a decimal share of the volume, 0 < p <= 1")
    size = np.abs(np.asarray(shares, dtype=float))
    volume = np.asarray(adv, dtype=float)
    days = np.full(np.broadcast(size, volume).shape, np.nan)
    known = ~np.isnan(size) & (volume > 0)  # NaN compares False
    with np.errstate(over="ignore"):  # an overflow is infinitely many days, said as inf
        np.divide(size, participation * volume, out=days, where=known)
    return days


def liquidatable_shares(
    exposure: Floats, days: Floats, horizons: Sequence[float]
) -> tuple[Floats, float]:
    """The share of the book's gross exposure liquidatable within each horizon (sessions), and
    the gross itself (currency). NaN shares for a book of zero gross."""
    size = np.abs(np.asarray(exposure, dtype=float))
    days = np.asarray(days, dtype=float)
    valued = ~np.isnan(size)
    gross = float(size[valued].sum())
    h = np.asarray(horizons, dtype=float)[:, None]
    known = valued & ~np.isnan(days)
    fraction = np.zeros((len(h), len(size)))
    at_once = known & (days == 0)
    slow = known & (days > 0)
    # days may be infinite (participation x ADV underflowing): h / inf = 0, nothing sold.
    np.divide(h, days, out=fraction, where=slow[None, :])
    fraction = np.where(at_once[None, :], 1.0, np.minimum(fraction, 1.0))
    if gross == 0:
        return np.full(len(h), np.nan), 0.0
    sold = (fraction * np.where(valued, size, 0.0)[None, :]).sum(axis=1)
    return sold / gross, gross


@dataclass(frozen=True)
class NameConcentration:
    """Names ordered by gross (largest first, ties by name) with their gross and weight."""

    keys: list[str]
    gross: Floats  # currency
    weights: Floats  # decimals of the book's gross, summing to 1 (empty for no gross)
    total: float  # the book's gross (currency)
    herfindahl: float  # NaN for no gross
    effective_names: float  # 1 / herfindahl; NaN for no gross

    def top_share(self, n: int) -> float:
        """Share of the book's gross in the `n` largest names (all of them when fewer)."""
        if n < 1:
            raise ValueError("n is at least 1")
        if self.total == 0:
            return float("nan")
        return float(self.weights[:n].sum())


def _group(keys: Sequence[str]) -> tuple[npt.NDArray[np.str_], npt.NDArray[np.intp]]:
    labels = np.asarray(list(keys), dtype=str)
    unique, inverse = np.unique(labels, return_inverse=True)
    return unique, inverse.reshape(-1)


def name_concentration(keys: Sequence[str], exposure: Floats) -> NameConcentration:
    """Gross by name (`keys`, one per position: the underlying symbol), weights and Herfindahl.
    Unvalued positions (NaN exposure) count for nothing; names are kept even at zero gross."""
    size = np.nan_to_num(np.abs(np.asarray(exposure, dtype=float)), nan=0.0)
    unique, inverse = _group(keys)
    gross = np.bincount(inverse, weights=size, minlength=len(unique)).astype(float)
    order = np.lexsort((unique, -gross))
    gross, names = gross[order], [str(k) for k in unique[order]]
    total = float(gross.sum())
    if total == 0:
        return NameConcentration(names, gross, np.zeros(len(names)), 0.0, np.nan, np.nan)
    weights = gross / total
    herfindahl = float((weights**2).sum())
    return NameConcentration(names, gross, weights, total, herfindahl, 1.0 / herfindahl)


@dataclass(frozen=True)
class GroupExposures:
    """Exposures by group (a sector, an industry), ordered by gross (largest first, then key).
    Currency; `short` is the (negative) sum of negative exposures, so gross = long + |short|
    and net = long + short, as in the book's exposures; `share` is gross over the book's."""

    keys: list[str]
    gross: Floats
    net: Floats
    long: Floats
    short: Floats
    share: Floats  # NaN for a book of zero gross


def group_exposures(keys: Sequence[str], exposure: Floats) -> GroupExposures:
    """Gross, net, long and short exposure per group key (one per position); unvalued positions
    (NaN exposure) add nothing."""
    signed = np.nan_to_num(np.asarray(exposure, dtype=float), nan=0.0)
    unique, inverse = _group(keys)

    def total(values: Floats) -> Floats:
        return np.bincount(inverse, weights=values, minlength=len(unique)).astype(float)

    long, short = total(np.maximum(signed, 0.0)), total(np.minimum(signed, 0.0))
    gross = long - short
    order = np.lexsort((unique, -gross))
    book = float(gross.sum())
    share = gross / book if book else np.full(len(unique), np.nan)
    return GroupExposures(
        keys=[str(k) for k in unique[order]],
        gross=gross[order],
        net=(long + short)[order],
        long=long[order],
        short=short[order],
        share=share[order],
    )
