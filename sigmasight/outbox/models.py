"""The task outbox: a Celery task to send, written in the same transaction as the change that
needs it, so a broker that is down when the change commits loses nothing (`services.py`)."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone


class OutboxTask(models.Model):
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    task = models.CharField(max_length=200, help_text="the Celery task name")
    args = models.JSONField(default=list, blank=True)
    kwargs = models.JSONField(default=dict, blank=True)
    # The id the caller was given (a 202's job_id): the task is published under it, however late.
    task_id = models.CharField(max_length=64, unique=True)
    options = models.JSONField(default=dict, blank=True, help_text="queue, countdown, priority")
    attempts = models.PositiveIntegerField(default=0, help_text="failed publish attempts")
    last_error = models.TextField(blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            # Only the pending rows: "is anything waiting?" stays one small index probe.
            models.Index(
                fields=["created_at", "id"],
                condition=Q(sent_at__isnull=True),
                name="outbox_pending_idx",
            )
        ]

    def __str__(self) -> str:
        return f"{self.task} {self.task_id} ({'sent' if self.sent_at else 'pending'})"
