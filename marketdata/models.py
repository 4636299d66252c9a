from __future__ import annotations

from django.db import models
from django.db.models import Q


class Security(models.Model):
    class AssetType(models.TextChoices):
        STOCK = "stock", "Stock"
        ETF = "etf", "ETF"
        OPTION = "option", "Option"
        INDEX = "index", "Index"
        RATE = "rate", "Rate series"

    class OptionType(models.TextChoices):
        CALL = "C", "Call"
        PUT = "P", "Put"

    symbol = models.CharField(max_length=32, unique=True)
    name = models.CharField(max_length=200, blank=True)
    asset_type = models.CharField(max_length=10, choices=AssetType.choices, default=AssetType.STOCK)
    sector = models.CharField(max_length=100, blank=True)
    industry = models.CharField(max_length=100, blank=True)
    exchange = models.CharField(max_length=20, blank=True)
    currency = models.CharField(max_length=3, default="USD")
    is_active = models.BooleanField(default=True)
    # Options only: the contract terms parsed from the OCC symbol.
    underlying = models.CharField(max_length=16, blank=True, db_index=True)
    expiration = models.DateField(null=True, blank=True)
    strike = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    option_type = models.CharField(max_length=1, choices=OptionType.choices, blank=True)
    multiplier = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["symbol"]
        verbose_name_plural = "securities"
        constraints = [
            models.CheckConstraint(
                condition=~Q(asset_type="option")
                | (
                    Q(expiration__isnull=False, strike__gt=0, option_type__in=["C", "P"])
                    & ~Q(underlying="")
                ),
                name="security_option_terms_complete",
            ),
            models.CheckConstraint(
                condition=Q(multiplier__gte=1), name="security_multiplier_positive"
            ),
        ]
        indexes = [models.Index(fields=["underlying", "expiration"], name="security_chain_idx")]

    def __str__(self) -> str:
        return self.symbol


class DailyPrice(models.Model):
    """One session's bar for a security (the plan's market_data_cache). Rate series store the
    yield as a decimal in `close` (0.0425 for 4.25%)."""

    security = models.ForeignKey(Security, on_delete=models.CASCADE, related_name="prices")
    date = models.DateField()
    open = models.DecimalField(max_digits=20, decimal_places=6, null=True, blank=True)
    high = models.DecimalField(max_digits=20, decimal_places=6, null=True, blank=True)
    low = models.DecimalField(max_digits=20, decimal_places=6, null=True, blank=True)
    close = models.DecimalField(max_digits=20, decimal_places=6)
    adjusted_close = models.DecimalField(max_digits=20, decimal_places=6, null=True, blank=True)
    volume = models.BigIntegerField(null=True, blank=True)
    # Options: the implied volatility the source quoted with the close (decimal), if any.
    implied_volatility = models.FloatField(null=True, blank=True)
    source = models.CharField(max_length=16)
    fetched_at = models.DateTimeField()

    class Meta:
        ordering = ["security_id", "date"]
        constraints = [
            models.UniqueConstraint(fields=["security", "date"], name="dailyprice_security_date"),
            models.CheckConstraint(
                condition=Q(volume__isnull=True) | Q(volume__gte=0), name="dailyprice_volume_nonneg"
            ),
        ]
        indexes = [models.Index(fields=["date"], name="dailyprice_date_idx")]

    def __str__(self) -> str:
        return f"{self.security_id} {self.date} {self.close}"


class BackfillProgress(models.Model):
    """How far a backfill of one symbol over one range got, so an interrupted run resumes."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    symbol = models.CharField(max_length=32)
    start = models.DateField()
    end = models.DateField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    source = models.CharField(max_length=16, blank=True)
    error = models.TextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["symbol", "start"]
        verbose_name_plural = "backfill progress"
        constraints = [
            models.UniqueConstraint(
                fields=["symbol", "start", "end"], name="backfill_symbol_range"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.symbol} {self.start}..{self.end} {self.status}"
