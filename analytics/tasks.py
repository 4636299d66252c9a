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


@shared_task(name="analytics.run_job", soft_time_limit=settings.CELERY_TASK_SOFT_TIME_LIMIT * 3,
             time_limit=settings.CELERY_TASK_TIME_LIMIT * 3)  # fmt: skip
def run_job(job: str, date: str | None = None) -> dict[str, object]:
    """One job of the day for a session (default: the last completed NYSE session)."""
    from datetime import date as date_type

    from analytics.batch import job_run
    from marketdata.calendar import last_completed_session
    from sigmasight.exceptions import ConflictError

    run_date = date_type.fromisoformat(date) if date else last_completed_session()
    try:
        result = job_run(job, run_date)
    except ConflictError as exc:
        logger.warning("batch job already running", extra={"job": job, "error": str(exc)})
        return {"job": job, "status": "already_running"}
    return {"job": job, "job_id": result.pk, "status": result.status}


@shared_task(name="analytics.scenario_backtest", soft_time_limit=600, time_limit=900)
def scenario_backtest(days_back: int = 90) -> dict[str, object]:
    """Weekly: predicted vs realized P&L of every portfolio over the last sessions (logged)."""
    from analytics.risk_services import scenario_accuracy
    from analytics.services import session_for
    from portfolios.models import Portfolio
    from sigmasight.exceptions import DomainError

    as_of = session_for(None)
    results = {}
    for portfolio in Portfolio.objects.order_by("id"):
        try:
            results[portfolio.pk] = scenario_accuracy(portfolio, as_of, days_back)
        except DomainError as exc:
            results[portfolio.pk] = {"error": exc.message}
    logger.info("scenario backtest", extra={"as_of": as_of.isoformat(), "portfolios": len(results)})
    return {"as_of": as_of.isoformat(), "results": results}
