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
- a running job says who runs it and beats at every chunk: a run whose runner is gone (killed
  process, dead workers) is taken over by the next run, which carries over the chunks the killed
  run finished and computes only the rest;
- every job writes with upserts keyed by session: re-running a day gives the same rows and
  numbers; non-sessions are skipped.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import time
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, Q
from django.utils import timezone

from analytics.jobs import JOBS, daily, job_analyze, time_limit
from analytics.models import BatchJob, BatchJobChunk
from analytics.montecarlo import LegDraws
from analytics.selectors import ReadCache, SessionCloses
from marketdata import calendar
from marketdata.providers.base import is_transient
from portfolios.models import Portfolio
from sigmasight.api.caching import results_changed
from sigmasight.celery import app
from sigmasight.exceptions import ConflictError
from sigmasight.metrics import batch_job_closed
from sigmasight.outbox.services import outbox_send

logger = logging.getLogger("sigmasight.batch")


def portfolio_chunks(
    portfolio_ids: list[int] | None, limit: int, *, exclude: Iterable[int] = ()
) -> list[list[int]]:
    """Portfolios grouped so a chunk holds at most `limit` open positions (a bigger portfolio is
    a chunk of its own), leaving out `exclude`."""
    queryset = Portfolio.objects.order_by("id").exclude(pk__in=list(exclude))
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
    soft = time_limit(name)
    return soft, soft + settings.SIGMASIGHT_BATCH_HARD_GRACE_S


def heartbeat_limit(name: str) -> int:
    """Seconds without a heartbeat after which a job's runner is taken as gone: a chunk attempt
    is killed at the hard limit, a retry waits at most the backoff cap, plus a grace."""
    _, hard = time_limits(name)
    return (
        hard
        + int(settings.SIGMASIGHT_BATCH_RETRY_BACKOFF_MAX_S)
        + settings.SIGMASIGHT_BATCH_HARD_GRACE_S
    )


def this_runner() -> str:
    """The owner of a job run in this process."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _process_alive(pid: int, since: datetime | None) -> bool:
    """Whether `pid` is a live process that started before `since` (a pid reused by a process
    started later is not the runner). Start times come from /proc; where it is not readable
    (not Linux) the pid alone decides, and a reused pid is only caught by the stale-hours rule."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, another user's
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        boot = next(
            int(line.split()[1])
            for line in Path("/proc/stat").read_text().splitlines()
            if line.startswith("btime ")
        )
    except (OSError, StopIteration, ValueError):
        return True
    fields = stat.rsplit(")", 1)[1].split()  # after "pid (comm)": state is field 3
    if fields[0] in {"Z", "X"}:  # a zombie: killed, not yet reaped by its parent
        return False
    started = boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22, clock ticks
    return since is None or started <= since.timestamp() + 1.0  # btime is whole seconds


def runner_gone(job: BatchJob, *, now: datetime | None = None) -> str | None:
    """Why a running job's runner is gone, or None while it may still be running. A runner on
    this host is gone when its pid is; a live one only when it has not beaten for
    SIGMASIGHT_BATCH_STALE_HOURS (hung). Other runners (workers, other hosts) are gone when
    they have not beaten for heartbeat_limit()."""
    now = now or timezone.now()
    beat = job.heartbeat_at or job.started_at or job.created_at or now
    host, _, pid = job.owner.rpartition(":")
    limit = timedelta(seconds=heartbeat_limit(job.name))
    if host == socket.gethostname() and pid.isdigit():
        if not _process_alive(int(pid), job.started_at):
            return f"runner {job.owner} is gone (pid not alive)"
        limit = timedelta(hours=settings.SIGMASIGHT_BATCH_STALE_HOURS)
    if now - beat > limit:
        since = beat.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
        return f"runner {job.owner or 'workers'} is gone (no heartbeat since {since} UTC)"
    return None


def backoff(attempt: int, *, rng: random.Random | None = None) -> float:
    """Seconds before retry `attempt` (0-based): full jitter over an exponential cap."""
    cap = min(
        settings.SIGMASIGHT_BATCH_RETRY_BACKOFF_MAX_S,
        settings.SIGMASIGHT_BATCH_RETRY_BACKOFF_S * 2**attempt,
    )
    return (rng or random).uniform(0.0, cap)


def job_open(
    name: str,
    run_date: date,
    *,
    triggered_by_id: int | None = None,
    parent_id: int | None = None,
    owner: str = "",
) -> BatchJob:
    """The running row of a job for a session: the claim. Refused (ConflictError) while another
    run of the same job and session is queued or running, unless its runner is gone
    (runner_gone): that run is marked failed and this one resumes it, carrying over the chunks
    it finished (counts resumed_from and portfolios_already_done)."""
    if name not in JOBS:
        raise ValueError(f"Unknown job {name!r}; jobs: {', '.join(daily())}.")
    abandoned = None
    for running in BatchJob.objects.filter(
        name=name, run_date=run_date, status=BatchJob.Status.RUNNING
    ).order_by("id"):
        why = runner_gone(running)
        if why and BatchJob.objects.filter(pk=running.pk, status=BatchJob.Status.RUNNING).update(
            status=BatchJob.Status.FAILED, finished_at=timezone.now(), error=f"abandoned: {why}"
        ):
            logger.warning(
                "batch job taken over", extra={"job": name, "job_id": running.pk, "why": why}
            )
            abandoned = running
    now = timezone.now()
    try:
        with transaction.atomic():
            job = BatchJob.objects.create(
                name=name,
                run_date=run_date,
                status=BatchJob.Status.RUNNING,
                started_at=now,
                heartbeat_at=now,
                owner=owner,
                triggered_by_id=triggered_by_id,
                parent_id=parent_id,
            )
            if abandoned is not None:
                _job_resume(job, abandoned)
    except IntegrityError as exc:
        raise ConflictError(
            f"{name} for {run_date} is already queued or running.", code="batch_running"
        ) from exc
    return job


def _job_resume(job: BatchJob, abandoned: BatchJob) -> None:
    """Carry the chunks an abandoned run finished into `job` (so a run killed in turn can be
    resumed again): their portfolios are skipped, their counts and failures folded at close."""
    finished = list(abandoned.chunk_records.all())
    BatchJobChunk.objects.bulk_create(
        BatchJobChunk(
            job=job,
            first_portfolio_id=c.first_portfolio_id,
            portfolio_ids=c.portfolio_ids,
            result=c.result,
            carried=True,
        )
        for c in finished
    )
    job.counts = {
        "resumed_from": abandoned.pk,
        "portfolios_already_done": sum(len(c.portfolio_ids) for c in finished),
    }
    job.save(update_fields=["counts"])


def job_beat(job_id: int) -> bool:
    """A chunk started or finished: its runner is alive. False once the job is not running."""
    return bool(
        BatchJob.objects.filter(pk=job_id, status=BatchJob.Status.RUNNING).update(
            heartbeat_at=timezone.now()
        )
    )


def chunk_record(job_id: int, chunk: list[int], result: dict) -> None:
    """A chunk finished (its results are committed): recorded so a run taking over a killed one
    skips it. A kill between the commit and this write only means the chunk is computed again
    (upserts: same rows)."""
    BatchJobChunk.objects.update_or_create(
        job_id=job_id,
        first_portfolio_id=chunk[0],
        defaults={"portfolio_ids": chunk, "result": result},
    )
    job_beat(job_id)


def job_done(job: BatchJob) -> set[int]:
    """Portfolios whose chunk of this job already finished (carried over from a killed run)."""
    return {pk for ids in job.chunk_records.values_list("portfolio_ids", flat=True) for pk in ids}


def job_chunks(
    name: str, run_date: date, portfolio_ids: list[int] | None, *, done: Iterable[int] = ()
) -> list[list[int]]:
    """The chunks a job runs for a session, without the portfolios already `done`: none on a
    non-session."""
    if not calendar.is_trading_day(run_date):
        return []
    return portfolio_chunks(portfolio_ids, settings.SIGMASIGHT_BATCH_CHUNK_POSITIONS, exclude=done)


def job_prepare(name: str, run_date: date) -> None:
    """The job's once-per-run step before its chunks (Job.prepare), committed before any chunk
    starts. A failure is logged, not raised: the chunks compute what they miss themselves."""
    prepare = JOBS[name].prepare
    if prepare is None:
        return
    try:
        with transaction.atomic():
            prepare(run_date)
    except Exception:
        logger.exception("batch job prepare failed", extra={"job": name})


def job_reads(
    name: str, closes: SessionCloses | None = None, legs: LegDraws | None = None
) -> ReadCache | None:
    """A read cache for a job's chunks, or None for a job that writes what it reads. `closes`
    and `legs`: a worker process's closes of the session and its option legs' Monte Carlo
    revaluations, kept across its chunks (analytics.tasks)."""
    return None if JOBS[name].writes_inputs else ReadCache(closes, legs)


def chunk_run(
    name: str, run_date: date, chunk: list[int], *, reads: ReadCache | None = None
) -> dict:
    """One attempt at a chunk: {"counts", "failed" (portfolio id -> why), "retry" (why a retry
    may help, or None), "seconds"}. JSON-safe: a Celery task's result. `reads`: the job's read
    cache when chunks share one (one process running them all); else the chunk's own."""
    counts: dict[str, int] = {}
    failed: dict[str, str] = {}
    warnings: dict[str, list[str]] = {}
    reads = reads if reads is not None else job_reads(name)
    start = time.perf_counter()
    retry = _run_chunk(name, run_date, chunk, counts, failed, warnings, reads)
    out = {"counts": counts, "failed": failed, "warnings": warnings, "retry": retry}
    out["seconds"] = round(time.perf_counter() - start, 3)  # in its record: where time went
    return out


def chunk_run_with_retries(
    name: str,
    run_date: date,
    chunk: list[int],
    *,
    sleep: Callable[[float], None] | None = None,
    job_id: int | None = None,
    reads: ReadCache | None = None,
) -> dict:
    """A chunk in-process: provider errors retried after a backoff, up to
    SIGMASIGHT_BATCH_RETRIES times; the last attempt's outcome stands. With `job_id`, every
    attempt beats the job's heartbeat and the outcome is recorded (chunk_record)."""
    attempt = 0
    while True:
        if job_id is not None:
            job_beat(job_id)
        result = chunk_run(name, run_date, chunk, reads=reads)
        if not result["retry"] or attempt >= settings.SIGMASIGHT_BATCH_RETRIES:
            result["retries"] = attempt
            if job_id is not None:
                chunk_record(job_id, chunk, result)
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
    warnings: dict[str, list[str]] = {}
    if "resumed_from" in job.counts:  # what the killed run finished counts too
        counts.update({k: job.counts[k] for k in ("resumed_from", "portfolios_already_done")})
        results = [*(c.result for c in job.chunk_records.filter(carried=True)), *results]
    for result in results:
        failed.update(result.get("failed", {}))
        for pk, reasons in result.get("warnings", {}).items():
            warnings.setdefault(pk, []).extend(reasons)
        for key, value in result.get("counts", {}).items():
            counts[key] = counts.get(key, 0) + int(value)
        if result.get("retries"):
            counts["retries"] = counts.get("retries", 0) + int(result["retries"])
        if result.get("claimed_elsewhere"):
            counts["chunks_claimed_elsewhere"] = counts.get("chunks_claimed_elsewhere", 0) + 1
    if not failed:
        job.status = BatchJob.Status.SUCCEEDED
    elif not counts.get("portfolios_ok"):
        job.status = BatchJob.Status.FAILED
    else:
        job.status = BatchJob.Status.PARTIAL
    job.counts, job.failed_portfolios = counts, failed
    if not skipped and job.status != BatchJob.Status.FAILED:
        job_analyze(job.name)
    job.warnings = {pk: reasons[:20] for pk, reasons in warnings.items()}
    if warnings:
        counts["portfolios_with_warnings"] = len(warnings)
    job.error = "; ".join(f"portfolio {k}: {v}" for k, v in list(failed.items())[:20])
    job.finished_at = timezone.now()
    job.duration_s = (job.finished_at - job.started_at).total_seconds() if job.started_at else None
    job.save()
    batch_job_closed(
        job=job.name, status=job.status, duration_s=job.duration_s, portfolios_failed=len(failed)
    )
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
    name: str,
    run_date: date,
    *,
    portfolio_ids: list[int] | None = None,
    triggered_by=None,
    on_chunk: Callable[[int], None] | None = None,
    parent_id: int | None = None,
    reads: ReadCache | None = None,
) -> BatchJob:
    """A job in this process, chunk after chunk (manage.py run_batch, eager Celery, benchmarks).
    Workers run the same chunks in parallel through analytics.tasks.run_job. `reads`: a read
    cache to share with other jobs (`run_daily_batch`); by default the job's own, if any."""
    job = job_open(
        name,
        run_date,
        triggered_by_id=getattr(triggered_by, "pk", None),
        parent_id=parent_id,
        owner=this_runner(),
    )
    done = job_done(job)
    chunks = job_chunks(name, run_date, portfolio_ids, done=done)
    if chunks:
        job_prepare(name, run_date)
    if on_chunk and done:  # carried from the run this one took over: already done
        on_chunk(len(done))
    results = []
    if reads is None or JOBS[name].writes_inputs:  # its chunks share the job's own reads
        reads = job_reads(name)
    for chunk in chunks:
        results.append(chunk_run_with_retries(name, run_date, chunk, job_id=job.pk, reads=reads))
        if on_chunk:
            on_chunk(len(chunk))
    return job_close(job, results, skipped=not calendar.is_trading_day(run_date))


def _run_chunk(
    name: str,
    run_date: date,
    chunk: list[int],
    counts: dict,
    failed: dict,
    warnings: dict,
    reads: ReadCache | None,
) -> str | None:
    """Run a chunk; a job may report some portfolios failed (e.g. no price) and still compute the
    rest. An exception in the chunk is retried portfolio by portfolio to find who raised, except
    a provider error (the whole chunk may be asked again later: returns why) and the soft time
    limit (the chunk fails as a whole: splitting it would only take longer)."""
    try:
        with transaction.atomic():
            result = dict(JOBS[name].run(run_date, chunk, reads))
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
            retry = _run_chunk(name, run_date, [pk], counts, failed, warnings, reads) or retry
        return retry
    results_changed(chunk)  # its transaction committed: cached reads of these are stale
    retry = result.pop("retry_reason", None)
    reported = {str(k): v for k, v in result.pop("failed_portfolios", {}).items()}
    failed.update(reported)
    for pk, reasons in result.pop("warnings", {}).items():
        warnings.setdefault(str(pk), []).extend(reasons)
    counts["portfolios_ok"] = counts.get("portfolios_ok", 0) + len(chunk) - len(reported)
    for key, value in result.items():
        counts[key] = counts.get(key, 0) + int(value)
    return retry


def run_daily_batch(
    run_date: date | None = None,
    *,
    jobs: Iterable[str] | None = None,
    portfolio_ids: list[int] | None = None,
    triggered_by=None,
    on_chunk: Callable[[int], None] | None = None,
) -> list[BatchJob]:
    """The jobs of a trading day in order, in this process (default: every job, for the last
    NYSE session). Workers chain the same jobs with analytics.tasks.run_day.

    The jobs after the last one that writes their inputs (prices, positions, Greeks) share one
    read cache (`evening_reads`): each chunk's valued book and each closes series is read once
    for all of them, and they value the same book."""
    run_date = run_date or calendar.last_completed_session()
    names = [n for n in daily() if jobs is None or n in set(jobs)]
    return [
        job_run(
            n,
            run_date,
            portfolio_ids=portfolio_ids,
            triggered_by=triggered_by,
            on_chunk=on_chunk,
            reads=reads,
        )
        for n, reads in zip(names, evening_reads(names), strict=True)
    ]


def evening_reads(names: list[str]) -> list[ReadCache | None]:
    """Each job's read cache in an evening run in one process: None for a job that writes its
    inputs (it reads fresh); one cache shared by the read-only jobs between two such jobs, so
    what they read was written before all of them."""
    caches: list[ReadCache | None] = []
    shared: ReadCache | None = None
    for name in names:
        if JOBS[name].writes_inputs:
            shared = None
            caches.append(None)
        else:
            shared = shared or ReadCache()
            caches.append(shared)
    return caches


def trigger_queue(
    *, trigger: str, run_date: date, portfolio_ids: list[int] | None, user
) -> BatchJob:
    """A queued umbrella job for a staff trigger; the task (analytics.tasks.run_trigger, named:
    the tasks module imports this one) runs its jobs after commit."""

    try:
        with transaction.atomic():
            umbrella = BatchJob.objects.create(
                name=f"trigger:{trigger}", run_date=run_date, triggered_by=user
            )
            outbox_send(
                app.signature("analytics.run_trigger", args=(umbrella.pk, portfolio_ids))
            )  # atomic with the umbrella
    except IntegrityError as exc:
        raise ConflictError(
            f"{trigger} for {run_date} is already queued or running.", code="batch_running"
        ) from exc
    return umbrella


def trigger_claim(umbrella_id: int) -> BatchJob | None:
    """Claim a queued umbrella (a conditional update: only one worker gets it)."""
    claimed = BatchJob.objects.filter(pk=umbrella_id, status=BatchJob.Status.QUEUED).update(
        status=BatchJob.Status.RUNNING, started_at=timezone.now()
    )
    return BatchJob.objects.get(pk=umbrella_id) if claimed else None


def trigger_jobs(umbrella: BatchJob) -> list[str]:
    """The jobs a staff trigger runs, in the day's order (each job declares its trigger)."""
    trigger = umbrella.name.removeprefix("trigger:")
    return [n for n in daily() if trigger == "all" or JOBS[n].trigger == trigger]


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
    if (error and not runs) or statuses == {BatchJob.Status.FAILED}:
        umbrella.status = BatchJob.Status.FAILED
    elif error or statuses - {BatchJob.Status.SUCCEEDED}:
        umbrella.status = BatchJob.Status.PARTIAL
    else:
        umbrella.status = BatchJob.Status.SUCCEEDED
    umbrella.counts = {"jobs": {r.name: {"id": r.pk, "status": r.status} for r in runs}}
    umbrella.failed_portfolios = {k: v for r in runs for k, v in r.failed_portfolios.items()}
    umbrella.warnings = {}
    for run in runs:
        for pk, reasons in run.warnings.items():
            umbrella.warnings.setdefault(pk, []).extend(f"{run.name}: {why}" for why in reasons)
    umbrella.finished_at = timezone.now()
    assert umbrella.started_at is not None  # set when the umbrella was claimed
    umbrella.duration_s = (umbrella.finished_at - umbrella.started_at).total_seconds()
    umbrella.save()
    batch_job_closed(
        job=umbrella.name,
        status=umbrella.status,
        duration_s=umbrella.duration_s,
        portfolios_failed=len(umbrella.failed_portfolios),
    )
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
