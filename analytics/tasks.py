from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings

from analytics.batch import trigger_run
from analytics.models import BatchJob

logger = logging.getLogger("sigmasight.batch")


@shared_task(
    name="analytics.run_trigger",
    soft_time_limit=settings.CELERY_TASK_SOFT_TIME_LIMIT * 6,
    time_limit=settings.CELERY_TASK_TIME_LIMIT * 6,
)
def run_trigger(umbrella_id: int, portfolio_ids: list[int] | None = None) -> dict[str, object]:
    """Run a staff-triggered batch (ids and ISO data only: the row is re-read here)."""
    if not BatchJob.objects.filter(pk=umbrella_id).exists():
        logger.warning("batch trigger gone", extra={"job_id": umbrella_id})
        return {"job_id": umbrella_id, "status": "missing"}
    job = trigger_run(umbrella_id, portfolio_ids)
    return {"job_id": job.pk, "status": job.status}
