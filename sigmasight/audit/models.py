"""The audit log: who did what to which object, from where. Written by `services.audit_record`
only, read in the admin; never edited."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class AuditEvent(models.Model):
    class Action(models.TextChoices):
        LOGIN = "auth.login", "Login"
        LOGIN_FAILED = "auth.login_failed", "Login failed"
        POSITIONS_UPLOAD = "positions.upload", "Positions uploaded"
        POSITION_CREATE = "position.create", "Position created"
        POSITION_UPDATE = "position.update", "Position updated"
        POSITION_DELETE = "position.delete", "Position deleted"
        PORTFOLIO_CREATE = "portfolio.create", "Portfolio created"
        PORTFOLIO_UPDATE = "portfolio.update", "Portfolio updated"
        PORTFOLIO_DELETE = "portfolio.delete", "Portfolio deleted"
        STRATEGY_CREATE = "strategy.create", "Strategy created"
        STRATEGY_UPDATE = "strategy.update", "Strategy updated"
        STRATEGY_DELETE = "strategy.delete", "Strategy deleted"
        TAG_CREATE = "tag.create", "Tag created"
        TAG_UPDATE = "tag.update", "Tag updated"
        TAG_DELETE = "tag.delete", "Tag deleted"
        SCENARIO_CREATE = "scenario.create", "Stress scenario created"
        SCENARIO_UPDATE = "scenario.update", "Stress scenario updated"
        SCENARIO_DELETE = "scenario.delete", "Stress scenario deleted"
        PRICES_IMPORT = "prices.import", "Prices imported"
        BATCH_TRIGGER = "batch.trigger", "Batch triggered"
        BATCH_RERUN = "batch.rerun", "Batch job re-run"
        DEMO_RESET = "demo.reset", "Demo reset"
        EXPORT_CREATE = "export.create", "Trades exported"
        EXPORT_DOWNLOAD = "export.download", "Export downloaded again"
        REPORT_DOWNLOAD = "report.download", "Report downloaded"
        CORPORATE_ACTION_APPLY = "corporate_action.apply", "Corporate action applied"
        LIMIT_CREATE = "limit.create", "Risk limit created"
        LIMIT_UPDATE = "limit.update", "Risk limit updated"
        LIMIT_DELETE = "limit.delete", "Risk limit deleted"
        LIMIT_IMPORT = "limit.import", "Risk limits imported"
        BREACH_ACKNOWLEDGE = "breach.acknowledge", "Limit breach acknowledged"
        ALERTS_UPDATE = "alerts.update", "Alert settings changed"

    created_at = models.DateTimeField(default=timezone.now, db_index=True, editable=False)
    # SET_NULL keeps the event when the user goes; actor_email still says who it was.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    actor_email = models.CharField(
        max_length=254, blank=True, help_text="the actor's email, or the email a failed login tried"
    )
    action = models.CharField(max_length=40, choices=Action.choices)
    object_type = models.CharField(max_length=100, blank=True, help_text="app_label.model")
    object_id = models.CharField(max_length=64, blank=True)
    object_repr = models.CharField(max_length=200, blank=True)
    # A plain id, not a foreign key: the event outlives the portfolio.
    portfolio_id = models.PositiveBigIntegerField(null=True, blank=True, db_index=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["action", "created_at"], name="audit_action_created_idx")]

    def __str__(self) -> str:
        who = self.actor_email or "system"
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {who} {self.action}"
