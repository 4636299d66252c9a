"""Where the risk comes from: the stored Euler components of each book's volatility, VaR and
expected shortfall (issue "Where the risk comes from", item 1), written by the market_risk job
(`analytics.contributions`) beside `RiskMetricSnapshot`. Imported by analytics.models, so they
are the analytics app's models."""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
from django.db import models

FloatArray = npt.NDArray[np.float64]


class PortfolioRiskContribution(models.Model):
    """A book's totals on one session, per method and measure (currency, positive: a loss),
    which its positions' components (`PositionContributionSet`) add up to. The VaRs and the
    historical ES are the same numbers as the run's `RiskMetricSnapshot`; a method the book
    cannot be measured with (no factor covariance) is null, with the reason in `unavailable`."""

    portfolio = models.ForeignKey(
        "portfolios.Portfolio", on_delete=models.CASCADE, related_name="risk_contributions"
    )
    date = models.DateField()
    confidence = models.FloatField()
    horizon_days = models.IntegerField()
    # Volatility: the one-day standard deviation of the book's P&L; VaR and ES at horizon_days.
    parametric_volatility = models.FloatField(null=True)
    parametric_var = models.FloatField(null=True)
    parametric_es = models.FloatField(null=True)
    historical_volatility = models.FloatField(null=True)
    historical_var = models.FloatField(null=True)
    historical_es = models.FloatField(null=True)
    monte_carlo_volatility = models.FloatField(null=True)
    monte_carlo_var = models.FloatField(null=True)
    monte_carlo_es = models.FloatField(null=True)
    # Parametric volatility by source: {factor: component}, plus `specific`, add up to
    # parametric_volatility; factor_exposures {factor: the book's dollar exposure} (marginals).
    by_factor = models.JSONField(default=dict)
    factor_exposures = models.JSONField(default=dict)
    specific = models.FloatField(null=True)
    # {method: scenarios used} (historical sessions, Monte Carlo draws; parametric: none).
    observations = models.JSONField(default=dict)
    unavailable = models.JSONField(default=dict)  # {method: why it is null}

    class Meta:
        ordering = ["portfolio_id", "date", "confidence", "horizon_days"]
        constraints = [
            models.UniqueConstraint(
                fields=["portfolio", "date", "confidence", "horizon_days"],
                name="portfoliocontribution_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.portfolio_id} {self.date} {self.confidence}"


class PositionContributionSet(models.Model):
    """The Euler components c_i = e_i dR/de_i of one book's positions on one session at one
    confidence and horizon, as vectors in the order of `positions` (currency; positive adds to
    the loss, a hedge is negative), per method and measure: a column is null where the method is
    unavailable for the book, an entry NaN where a position's component is not finite.
    `exposure` is the e_i the marginals divide by: the position's signed exposure (quantity x
    price x multiplier, an option at its premium), 0 when unvalued.

    One row per book rather than per position: the rows are only ever read a book at a time
    (GET /risk/contributions/ groups the whole book), and a 10,000-position book's 20,000 rows
    a session cost 0.21 s of PostgreSQL's 0.30 s to store them (make bench); the vectors cost
    milliseconds. Little-endian float64 (`<f8`) and int64 ids (`<i8`): exact, and read back by
    `vector` / `ids` without a parse. A position deleted since is dropped by the reader (the
    positions it joins to); `rows()` gives the per-position view (admin, tests)."""

    portfolio = models.ForeignKey(
        "portfolios.Portfolio", on_delete=models.CASCADE, related_name="position_contributions"
    )
    date = models.DateField()
    confidence = models.FloatField()
    horizon_days = models.IntegerField()
    positions = models.BinaryField()  # the positions' ids, int64
    exposure = models.BinaryField()
    parametric_volatility = models.BinaryField(null=True)
    parametric_var = models.BinaryField(null=True)
    parametric_es = models.BinaryField(null=True)
    historical_volatility = models.BinaryField(null=True)
    historical_var = models.BinaryField(null=True)
    historical_es = models.BinaryField(null=True)
    monte_carlo_volatility = models.BinaryField(null=True)
    monte_carlo_var = models.BinaryField(null=True)
    monte_carlo_es = models.BinaryField(null=True)
    # parametric_volatility = parametric_systematic (factors) + parametric_specific.
    parametric_systematic = models.BinaryField(null=True)
    parametric_specific = models.BinaryField(null=True)

    class Meta:
        ordering = ["portfolio_id", "date", "confidence", "horizon_days"]
        constraints = [
            models.UniqueConstraint(
                fields=["portfolio", "date", "confidence", "horizon_days"],
                name="positioncontributionset_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.portfolio_id} {self.date} {self.confidence}"

    def ids(self) -> list[int]:
        return ids(self.positions)

    def column(self, name: str) -> FloatArray | None:
        """One stored column as floats (None: the method is unavailable for the book)."""
        if name not in COLUMNS:
            raise ValueError(f"not a contribution column: {name!r}")
        stored = getattr(self, name)
        return None if stored is None else vector(stored)

    def rows(self) -> list[PositionComponents]:
        """One tuple per position, in the stored order; None for a null column or a NaN."""
        columns = [self.column(name) for name in COLUMNS]
        exposure = vector(self.exposure).tolist()
        return [
            PositionComponents(
                pk,
                exposure[i],
                *(None if c is None or not math.isfinite(c[i]) else float(c[i]) for c in columns),
            )
            for i, pk in enumerate(self.ids())
        ]


class PositionComponents(NamedTuple):
    position_id: int
    exposure: float
    parametric_volatility: float | None
    parametric_var: float | None
    parametric_es: float | None
    historical_volatility: float | None
    historical_var: float | None
    historical_es: float | None
    monte_carlo_volatility: float | None
    monte_carlo_var: float | None
    monte_carlo_es: float | None
    parametric_systematic: float | None
    parametric_specific: float | None


# The component columns, in the order of PositionComponents after the exposure.
COLUMNS = PositionComponents._fields[2:]


def pack(values: npt.ArrayLike, kind: str = "<f8") -> bytes:
    """A vector as stored: little-endian float64 (ids: `<i8`)."""
    return np.ascontiguousarray(values, dtype=kind).tobytes()


def vector(stored: bytes | memoryview) -> FloatArray:
    """A stored float vector (SQLite gives bytes, psycopg a memoryview)."""
    return np.frombuffer(stored, dtype="<f8").astype(np.float64)


def ids(stored: bytes | memoryview) -> list[int]:
    listed: list[int] = np.frombuffer(stored, dtype="<i8").tolist()
    return listed
