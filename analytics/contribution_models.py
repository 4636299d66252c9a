"""Where the risk comes from: the stored Euler components of each book's volatility, VaR and
expected shortfall (issue "Where the risk comes from", item 1), written by the market_risk job
(`analytics.contributions`) beside `RiskMetricSnapshot`. Imported by analytics.models, so they
are the analytics app's models."""

from __future__ import annotations

from django.db import models


class PortfolioRiskContribution(models.Model):
    """A book's totals on one session, per method and measure (currency, positive: a loss),
    which its positions' `PositionRiskContribution` components add up to. The VaRs and the
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


class PositionRiskContribution(models.Model):
    """A position's Euler component c_i = e_i dR/de_i of its book's measure R on one session
    (currency; positive adds to the loss, a hedge is negative), per method and measure; null
    where the method is unavailable for the book. `exposure` is the e_i the marginals divide
    by: the position's signed exposure (quantity x price x multiplier, an option at its
    premium), 0 when unvalued."""

    # No index of its own, nor one on (date, position): the unique constraint's index leads with
    # the position and serves every read and the job's delete; each extra index cost a third of
    # the 20,000-row insert of a 10,000-position book (make bench). No foreign-key constraint in
    # the database either: its per-row check was most of PostgreSQL's COPY of those rows. The
    # rows are derived, written by one service from the positions it just read in the same
    # transaction; a position's deletion still deletes them (Django's CASCADE).
    position = models.ForeignKey(
        "portfolios.Position",
        on_delete=models.CASCADE,
        related_name="risk_contributions",
        db_index=False,
        db_constraint=False,
    )
    date = models.DateField()
    confidence = models.FloatField()
    horizon_days = models.IntegerField()
    exposure = models.FloatField()
    parametric_volatility = models.FloatField(null=True)
    parametric_var = models.FloatField(null=True)
    parametric_es = models.FloatField(null=True)
    historical_volatility = models.FloatField(null=True)
    historical_var = models.FloatField(null=True)
    historical_es = models.FloatField(null=True)
    monte_carlo_volatility = models.FloatField(null=True)
    monte_carlo_var = models.FloatField(null=True)
    monte_carlo_es = models.FloatField(null=True)
    # parametric_volatility = parametric_systematic (factors) + parametric_specific.
    parametric_systematic = models.FloatField(null=True)
    parametric_specific = models.FloatField(null=True)

    class Meta:
        ordering = ["position_id", "date", "confidence", "horizon_days"]
        constraints = [
            models.UniqueConstraint(
                fields=["position", "date", "confidence", "horizon_days"],
                name="positioncontribution_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.position_id} {self.date} {self.confidence}"
