from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone


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


class DividendYield(models.Model):
    """An underlying's dividend yield as of a date: continuous, annual, decimal (0.03 is 3%),
    the q of Black-Scholes-Merton. Sources use DailyPrice's vocabulary (synthetic, csv, yfinance)."""

    security = models.ForeignKey(Security, on_delete=models.CASCADE, related_name="dividend_yields")
    date = models.DateField()
    dividend_yield = models.FloatField()
    source = models.CharField(max_length=16)
    fetched_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["security_id", "date"]
        constraints = [
            models.UniqueConstraint(
                fields=["security", "date"], name="dividendyield_security_date"
            ),
            models.CheckConstraint(
                condition=Q(dividend_yield__gte=0) & Q(dividend_yield__lt=1),
                name="dividendyield_range",
                violation_error_message="A dividend yield is a decimal from 0 to below 1 "
                "(0.031 is 3.1%%).",
            ),
        ]
        indexes = [models.Index(fields=["date"], name="dividendyield_date_idx")]

    def __str__(self) -> str:
        return f"{self.security_id} {self.date} {self.dividend_yield}"


class CorporateAction(models.Model):
    """A split or a cash dividend of one security, effective on its ex-date. A split is
    `split_to` new shares for `split_from` old ones (4-for-1: to=4, from=1); a dividend is
    `cash_amount` per share. Applying it to books is the portfolios app's work."""

    class Kind(models.TextChoices):
        SPLIT = "split", "Split"
        CASH_DIVIDEND = "cash_dividend", "Cash dividend"

    class Source(models.TextChoices):
        POLYGON = "polygon", "Polygon"
        YFINANCE = "yfinance", "yfinance"
        CSV = "csv", "CSV"
        ADMIN = "admin", "Admin"
        SYNTHETIC = "synthetic", "Synthetic"

    security = models.ForeignKey(
        Security, on_delete=models.CASCADE, related_name="corporate_actions"
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    split_to = models.DecimalField(max_digits=12, decimal_places=4, null=True, blank=True)
    split_from = models.DecimalField(max_digits=12, decimal_places=4, null=True, blank=True)
    cash_amount = models.DecimalField(max_digits=14, decimal_places=6, null=True, blank=True)
    ex_date = models.DateField()
    pay_date = models.DateField(null=True, blank=True)
    source = models.CharField(max_length=16, choices=Source.choices)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["ex_date", "security_id", "kind"]
        constraints = [
            models.UniqueConstraint(
                fields=["security", "kind", "ex_date"], name="corporateaction_security_kind_exdate"
            ),
            models.CheckConstraint(
                condition=Q(kind__in=["split", "cash_dividend"]),
                name="corporateaction_kind_valid",
            ),
            models.CheckConstraint(
                condition=~Q(kind="split")
                | Q(
                    split_to__isnull=False,
                    split_from__isnull=False,
                    split_to__gt=0,
                    split_from__gt=0,
                    cash_amount__isnull=True,
                ),
                name="corporateaction_split_ratio_positive",
            ),
            models.CheckConstraint(
                condition=~Q(kind="cash_dividend")
                | Q(
                    cash_amount__isnull=False,
                    cash_amount__gt=0,
                    split_to__isnull=True,
                    split_from__isnull=True,
                ),
                name="corporateaction_dividend_amount_positive",
            ),
            models.CheckConstraint(
                condition=Q(pay_date__isnull=True) | Q(pay_date__gte=models.F("ex_date")),
                name="corporateaction_pay_after_ex",
            ),
        ]
        indexes = [models.Index(fields=["ex_date"], name="corporateaction_exdate_idx")]

    def __str__(self) -> str:
        if self.kind == self.Kind.SPLIT:
            return f"{self.security_id} split {self.split_to}:{self.split_from} {self.ex_date}"
        return f"{self.security_id} dividend {self.cash_amount} {self.ex_date}"


class PriceAdjustment(models.Model):
    """The mark that one security's stored bars before an action's ex-date were divided by
    `factor` (a split's ratio), so a re-run never divides them twice. `security` is the split
    stock, an option on it whose deliverable changed, or a new contract whose history was
    copied from the old one."""

    action = models.ForeignKey(
        CorporateAction, on_delete=models.CASCADE, related_name="price_adjustments"
    )
    security = models.ForeignKey(
        Security, on_delete=models.CASCADE, related_name="price_adjustments"
    )
    factor = models.DecimalField(max_digits=12, decimal_places=6)
    rows = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["action_id", "security_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["action", "security"], name="priceadjustment_action_security"
            ),
            models.CheckConstraint(
                condition=Q(factor__gt=0), name="priceadjustment_factor_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.security_id} / {self.factor} ({self.action_id})"
