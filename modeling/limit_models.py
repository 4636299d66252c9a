"""Risk limits and alerts (issue "Risk limits and alerts"): a user's limits on a measure of one
portfolio or all of theirs, the breaches the evening's `limits` job finds, the events that make
a user's digest of a session, and the digests' deliveries (email, signed webhook). Imported by
modeling.models, so they are the modeling app's models. The measures, units and levels are
`modeling.limits.spec`'s."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from sigmasight.validators import no_control_characters


class Limit(models.Model):
    """A bound on one measure: `hard` is the limit, `warning` (optional) the level a manager
    is told about first. Levels are in `unit`: money (the book's currency), share_of_equity
    (a decimal: 0.25 = 25% of the book's equity), number (beta, delta, gamma, vega, a share of
    gross for concentration) or days. `bound`: max (value above the level breaches), min
    (below), abs_max (|value| above). `portfolio` null: every portfolio of the owner's."""

    class Bound(models.TextChoices):
        MAX = "max", "Maximum"
        MIN = "min", "Minimum"
        ABS_MAX = "abs_max", "Absolute maximum"

    class Unit(models.TextChoices):
        MONEY = "money", "Money"
        SHARE_OF_EQUITY = "share_of_equity", "Share of equity"
        NUMBER = "number", "Number"
        DAYS = "days", "Days"

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="risk_limits"
    )
    portfolio = models.ForeignKey(
        "portfolios.Portfolio",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="risk_limits",
    )
    name = models.CharField(max_length=120, blank=True, validators=[no_control_characters])
    measure = models.CharField(max_length=32)
    # confidence, horizon_days, method (var, es); scenario (stress_loss); name (a single name's
    # concentration; absent: the largest); sector (a sector's; absent: the largest).
    params = models.JSONField(default=dict, blank=True)
    bound = models.CharField(max_length=8, choices=Bound.choices, default=Bound.MAX)
    unit = models.CharField(max_length=16, choices=Unit.choices)
    warning = models.FloatField(null=True, blank=True)
    hard = models.FloatField()
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["owner", "id"], name="limit_owner_id_idx")]

    def __str__(self) -> str:
        return self.name or f"{self.measure} {self.bound} {self.hard:g} {self.unit}"


class Breach(models.Model):
    """A limit crossed on one portfolio: opened on the first session its measure is beyond the
    warning (or hard) level, updated while it stays beyond (value, level, last_seen), resolved
    on the first session it is back within. At most one unresolved breach per limit and
    portfolio. `bound_value` is the level crossed (in the limit's unit), `value` the measure."""

    class Level(models.TextChoices):
        WARNING = "warning", "Warning"
        HARD = "hard", "Hard"

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        ACKNOWLEDGED = "acknowledged", "Acknowledged"
        RESOLVED = "resolved", "Resolved"

    limit = models.ForeignKey(Limit, on_delete=models.CASCADE, related_name="breaches")
    portfolio = models.ForeignKey(
        "portfolios.Portfolio", on_delete=models.CASCADE, related_name="breaches"
    )
    session = models.DateField()  # the last session evaluated
    value = models.FloatField()
    bound_value = models.FloatField()
    level = models.CharField(max_length=8, choices=Level.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    first_seen = models.DateField()
    last_seen = models.DateField()
    resolved_on = models.DateField(null=True, blank=True)
    # The value the user was last told of (opened or worsened): what "worsened" is measured from.
    notified_value = models.FloatField()
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )

    class Meta:
        ordering = ["-last_seen", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["limit", "portfolio"],
                condition=~Q(status="resolved"),
                name="breach_one_unresolved",
            ),
        ]
        indexes = [models.Index(fields=["portfolio", "status"], name="breach_portfolio_idx")]

    def __str__(self) -> str:
        return f"{self.limit_id} {self.portfolio_id} {self.level} {self.status}"


class BreachEvent(models.Model):
    """What a session changed about a breach (opened, worsened, resolved): the digest's lines.
    One per breach, session and kind, so re-running a session adds none."""

    class Kind(models.TextChoices):
        OPENED = "opened", "Opened"
        WORSENED = "worsened", "Worsened"
        RESOLVED = "resolved", "Resolved"

    breach = models.ForeignKey(Breach, on_delete=models.CASCADE, related_name="events")
    session = models.DateField()
    kind = models.CharField(max_length=8, choices=Kind.choices)
    value = models.FloatField()
    level = models.CharField(max_length=8, blank=True)  # blank: resolved
    digest = models.ForeignKey(
        "AlertDigest", on_delete=models.SET_NULL, null=True, blank=True, related_name="events"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["breach", "session", "kind"], name="breachevent_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.breach_id} {self.session} {self.kind}"


class AlertSettings(models.Model):
    """How a user is told: email (to their address) and a webhook (HTTPS; signed with
    HMAC-SHA256 under `webhook_secret`, which is shown once when set)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="alert_settings"
    )
    email = models.BooleanField(default=True)
    webhook_url = models.URLField(max_length=500, blank=True)
    webhook_secret = models.CharField(max_length=128, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"alerts of {self.user_id}"


class AlertDigest(models.Model):
    """One user's digest of a session: the events not yet told (normally one per user and
    session; a re-run that finds nothing new makes none)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="alert_digests"
    )
    session = models.DateField()
    body = models.JSONField(default=dict)  # the JSON a webhook receives
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"digest {self.user_id} {self.session}"


class AlertDelivery(models.Model):
    """One channel's delivery of a digest, with its attempts: the log staff read in the admin."""

    class Channel(models.TextChoices):
        EMAIL = "email", "Email"
        WEBHOOK = "webhook", "Webhook"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"  # retries exhausted, or refused (an unsafe URL)

    digest = models.ForeignKey(AlertDigest, on_delete=models.CASCADE, related_name="deliveries")
    channel = models.CharField(max_length=8, choices=Channel.choices)
    target = models.CharField(max_length=500)  # the address or URL (no secret)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    response_status = models.PositiveIntegerField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.channel} {self.status} {self.target}"
