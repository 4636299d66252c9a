from __future__ import annotations

import logging
from contextlib import suppress

from celery import Task, shared_task
from django.conf import settings

from modeling import demo
from modeling.limit_models import AlertDelivery
from modeling.limits.delivery import DeliveryRetry, delivery_send
from modeling.reports.services import report_run

logger = logging.getLogger("sigmasight.demo")


@shared_task(name="modeling.generate_report", soft_time_limit=120, time_limit=150)
def generate_report(report_id: int) -> dict[str, object]:
    """Generate one queued report (a redelivered or duplicate task finds it claimed)."""
    report = report_run(report_id=report_id)
    if report is None:
        return {"report": report_id, "status": "skipped"}
    return {"report": report_id, "status": report.status}


# The name it had when the demo lived in the portfolios app: queued rows and beat entries keep it.
@shared_task(name="portfolios.demo_reset", soft_time_limit=1800, time_limit=1860)
def demo_reset() -> dict[str, object]:
    """Rebuild the demo on a worker: with a network market-data source it fetches prices and
    runs the day's batch, which a web request must not wait for."""
    report = demo.demo_seed(reset=True)
    logger.info("demo reset", extra={"as_of": report.as_of.isoformat()})
    return {"as_of": report.as_of.isoformat(), "books": len(report.books)}


def _outcome(delivery_id: int, delivery: AlertDelivery | None) -> dict[str, object]:
    if delivery is None:
        return {"delivery": delivery_id, "status": "skipped"}
    return {"delivery": delivery_id, "status": delivery.status, "attempts": delivery.attempts}


# A transient failure is retried with exponential backoff (jittered, capped); the last attempt
# marks the delivery failed instead of raising.
@shared_task(
    bind=True,
    name="modeling.deliver_alert",
    autoretry_for=(DeliveryRetry,),
    retry_backoff=settings.SIGMASIGHT_ALERT_RETRY_BACKOFF_S,
    retry_backoff_max=settings.SIGMASIGHT_ALERT_RETRY_BACKOFF_MAX_S,
    retry_jitter=True,
    max_retries=settings.SIGMASIGHT_ALERT_RETRIES,
    soft_time_limit=300,
    time_limit=330,
)
def deliver_alert(self: Task, delivery_id: int) -> dict[str, object]:
    """One attempt at one alert delivery (an email or a webhook POST of a digest)."""
    retries = self.max_retries or 0
    if not self.request.is_eager:
        final = self.request.retries >= retries
        return _outcome(delivery_id, delivery_send(delivery_id=delivery_id, final=final))
    # Applied in-process (no broker: development, tests), a retry would reach the caller as an
    # exception (eager tasks propagate), so the attempts run here, back to back.
    for _attempt in range(retries):
        with suppress(DeliveryRetry):
            return _outcome(delivery_id, delivery_send(delivery_id=delivery_id, final=False))
    return _outcome(delivery_id, delivery_send(delivery_id=delivery_id, final=True))
