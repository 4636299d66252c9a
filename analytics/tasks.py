from __future__ import annotations

import logging
from datetime import date

from celery import chain, chord, group, shared_task
from django.conf import settings
from django.core.cache import cache

from analytics import batch
from analytics.models import BatchJob
from analytics.montecarlo import LegDraws
from analytics.risk_metrics import scenario_accuracy
from analytics.selectors import SessionCloses
from marketdata import calendar
from portfolios.models import Portfolio
from sigmasight.api.caching import everything_generation
from sigmasight.exceptions import ConflictError, DomainError

logger = logging.getLogger("sigmasight.batch")


def _date(value: str | None) -> date:
    return date.fromisoformat(value) if value else calendar.last_completed_session()


@shared_task(bind=True, name="analytics.run_job", soft_time_limit=120, time_limit=180)
def run_job(
    self,
    job: str,
    date: str | None = None,
    portfolio_ids: list[int] | None = None,
    triggered_by_id: int | None = None,
    parent_id: int | None = None,
) -> dict[str, object]:
    """One job of the day for a session (default: the last completed NYSE session): claims the
    job row, then replaces itself with a chord, one `run_chunk` per chunk of portfolios in
    parallel and `finish_job` folding their results, so a chain of jobs waits for the chord."""
    run_date = _date(date)
    try:
        row = batch.job_open(
            job,
            run_date,
            triggered_by_id=triggered_by_id,
            parent_id=parent_id,
            owner=batch.this_runner() if self.request.is_eager else "",
        )
    except ConflictError as exc:
        logger.warning("batch job already running", extra={"job": job, "error": str(exc)})
        return {"job": job, "status": "already_running"}
    chunks = batch.job_chunks(job, run_date, portfolio_ids, done=batch.job_done(row))
    if chunks:  # once, before the chunks run in parallel
        batch.job_prepare(job, run_date)
    if self.request.is_eager:  # no broker (the embedded default): the chunks in this process
        results = [
            batch.chunk_run_with_retries(job, run_date, chunk, job_id=row.pk) for chunk in chunks
        ]
        closed = batch.job_close(row, results, skipped=not calendar.is_trading_day(run_date))
        return {"job": job, "job_id": closed.pk, "status": closed.status}
    if not chunks:
        closed = batch.job_close(row, [], skipped=not calendar.is_trading_day(run_date))
        return {"job": job, "job_id": closed.pk, "status": closed.status}
    return self.replace(job_canvas(row, chunks))


def job_canvas(row: BatchJob, chunks: list[list[int]]) -> chord:
    """The chord of a job: its chunks with the job's soft and hard time limits, then the fold;
    if a chunk never reports (killed at the hard limit), the job is failed, not left running."""
    soft, hard = batch.time_limits(row.name)
    header = group(
        # Celery takes the time limits as options; celery-types' set() does not list them.
        run_chunk.si(row.pk, row.name, row.run_date.isoformat(), chunk).set(  # type: ignore[call-arg]
            soft_time_limit=soft, time_limit=hard
        )
        for chunk in chunks
    )
    return chord(header, finish_job.s(row.pk).on_error(abandon_job.si(row.pk)))


# This worker process's closes of the session it is working on, reused by the chunks of every
# read-only job of that session it runs (bounded; dropped when the session or the closes change).
WORKER_CLOSES = SessionCloses()
# And its distinct option legs' Monte Carlo revaluations (keyed by every input, so never stale;
# bounded by SIGMASIGHT_REVALUATION_MEMO_MB; emptied when the draws change).
WORKER_LEGS = LegDraws()


@shared_task(bind=True, name="analytics.run_chunk")
def run_chunk(self, job_id: int, job: str, date: str, chunk: list[int]) -> dict:
    """One chunk of a job. Claimed in the cache first under this task's id: another task for the
    same chunk (the chord sent twice) skips it, while this task's own redelivery (acks_late after
    its worker was killed, the broker's visibility timeout) or retry has the same id and runs it.
    Provider errors are retried with backoff; everything else is recorded per portfolio. Each
    attempt beats the job's heartbeat; the outcome is recorded for a run that takes over."""
    run_date = _date(date)
    key = f"batch-chunk:{job_id}:{chunk[0]}"
    _, hard = batch.time_limits(job)
    ttl = hard * (settings.SIGMASIGHT_BATCH_RETRIES + 1)
    if not cache.add(key, self.request.id, timeout=ttl) and cache.get(key) != self.request.id:
        return {"counts": {}, "failed": {}, "retry": None, "claimed_elsewhere": True}
    if not batch.job_beat(job_id):  # taken over by a later run (or abandoned): not ours to do
        logger.warning("batch chunk of a closed job", extra={"job": job, "job_id": job_id})
        return {"counts": {}, "failed": {}, "retry": None, "job_closed": True}
    if self.request.is_eager:  # applied in-process: wait out the backoff here
        return batch.chunk_run_with_retries(job, run_date, chunk, job_id=job_id)
    closes = WORKER_CLOSES.current(run_date, everything_generation())
    result = batch.chunk_run(job, run_date, chunk, reads=batch.job_reads(job, closes, WORKER_LEGS))
    if result["retry"] and self.request.retries < settings.SIGMASIGHT_BATCH_RETRIES:
        logger.warning(
            "batch chunk retried",
            extra={"job": job, "portfolios": chunk, "attempt": self.request.retries + 1},
        )
        raise self.retry(
            countdown=batch.backoff(self.request.retries),
            max_retries=settings.SIGMASIGHT_BATCH_RETRIES,
        )
    result["retries"] = self.request.retries
    result["worker"] = self.request.hostname  # who computed it, in the chunk's record
    batch.chunk_record(job_id, chunk, result)
    return result


@shared_task(name="analytics.finish_job")
def finish_job(results: list[dict], job_id: int) -> dict[str, object]:
    row = BatchJob.objects.get(pk=job_id)
    if row.status == BatchJob.Status.RUNNING:  # else taken over meanwhile: its failure stands
        row = batch.job_close(row, results)
    return {"job": row.name, "job_id": row.pk, "status": row.status}


@shared_task(name="analytics.abandon_job")
def abandon_job(job_id: int) -> None:
    batch.job_abandon(job_id, "a chunk did not finish: hard time limit or worker lost")


@shared_task(bind=True, name="analytics.run_day", soft_time_limit=120, time_limit=180)
def run_day(self, date: str | None = None) -> object:
    """Every job of the day in order, each waiting for the previous one's chunks."""
    run_date = _date(date).isoformat()
    if self.request.is_eager:
        return [run_job.apply(args=(name, run_date)).get() for name in batch.daily()]
    return self.replace(chain(*(run_job.si(name, run_date) for name in batch.daily())))


@shared_task(bind=True, name="analytics.run_trigger", soft_time_limit=120, time_limit=180)
def run_trigger(self, umbrella_id: int, portfolio_ids: list[int] | None = None) -> object:
    """A staff-triggered batch (ids and ISO data only: the row is re-read here): claims the
    umbrella row, then chains its jobs (each a chord of chunks) and folds them into it."""
    if not BatchJob.objects.filter(pk=umbrella_id).exists():
        logger.warning("batch trigger gone", extra={"job_id": umbrella_id})
        return {"job_id": umbrella_id, "status": "missing"}
    umbrella = batch.trigger_claim(umbrella_id)
    if umbrella is None:
        return {"job_id": umbrella_id, "status": "already_claimed"}
    run_date = umbrella.run_date.isoformat()
    if self.request.is_eager:  # no broker: the same jobs in this process
        for name in batch.trigger_jobs(umbrella):
            run_job.apply(
                args=(name, run_date, portfolio_ids, umbrella.triggered_by_id, umbrella.pk)
            )
        return finish_trigger(umbrella.pk)
    steps = [
        run_job.si(name, run_date, portfolio_ids, umbrella.triggered_by_id, umbrella.pk)
        for name in batch.trigger_jobs(umbrella)
    ]
    canvas = chain(*steps, finish_trigger.si(umbrella.pk))
    return self.replace(canvas.on_error(finish_trigger.si(umbrella.pk, "a job did not finish")))


@shared_task(name="analytics.finish_trigger")
def finish_trigger(umbrella_id: int, error: str = "") -> dict[str, object]:
    umbrella = batch.trigger_close(umbrella_id, error)
    return {"job_id": umbrella.pk, "status": umbrella.status}


@shared_task(name="analytics.scenario_backtest", soft_time_limit=600, time_limit=900)
def scenario_backtest(days_back: int = 90) -> dict[str, object]:
    """Weekly: predicted vs realized P&L of every portfolio over the last sessions (logged)."""
    as_of = calendar.session_for(None)
    results = {}
    for portfolio in Portfolio.objects.order_by("id"):
        try:
            results[portfolio.pk] = scenario_accuracy(portfolio, as_of, days_back)
        except DomainError as exc:
            results[portfolio.pk] = {"error": exc.message}
    logger.info("scenario backtest", extra={"as_of": as_of.isoformat(), "portfolios": len(results)})
    return {"as_of": as_of.isoformat(), "results": results}
