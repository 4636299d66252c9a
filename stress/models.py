from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from sigmasight.validators import no_control_characters, no_control_characters_multiline


class StressScenario(models.Model):
    """A set of factor shocks: {factor name or proxy symbol: decimal move}. Price factors move by
    returns (-0.10 = a 10% fall); the Rates factor by a yield change (0.01 = +100bp)."""

    class Category(models.TextChoices):
        MARKET = "market", "Market"
        RATES = "rates", "Rates"
        COMMODITY = "commodity", "Commodity"
        INTERNATIONAL = "international", "International"
        FACTOR = "factor", "Factor rotation"
        VOLATILITY = "volatility", "Volatility"
        CREDIT = "credit", "Credit"
        HISTORICAL = "historical", "Historical replay"

    name = models.CharField(max_length=120, validators=[no_control_characters])
    category = models.CharField(max_length=20, choices=Category.choices)
    description = models.TextField(blank=True, validators=[no_control_characters_multiline])
    shocks = models.JSONField()
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="stress_scenarios",
    )  # null: the shared library
    is_active = models.BooleanField(default=True)
    is_historical = models.BooleanField(default=False)
    # Set when staff change a library scenario: the loader then leaves it alone unless --force.
    edited = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["category", "name", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["name"], condition=Q(owner__isnull=True), name="stress_library_name_unique"
            ),
            models.UniqueConstraint(fields=["owner", "name"], name="stress_owner_name_unique"),
        ]

    def __str__(self) -> str:
        return self.name


class StressTestResult(models.Model):
    portfolio = models.ForeignKey(
        "portfolios.Portfolio", on_delete=models.CASCADE, related_name="stress_results"
    )
    scenario = models.ForeignKey(StressScenario, on_delete=models.CASCADE, related_name="results")
    date = models.DateField()
    direct_pnl = models.FloatField()
    correlated_pnl = models.FloatField()
    total_pnl = models.FloatField()
    pnl_pct = models.FloatField()
    breakdown = models.JSONField(default=dict)  # by_factor, factor_moves, worst_positions

    class Meta:
        ordering = ["portfolio_id", "date", "scenario_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["portfolio", "scenario", "date"], name="stressresult_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.portfolio_id} {self.scenario_id} {self.date}"


class FactorCorrelation(models.Model):
    date = models.DateField()
    lookback = models.IntegerField()
    lam = models.FloatField()
    factors = models.JSONField()
    matrix = models.JSONField()  # correlation, rows and columns in `factors` order
    covariance = models.JSONField()  # daily, same order (conditional moves need it)

    class Meta:
        ordering = ["-date"]
        constraints = [
            models.UniqueConstraint(
                fields=["date", "lookback", "lam"], name="factorcorrelation_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.date} {self.lookback}"
