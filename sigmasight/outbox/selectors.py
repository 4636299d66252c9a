"""What the operations page shows of the outbox: what waits, what failed to publish."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Min, Q

from sigmasight.outbox.models import OutboxTask

RECENT = 20


def outbox_status() -> dict[str, Any]:
    counts = OutboxTask.objects.aggregate(
        pending=Count("id", filter=Q(sent_at__isnull=True)),
        retrying=Count("id", filter=Q(sent_at__isnull=True, attempts__gt=0)),
        sent=Count("id", filter=Q(sent_at__isnull=False)),
        oldest_pending=Min("created_at", filter=Q(sent_at__isnull=True)),
    )
    recent = list(
        OutboxTask.objects.order_by("-created_at", "-id").values(
            "id", "task", "task_id", "created_at", "attempts", "last_error", "sent_at"
        )[:RECENT]
    )
    return {**counts, "recent": recent}
