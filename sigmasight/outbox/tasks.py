from __future__ import annotations

from celery import shared_task

from sigmasight.outbox.services import outbox_flush


@shared_task(name="outbox.flush", soft_time_limit=50, time_limit=60, ignore_result=True)
def flush() -> dict[str, int]:
    """Beat's every-minute send of tasks the web stored while the broker was down."""
    result = outbox_flush()
    return {"sent": result.sent, "pending": result.pending}
