from __future__ import annotations

import logging

from celery import shared_task

from modeling import demo
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
