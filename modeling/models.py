from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from sigmasight.validators import no_control_characters, no_control_characters_multiline


class ModelingSession(models.Model):
    """A what-if book: the portfolio's open positions frozen at creation plus pro-forma trades.

    ``base_positions`` holds the valued book frame's rows (symbol, quantity, price, Greeks, betas)
    so a session keeps computing against the book it was opened on, whatever the batch does later.
    """

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        CALCULATED = "calculated", "Calculated"
        SAVED = "saved", "Saved"

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="modeling_sessions"
    )
    portfolio = models.ForeignKey(
        "portfolios.Portfolio", on_delete=models.CASCADE, related_name="modeling_sessions"
    )
    name = models.CharField(max_length=120, validators=[no_control_characters])
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.ACTIVE)
    as_of = models.DateField()
    base_positions = models.JSONField(default=list, blank=True)
    base_context = models.JSONField(default=dict, blank=True)
    # Frozen numeric inputs (numpy .npz): the closes the base's state was computed from and the
    # base's Monte Carlo P&L, so a calculation reads and revalues only what the trades add.
    base_arrays = models.BinaryField(default=bytes, editable=False)
    last_impacts = models.JSONField(null=True, blank=True)
    calculated_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["owner", "id"], name="modsession_owner_id_idx")]

    def __str__(self) -> str:
        return self.name


class ProFormaTrade(models.Model):
    """A hypothetical trade: signed quantity (shares, or contracts for options) at a price."""

    class OptionType(models.TextChoices):
        CALL = "C", "Call"
        PUT = "P", "Put"

    session = models.ForeignKey(ModelingSession, on_delete=models.CASCADE, related_name="trades")
    symbol = models.CharField(max_length=32)
    underlying_symbol = models.CharField(max_length=16)
    quantity = models.DecimalField(max_digits=20, decimal_places=6)
    price = models.DecimalField(max_digits=20, decimal_places=6)
    option_type = models.CharField(max_length=1, choices=OptionType.choices, blank=True)
    strike = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    expiration = models.DateField(null=True, blank=True)
    multiplier = models.PositiveIntegerField(default=1)
    note = models.CharField(
        max_length=200, blank=True, validators=[no_control_characters_multiline]
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=~Q(quantity=0), name="proforma_quantity_nonzero"),
            models.CheckConstraint(condition=Q(price__gte=0), name="proforma_price_nonneg"),
            models.CheckConstraint(
                condition=Q(option_type="", strike__isnull=True, expiration__isnull=True)
                | Q(option_type__in=["C", "P"], strike__gt=0, expiration__isnull=False),
                name="proforma_option_terms_all_or_none",
            ),
            models.CheckConstraint(
                condition=Q(multiplier__gte=1), name="proforma_multiplier_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.symbol} {self.quantity}"

    @property
    def is_option(self) -> bool:
        return bool(self.option_type)


class ModelingSessionSnapshot(models.Model):
    """The plan's modeling_session_snapshots: a saved session, frozen (base, trades, impacts)."""

    session = models.ForeignKey(ModelingSession, on_delete=models.CASCADE, related_name="snapshots")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="modeling_snapshots"
    )
    portfolio = models.ForeignKey(
        "portfolios.Portfolio", on_delete=models.CASCADE, related_name="modeling_snapshots"
    )
    name = models.CharField(max_length=120, validators=[no_control_characters])
    as_of = models.DateField()
    base_positions = models.JSONField(default=list)
    trades = models.JSONField(default=list)
    impacts = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["owner", "id"], name="modsnapshot_owner_id_idx")]

    def __str__(self) -> str:
        return f"{self.name} ({self.created_at:%Y-%m-%d %H:%M})" if self.created_at else self.name


class ExportHistory(models.Model):
    class Format(models.TextChoices):
        CSV = "csv", "CSV"
        FIX = "fix", "FIX 4.4"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="exports"
    )
    session = models.ForeignKey(
        ModelingSession,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="exports",
    )
    format = models.CharField(max_length=3, choices=Format.choices)
    trade_count = models.PositiveIntegerField(default=0)
    file = models.FileField(upload_to="exports/%Y/%m/", blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "export history"
        indexes = [models.Index(fields=["user", "id"], name="export_user_id_idx")]

    def __str__(self) -> str:
        return f"{self.get_format_display()} export {self.pk}"


class Report(models.Model):
    class Kind(models.TextChoices):
        RISK_SUMMARY = "risk_summary", "Risk summary"
        STRESS = "stress", "Stress"
        FACTOR = "factor", "Factor"
        ATTRIBUTION = "attribution", "P&L attribution"

    class Format(models.TextChoices):
        PDF = "pdf", "PDF"
        HTML = "html", "HTML"
        CSV = "csv", "CSV"
        XLSX = "xlsx", "Excel"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="reports"
    )
    portfolio = models.ForeignKey(
        "portfolios.Portfolio", on_delete=models.CASCADE, related_name="reports"
    )
    kind = models.CharField(max_length=20, choices=Kind.choices)
    format = models.CharField(max_length=4, choices=Format.choices)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    file = models.FileField(upload_to="reports/%Y/%m/", blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["owner", "id"], name="report_owner_id_idx")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.format}) {self.pk}"


# The limits and alerts models (`modeling.limit_models`) are this app's.
from modeling.limit_models import (  # noqa: E402, F401
    AlertDelivery,
    AlertDigest,
    AlertSettings,
    Breach,
    BreachEvent,
    Limit,
)
