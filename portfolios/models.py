from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower

from sigmasight.validators import no_control_characters, no_control_characters_multiline

currency_code = RegexValidator(r"^[A-Z]{3}$", "Use a three-letter ISO 4217 code such as USD.")
hex_color = RegexValidator(r"^#[0-9A-Fa-f]{6}$", "Use a colour like #4A90D9.")


class Portfolio(models.Model):
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="portfolios"
    )
    name = models.CharField(max_length=100, validators=[no_control_characters])
    description = models.TextField(blank=True, validators=[no_control_characters_multiline])
    base_currency = models.CharField(max_length=3, default="USD", validators=[currency_code])
    cash = models.DecimalField(max_digits=20, decimal_places=2, default=Decimal("0.00"))
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["owner", "name"], name="portfolio_owner_name_unique"),
        ]
        indexes = [models.Index(fields=["owner", "id"], name="portfolio_owner_id_idx")]

    def __str__(self) -> str:
        return self.name


class Tag(models.Model):
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="tags"
    )
    name = models.CharField(max_length=50, validators=[no_control_characters])
    color = models.CharField(max_length=7, default="#4A90D9", validators=[hex_color])
    description = models.CharField(
        max_length=200, blank=True, validators=[no_control_characters_multiline]
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(Lower("name"), "owner", name="tag_owner_name_ci_unique"),
        ]

    def __str__(self) -> str:
        return self.name


class Position(models.Model):
    """One open (or closed) lot. Quantity is signed: negative is short; options are contracts."""

    class PositionType(models.TextChoices):
        LONG = "LONG", "Long stock"
        SHORT = "SHORT", "Short stock"
        LC = "LC", "Long call"
        LP = "LP", "Long put"
        SC = "SC", "Short call"
        SP = "SP", "Short put"

    class OptionType(models.TextChoices):
        CALL = "C", "Call"
        PUT = "P", "Put"

    portfolio = models.ForeignKey(Portfolio, on_delete=models.CASCADE, related_name="positions")
    security = models.ForeignKey(
        "marketdata.Security", on_delete=models.PROTECT, related_name="positions"
    )
    symbol = models.CharField(max_length=32)
    underlying_symbol = models.CharField(max_length=16)
    position_type = models.CharField(max_length=5, choices=PositionType.choices)
    quantity = models.DecimalField(max_digits=20, decimal_places=6)
    entry_price = models.DecimalField(max_digits=20, decimal_places=6)
    entry_date = models.DateField()
    closed_at = models.DateTimeField(null=True, blank=True)
    option_type = models.CharField(max_length=1, choices=OptionType.choices, blank=True)
    strike = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    expiration = models.DateField(null=True, blank=True)
    multiplier = models.PositiveIntegerField(default=1)
    notes = models.TextField(blank=True, validators=[no_control_characters_multiline])
    tags = models.ManyToManyField(Tag, through="PositionTag", related_name="positions", blank=True)
    # Filled by the daily batch (valuation); null until a position has been valued.
    last_price = models.DecimalField(max_digits=20, decimal_places=6, null=True, blank=True)
    market_value = models.DecimalField(max_digits=20, decimal_places=2, null=True, blank=True)
    exposure = models.DecimalField(max_digits=20, decimal_places=2, null=True, blank=True)
    unrealized_pnl = models.DecimalField(max_digits=20, decimal_places=2, null=True, blank=True)
    daily_pnl = models.DecimalField(max_digits=20, decimal_places=2, null=True, blank=True)
    valued_as_of = models.DateField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=~Q(quantity=0), name="position_quantity_nonzero"),
            models.CheckConstraint(
                condition=Q(entry_price__gte=0), name="position_entry_price_nonneg"
            ),
            models.CheckConstraint(
                condition=Q(option_type="", strike__isnull=True, expiration__isnull=True)
                | Q(option_type__in=["C", "P"], strike__gt=0, expiration__isnull=False),
                name="position_option_terms_all_or_none",
            ),
            models.CheckConstraint(
                condition=Q(option_type="", position_type__in=["LONG", "SHORT"])
                | Q(option_type="C", position_type__in=["LC", "SC"])
                | Q(option_type="P", position_type__in=["LP", "SP"]),
                name="position_type_matches_instrument",
            ),
            models.CheckConstraint(
                condition=Q(multiplier__gte=1), name="position_multiplier_positive"
            ),
            models.UniqueConstraint(
                fields=["portfolio", "symbol", "entry_date"],
                condition=Q(closed_at__isnull=True),
                name="position_open_lot_unique",
            ),
        ]
        indexes = [
            models.Index(fields=["portfolio", "id"], name="position_portfolio_id_idx"),
            models.Index(fields=["portfolio", "underlying_symbol"], name="position_underlying_idx"),
            models.Index(fields=["expiration"], name="position_expiration_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.symbol} {self.quantity}"

    @property
    def is_option(self) -> bool:
        return bool(self.option_type)


class PositionTag(models.Model):
    position = models.ForeignKey(Position, on_delete=models.CASCADE)
    tag = models.ForeignKey(Tag, on_delete=models.CASCADE)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["position", "tag"], name="positiontag_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.position_id}:{self.tag_id}"


class Strategy(models.Model):
    class Kind(models.TextChoices):
        COVERED_CALL = "covered_call", "Covered call"
        PROTECTIVE_PUT = "protective_put", "Protective put"
        COLLAR = "collar", "Collar"
        VERTICAL_SPREAD = "vertical_spread", "Vertical spread"
        STRADDLE = "straddle", "Straddle"
        STRANGLE = "strangle", "Strangle"
        PAIRS = "pairs", "Pairs trade"
        SINGLE = "single", "Single position"
        CUSTOM = "custom", "Custom"

    USER_KINDS = (Kind.PAIRS, Kind.CUSTOM)

    portfolio = models.ForeignKey(Portfolio, on_delete=models.CASCADE, related_name="strategies")
    name = models.CharField(max_length=120, validators=[no_control_characters])
    kind = models.CharField(max_length=20, choices=Kind.choices)
    is_detected = models.BooleanField(default=True)
    positions = models.ManyToManyField(Position, related_name="strategies", blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        verbose_name_plural = "strategies"
        constraints = [
            models.CheckConstraint(
                condition=Q(is_detected=True) | Q(kind__in=["pairs", "custom"]),
                name="strategy_user_defined_kind",
            ),
        ]
        indexes = [models.Index(fields=["portfolio", "id"], name="strategy_portfolio_id_idx")]

    def __str__(self) -> str:
        return self.name


class AppliedCorporateAction(models.Model):
    """One corporate action applied to one position on its ex-date: what the position was and
    became (its history record) and, for a dividend, the cash the portfolio received (negative
    for a short, which pays it). Its uniqueness makes re-running a session change nothing;
    `cash` on the ex-date is the dividend the session's daily P&L adds."""

    portfolio = models.ForeignKey(
        Portfolio, on_delete=models.CASCADE, related_name="applied_corporate_actions"
    )
    position = models.ForeignKey(
        Position, on_delete=models.CASCADE, related_name="applied_corporate_actions"
    )
    action = models.ForeignKey(
        "marketdata.CorporateAction", on_delete=models.PROTECT, related_name="applications"
    )
    ex_date = models.DateField()
    kind = models.CharField(max_length=16)
    rule = models.CharField(max_length=32)  # stock_split, option_split, option_deliverable, ...
    old_symbol = models.CharField(max_length=32)
    new_symbol = models.CharField(max_length=32)
    old_quantity = models.DecimalField(max_digits=20, decimal_places=6)
    new_quantity = models.DecimalField(max_digits=20, decimal_places=6)
    old_entry_price = models.DecimalField(max_digits=20, decimal_places=6)
    new_entry_price = models.DecimalField(max_digits=20, decimal_places=6)
    old_strike = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    new_strike = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    old_multiplier = models.PositiveIntegerField()
    new_multiplier = models.PositiveIntegerField()
    cash = models.DecimalField(max_digits=20, decimal_places=2, default=Decimal("0.00"))
    applied_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["ex_date", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["position", "action"], name="appliedcorporateaction_position_action"
            ),
        ]
        indexes = [
            models.Index(fields=["portfolio", "ex_date"], name="appliedca_portfolio_exdate_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.old_symbol} {self.rule} {self.ex_date}"
