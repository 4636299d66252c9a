"""Background work of the portfolios app."""

from __future__ import annotations

import logging

from celery import shared_task

from portfolios import demo

logger = logging.getLogger("sigmasight.demo")


@shared_task(name="portfolios.demo_reset", soft_time_limit=1800, time_limit=1860)
def demo_reset() -> dict[str, object]:
    """Rebuild the demo on a worker: with a network market-data source it fetches prices and
    runs the day's batch, which a web request must not wait for."""
    report = demo.demo_seed(reset=True)
    logger.info("demo reset", extra={"as_of": report.as_of.isoformat()})
    return {"as_of": report.as_of.isoformat(), "books": len(report.books)}
