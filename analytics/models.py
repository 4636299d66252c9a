from __future__ import annotations

from django.db import models


class PositionGreeks(models.Model):
    """Position-level Greeks of one option position on one session (mibian's units: theta per
    calendar day, vega per vol point, rho per rate point; position = per share x qty x 100)."""

    class Source(models.TextChoices):
        IMPLIED = "implied", "Implied from the option's own close"
        REALIZED = "realized", "Underlying's realized volatility"
        DEFAULT = "default", "Default volatility from settings"
        MOCK = "mock", "Mock values (no underlying price)"

    position = models.ForeignKey(
        "portfolios.Position", on_delete=models.CASCADE, related_name="greeks_history"
    )
    date = models.DateField()
    delta = models.FloatField()
    gamma = models.FloatField()
    theta = models.FloatField()
    vega = models.FloatField()
    rho = models.FloatField()
    dollar_delta = models.FloatField()
    implied_volatility = models.FloatField(null=True, blank=True)  # solved from its own close
    volatility = models.FloatField()  # the volatility the Greeks used
    volatility_source = models.CharField(max_length=10, choices=Source.choices)
    underlying_price = models.FloatField(null=True, blank=True)
    model_price = models.FloatField(null=True, blank=True)  # Black-Scholes value per share
    risk_free_rate = models.FloatField()
    days_to_expiry = models.IntegerField()
    computed_at = models.DateTimeField()

    class Meta:
        ordering = ["position_id", "date"]
        verbose_name_plural = "position Greeks"
        constraints = [
            models.UniqueConstraint(
                fields=["position", "date"], name="positiongreeks_position_date"
            ),
        ]
        indexes = [models.Index(fields=["date", "position"], name="positiongreeks_date_idx")]

    def __str__(self) -> str:
        return f"{self.position_id} {self.date}"
