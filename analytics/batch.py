"""The daily batch: each job of DESIGN.md's table for one session, over the book in chunks of
portfolios (at most SIGMASIGHT_BATCH_CHUNK_POSITIONS positions), with a BatchJob row per run.

On workers (analytics.tasks) a job is a chord: its chunks run in parallel, each under the job's
soft and hard time limits, and `job_close` folds their results; jobs are chained in the day's
order. In one process (manage.py run_batch, eager Celery, benchmarks) `job_run` runs the same
chunks one after another. Either way:
- a chunk that raises is retried portfolio by portfolio, so one bad portfolio never stops the
  others: the job ends `partial` and lists the failed portfolios and why;
- provider errors (timeouts, rate limits, 5xx: never bad data) are retried with exponential
  backoff and full jitter, up to SIGMASIGHT_BATCH_RETRIES; nothing else is retried;
- the job row is the claim: a second run of a job for a session is refused while one is queued
  or running (a database constraint), and each chunk is claimed in the cache so a redelivered
  task never computes it twice;
- every job writes with upserts keyed by session: re-running a day gives the same rows and
  numbers; non-sessions are skipped.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterable
from contextlib import nullcontext
from datetime import date, timedelta

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, Q
from django.utils import timezone

from analytics.models import BatchJob
from analytics.services import read_memo
from marketdata import calendar
from marketdata.providers.base import is_transient
from sigmasight.exceptions import ConflictError

logger = logging.getLogger("sigmasight.batch")


def _market_data(as_of: date, portfolio_ids: list[int]) -> dict:
    from analytics.models import FactorDefinition
    from analytics.services import positions_value
    from marketdata.providers.base import RATE_10Y, RATE_SHORT
    from marketdata.services import prices_fetch_and_cache, sectors_fetch_and_cache
    from marketdata.symbols import looks_like_occ
    from portfolios.models import Position

    held = Position.objects.filter(portfolio_id__in=portfolio_ids, closed_at__isnull=True)
    symbols = set(held.values_list("symbol", flat=True)) | set(
        held.values_list("underlying_symbol", flat=True)
    )
    proxies = set(
        FactorDefinition.objects.filter(is_active=True)
        .exclude(etf_proxy="")
        .values_list("etf_proxy", flat=True)
    )
    start = calendar.sessions_back(as_of, settings.SIGMASIGHT_FACTOR_WINDOW + 5)[0]
    report = prices_fetch_and_cache(
        symbols=sorted(symbols | proxies | {RATE_10Y, RATE_SHORT}), start=start, end=as_of
    )
    sectors_fetch_and_cache(symbols=sorted(s for s in symbols if not looks_like_occ(s)))
    valued = positions_value(as_of=as_of, portfolio_ids=portfolio_ids)
    # A symbol no provider could price for the session: its portfolios are valued from the cache
    # (stale) and reported failed, so the job ends partial while the rest is computed.
    missing = set(report.missing) & symbols
    failed: dict[int, str] = {}
    for portfolio_id, symbol, underlying in held.filter(
        Q(symbol__in=missing) | Q(underlying_symbol__in=missing)
    ).values_list("portfolio_id", "symbol", "underlying_symbol"):
        gone = symbol if symbol in missing else underlying
        failed[portfolio_id] = (
            f"no price for {gone} from any provider; valued from the cache (stale)"
        )
    result = {"rows_written": report.rows_written, "positions_valued": valued.written,
              "missing_prices": len(valued.missing_prices), "failed_portfolios": failed}  # fmt: skip
    if failed and report.transient:
        # Prices are missing because providers struggled (not because the data is bad): worth
        # asking again later. What was fetched is kept; a retry only asks for what is missing.
        result["retry_reason"] = "; ".join(report.transient.values())[:500]
    return result


def _greeks(as_of: date, portfolio_ids: list[int]) -> dict:
    from analytics.services import greeks_compute

    report = greeks_compute(as_of=as_of, portfolio_ids=portfolio_ids)
    return {"options": report.written, **{f"source_{k}": v for k, v in report.sources.items()}}


def _factors(as_of: date, portfolio_ids: list[int]) -> dict:
    from analytics.risk_services import factors_compute, ir_betas_compute

    report = factors_compute(as_of=as_of, portfolio_ids=portfolio_ids)
    ir_betas_compute(as_of=as_of, portfolio_ids=portfolio_ids)
    return {
        "positions_with_beta": report.with_beta,
        "positions_without_beta": len(report.without_beta),
    }


def _market_risk(as_of: date, portfolio_ids: list[int]) -> dict:
    from analytics.risk_services import risk_metrics_compute, scenarios_compute

    return {"scenario_rows": scenarios_compute(as_of=as_of, portfolio_ids=portfolio_ids),
            "metric_rows": risk_metrics_compute(as_of=as_of, portfolio_ids=portfolio_ids)}  # fmt: skip


def _snapshots(as_of: date, portfolio_ids: list[int]) -> dict:
    from analytics.snapshots import snapshots_take

    return {"snapshots": snapshots_take(as_of=as_of, portfolio_ids=portfolio_ids)}


def _stress(as_of: date, portfolio_ids: list[int]) -> dict:
    from stress.services import stress_run

    return {"results": len(stress_run(as_of=as_of, portfolio_ids=portfolio_ids))}


JOBS: dict[str, Callable[[date, list[int]], dict]] = {
    "market_data": _market_data,
    "greeks": _greeks,
    "factors": _factors,
    "market_risk": _market_risk,
    "snapshots": _snapshots,
    "stress": _stress,
}
# The order of a trading day (DESIGN.md): each job needs the ones before it.
DAILY = list(JOBS)
# Jobs that write what they (or their own later steps) read: no shared reads within a chunk.
WRITES_INPUTS = {"market_data", "greeks"}


def portfolio_chunks(portfolio_ids: list[int] | None, limit: int) -> list[list[int]]:
    """Portfolios grouped so a chunk holds at most `limit` open positions (a bigger portfolio is
    a chunk of its own)."""
    from portfolios.models import Portfolio

    queryset = Portfolio.objects.order_by("id")
    if portfolio_ids is not None:
        queryset = queryset.filter(pk__in=portfolio_ids)
    sizes = queryset.annotate(
        n=Count("positions", filter=Q(positions__closed_at__isnull=True))
    ).values_list("id", "n")
    chunks: list[list[int]] = []
    current: list[int] = []
    used = 0
    for pk, n in sizes:
        if current and used + n > limit:
            chunks.append(current)
            current, used = [], 0
        current.append(pk)
        used += n
    if current:
        chunks.append(current)
    return chunks


def time_limits(name: str) -> tuple[int, int]:
    """(soft, hard) seconds for one chunk of a job."""
    soft = settings.SIGMASIGHT_BATCH_TIME_LIMITS[name]
    return soft, soft + settings.SIGMASIGHT_BATCH_HARD_GRACE_S


def backoff(attempt: int, *, rng: random.Random | None = None) -> float:
    """Seconds before retry `attempt` (0-based): full jitter over an exponential cap."""
    cap = min(
        settings.SIGMASIGHT_BATCH_RETRY_BACKOFF_MAX_S,
        settings.SIGMASIGHT_BATCH_RETRY_BACKOFF_S * 2**attempt,
    )
    return (rng or random).uniform(0.0, cap)


def job_open(
    name: str, run_date: date, *, triggered_by_id: int | None = None, parent_id: int | None = None
) -> BatchJob:
    """The running row of a job for a session: the claim. Refused (ConflictError) while another
    run of the same job and session is queued or running; a run left `running` for longer than
    SIGMASIGHT_BATCH_STALE_HOURS (its worker died) is marked failed first."""
    if name not in JOBS:
        raise ValueError(f"Unknown job {name!r}; jobs: {', '.join(DAILY)}.")
    stale = timezone.now() - timedelta(hours=settings.SIGMASIGHT_BATCH_STALE_HOURS)
    BatchJob.objects.filter(
        name=name, run_date=run_date, status=BatchJob.Status.RUNNING, started_at__lt=stale
    ).update(
        status=BatchJob.Status.FAILED, finished_at=timezone.now(),
        error="abandoned: still running after the stale limit (worker lost)",
    )  # fmt: skip
    try:
        with transaction.atomic():
            return BatchJob.objects.create(
                name=name, run_date=run_date, status=BatchJob.Status.RUNNING,
                started_at=timezone.now(), triggered_by_id=triggered_by_id, parent_id=parent_id,
            )  # fmt: skip
    except IntegrityError as exc:
        raise ConflictError(
            f"{name} for {run_date} is already queued or running.", code="batch_running"
        ) from exc


def job_chunks(name: str, run_date: date, portfolio_ids: list[int] | None) -> list[list[int]]:
    """The chunks a job runs for a session: none on a non-session."""
    if not calendar.is_trading_day(run_date):
        return []
    return portfolio_chunks(portfolio_ids, settings.SIGMASIGHT_BATCH_CHUNK_POSITIONS)


def chunk_run(name: str, run_date: date, chunk: list[int]) -> dict:
    """One attempt at a chunk: {"counts", "failed" (portfolio id -> why), "retry" (why a retry
    may help, or None)}. JSON-safe: it is a Celery task's result."""
    counts: dict[str, int] = {}
    failed: dict[str, str] = {}
    retry = _run_chunk(name, run_date, chunk, counts, failed)
    return {"counts": counts, "failed": failed, "retry": retry}


def chunk_run_with_retries(
    name: str, run_date: date, chunk: list[int], *, sleep: Callable[[float], None] | None = None
) -> dict:
    """A chunk in-process: provider errors retried after a backoff, up to
    SIGMASIGHT_BATCH_RETRIES times; the last attempt's outcome stands."""
    attempt = 0
    while True:
        result = chunk_run(name, run_date, chunk)
        if not result["retry"] or attempt >= settings.SIGMASIGHT_BATCH_RETRIES:
            result["retries"] = attempt
            return result
        logger.warning(
            "batch chunk retried",
            extra={
                "job": name,
                "portfolios": chunk,
                "attempt": attempt + 1,
                "why": result["retry"],
            },
        )
        (sleep or time.sleep)(backoff(attempt))
        attempt += 1


def job_close(job: BatchJob, results: list[dict], *, skipped: bool = False) -> BatchJob:
    """Fold the chunks' results into the job row: succeeded, partial (some portfolios failed,
    listed with why) or failed (none computed)."""
    counts: dict[str, int] = {"skipped_non_session": 1} if skipped else {}
    failed: dict[str, str] = {}
    for result in results:
        failed.update(result.get("failed", {}))
        for key, value in result.get("counts", {}).items():
            counts[key] = counts.get(key, 0) + int(value)
        if result.get("retries"):
            counts["retries"] = counts.get("retries", 0) + int(result["retries"])
        if result.get("claimed_elsewhere"):
            counts["chunks_claimed_elsewhere"] = counts.get("chunks_claimed_elsewhere", 0) + 1
    job.status = (
        BatchJob.Status.SUCCEEDED if not failed
        else BatchJob.Status.FAILED if not counts.get("portfolios_ok")
        else BatchJob.Status.PARTIAL
    )  # fmt: skip
    job.counts, job.failed_portfolios = counts, failed
    job.error = "; ".join(f"portfolio {k}: {v}" for k, v in list(failed.items())[:20])
    job.finished_at = timezone.now()
    job.duration_s = (job.finished_at - job.started_at).total_seconds() if job.started_at else None
    job.save()
    logger.info(
        "batch job finished",
        extra={"job": job.name, "run_date": job.run_date.isoformat(), "status": job.status},
    )
    return job


def job_abandon(job_id: int, why: str) -> None:
    """A chunk never reported (killed at its hard time limit, or its worker lost): the job fails
    with the reason instead of staying `running` and blocking the session."""
    BatchJob.objects.filter(pk=job_id, status=BatchJob.Status.RUNNING).update(
        status=BatchJob.Status.FAILED, finished_at=timezone.now(), error=why[:1000]
    )


def job_run(
    name: str, run_date: date, *, portfolio_ids: list[int] | None = None, triggered_by=None,
    on_chunk: Callable[[int], None] | None = None, parent_id: int | None = None,
) -> BatchJob:  # fmt: skip
    """A job in this process, chunk after chunk (manage.py run_batch, eager Celery, benchmarks).
    Workers run the same chunks in parallel through analytics.tasks.run_job."""
    job = job_open(
        name, run_date, triggered_by_id=getattr(triggered_by, "pk", None), parent_id=parent_id
    )
    chunks = job_chunks(name, run_date, portfolio_ids)
    results = []
    # One process runs every chunk: a read-only job reads each closes series once for all.
    with nullcontext() if name in WRITES_INPUTS else read_memo():
        for chunk in chunks:
            results.append(chunk_run_with_retries(name, run_date, chunk))
            if on_chunk:
                on_chunk(len(chunk))
    return job_close(job, results, skipped=not calendar.is_trading_day(run_date))


def _run_chunk(
    name: str, run_date: date, chunk: list[int], counts: dict, failed: dict
) -> str | None:
    """Run a chunk; a job may report some portfolios failed (e.g. no price) and still compute the
    rest. An exception in the chunk is retried portfolio by portfolio to find who raised, except
    a provider error (the whole chunk may be asked again later: returns why) and the soft time
    limit (the chunk fails as a whole: splitting it would only take longer)."""
    try:
        with transaction.atomic(), nullcontext() if name in WRITES_INPUTS else read_memo():
            result = dict(JOBS[name](run_date, chunk))
    except SoftTimeLimitExceeded:
        soft, _ = time_limits(name)
        for pk in chunk:
            failed[str(pk)] = f"time limit: the chunk did not finish within {soft} s"
        logger.error("batch chunk over its time limit", extra={"job": name, "portfolios": chunk})
        return None
    except Exception as exc:
        if is_transient(exc):
            why = f"{type(exc).__name__}: {exc}"[:500]
            for pk in chunk:
                failed[str(pk)] = why
            return why
        if len(chunk) == 1:
            failed[str(chunk[0])] = f"{type(exc).__name__}: {exc}"[:500]
            logger.exception(
                "batch portfolio failed", extra={"job": name, "portfolio_id": chunk[0]}
            )
            return None
        retry = None
        for pk in chunk:
            retry = _run_chunk(name, run_date, [pk], counts, failed) or retry
        return retry
    retry = result.pop("retry_reason", None)
    reported = {str(k): v for k, v in result.pop("failed_portfolios", {}).items()}
    failed.update(reported)
    counts["portfolios_ok"] = counts.get("portfolios_ok", 0) + len(chunk) - len(reported)
    for key, value in result.items():
        counts[key] = counts.get(key, 0) + int(value)
    return retry


def run_daily_batch(
    run_date: date | None = None, *, jobs: Iterable[str] | None = None, portfolio_ids: list[int] | None = None,
    triggered_by=None, on_chunk: Callable[[int], None] | None = None,
) -> list[BatchJob]:  # fmt: skip
    """The jobs of a trading day in order, in this process (default: every job, for the last
    NYSE session). Workers chain the same jobs with analytics.tasks.run_day."""
    run_date = run_date or calendar.last_completed_session()
    names = [n for n in DAILY if jobs is None or n in set(jobs)]
    return [
        job_run(
            n, run_date, portfolio_ids=portfolio_ids, triggered_by=triggered_by, on_chunk=on_chunk
        )
        for n in names
    ]


TRIGGERS = {
    "market-data": ["market_data"],
    "risk-metrics": ["greeks", "factors", "market_risk"],
    "snapshots": ["snapshots"],
    "stress": ["stress"],
    "all": None,
}


def trigger_queue(
    *, trigger: str, run_date: date, portfolio_ids: list[int] | None, user
) -> BatchJob:
    """A queued umbrella job for a staff trigger; the task runs its jobs after commit."""
    from analytics.tasks import run_trigger

    try:
        with transaction.atomic():
            umbrella = BatchJob.objects.create(
                name=f"trigger:{trigger}", run_date=run_date, triggered_by=user
            )
    except IntegrityError as exc:
        raise ConflictError(
            f"{trigger} for {run_date} is already queued or running.", code="batch_running"
        ) from exc
    transaction.on_commit(lambda: run_trigger.delay(umbrella.pk, portfolio_ids))
    return umbrella


def trigger_claim(umbrella_id: int) -> BatchJob | None:
    """Claim a queued umbrella (a conditional update: only one worker gets it)."""
    claimed = BatchJob.objects.filter(pk=umbrella_id, status=BatchJob.Status.QUEUED).update(
        status=BatchJob.Status.RUNNING, started_at=timezone.now()
    )
    return BatchJob.objects.get(pk=umbrella_id) if claimed else None


def trigger_jobs(umbrella: BatchJob) -> list[str]:
    names = TRIGGERS[umbrella.name.removeprefix("trigger:")]
    return [n for n in DAILY if names is None or n in names]


def trigger_close(umbrella_id: int, error: str = "") -> BatchJob:
    """Fold the jobs run under a trigger into its umbrella row (once)."""
    umbrella = BatchJob.objects.get(pk=umbrella_id)
    if umbrella.status != BatchJob.Status.RUNNING:
        return umbrella
    runs = list(umbrella.children.order_by("id"))
    expected = trigger_jobs(umbrella)
    statuses = {r.status for r in runs}
    missing = [n for n in expected if n not in {r.name for r in runs}]
    if missing and not error:
        error = f"jobs not run: {', '.join(missing)}"
    umbrella.error = error[:1000]
    umbrella.status = (
        BatchJob.Status.FAILED if (error and not runs) or statuses == {BatchJob.Status.FAILED}
        else BatchJob.Status.PARTIAL if error or statuses - {BatchJob.Status.SUCCEEDED}
        else BatchJob.Status.SUCCEEDED
    )  # fmt: skip
    umbrella.counts = {"jobs": {r.name: {"id": r.pk, "status": r.status} for r in runs}}
    umbrella.failed_portfolios = {k: v for r in runs for k, v in r.failed_portfolios.items()}
    umbrella.finished_at = timezone.now()
    umbrella.duration_s = (umbrella.finished_at - umbrella.started_at).total_seconds()
    umbrella.save()
    return umbrella


def last_finished() -> dict | None:
    job = BatchJob.objects.filter(finished_at__isnull=False).order_by("-finished_at").first()
    if job is None:
        return None
    return {
        "name": job.name,
        "status": job.status,
        "finished_at": job.finished_at,
        "run_date": job.run_date,
    }
