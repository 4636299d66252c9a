"""The daily batch: each job of DESIGN.md's table for one session, over the book in chunks of
portfolios (at most SIGMASIGHT_BATCH_CHUNK_POSITIONS positions), with a BatchJob row per run.

A chunk that fails is retried portfolio by portfolio, so one bad portfolio never stops the
others: the job ends `partial` and lists the failed portfolios and why. Every job writes with
upserts keyed by session, so re-running a day gives the same rows and numbers. A job that is
already queued or running for the session is refused (a database constraint), so two workers
never compute the same session twice. Non-sessions are skipped.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from datetime import date

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, Q
from django.utils import timezone

from analytics.models import BatchJob
from marketdata import calendar
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
    return {"rows_written": report.rows_written, "positions_valued": valued.written,
            "missing_prices": len(valued.missing_prices), "failed_portfolios": failed}  # fmt: skip


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


def job_run(
    name: str, run_date: date, *, portfolio_ids: list[int] | None = None, triggered_by=None,
    on_chunk: Callable[[int], None] | None = None,
) -> BatchJob:  # fmt: skip
    if name not in JOBS:
        raise ValueError(f"Unknown job {name!r}; jobs: {', '.join(DAILY)}.")
    try:
        with transaction.atomic():
            job = BatchJob.objects.create(
                name=name, run_date=run_date, status=BatchJob.Status.RUNNING, started_at=timezone.now(),
                triggered_by=triggered_by,
            )  # fmt: skip
    except IntegrityError as exc:
        raise ConflictError(
            f"{name} for {run_date} is already queued or running.", code="batch_running"
        ) from exc
    started = time.perf_counter()
    counts: dict[str, int] = {}
    failed: dict[str, str] = {}
    if not calendar.is_trading_day(run_date):
        counts["skipped_non_session"] = 1
    else:
        for chunk in portfolio_chunks(portfolio_ids, settings.SIGMASIGHT_BATCH_CHUNK_POSITIONS):
            _run_chunk(name, run_date, chunk, counts, failed)
            if on_chunk:
                on_chunk(len(chunk))
    job.status = (
        BatchJob.Status.SUCCEEDED if not failed
        else BatchJob.Status.FAILED if not counts.get("portfolios_ok")
        else BatchJob.Status.PARTIAL
    )  # fmt: skip
    job.counts, job.failed_portfolios = counts, failed
    job.error = "; ".join(f"portfolio {k}: {v}" for k, v in list(failed.items())[:20])
    job.finished_at = timezone.now()
    job.duration_s = time.perf_counter() - started
    job.save()
    logger.info(
        "batch job finished",
        extra={"job": name, "run_date": run_date.isoformat(), "status": job.status},
    )
    return job


def _run_chunk(name: str, run_date: date, chunk: list[int], counts: dict, failed: dict) -> None:
    """Run a chunk; a job may report some portfolios failed (e.g. no price) and still compute the
    rest. An exception in the chunk is retried portfolio by portfolio to find who raised."""
    try:
        with transaction.atomic():
            result = dict(JOBS[name](run_date, chunk))
    except Exception as exc:
        if len(chunk) == 1:
            failed[str(chunk[0])] = f"{type(exc).__name__}: {exc}"[:500]
            logger.exception(
                "batch portfolio failed", extra={"job": name, "portfolio_id": chunk[0]}
            )
            return
        for pk in chunk:
            _run_chunk(name, run_date, [pk], counts, failed)
        return
    reported = {str(k): v for k, v in result.pop("failed_portfolios", {}).items()}
    failed.update(reported)
    counts["portfolios_ok"] = counts.get("portfolios_ok", 0) + len(chunk) - len(reported)
    for key, value in result.items():
        counts[key] = counts.get(key, 0) + int(value)


def run_daily_batch(
    run_date: date | None = None, *, jobs: Iterable[str] | None = None, portfolio_ids: list[int] | None = None,
    triggered_by=None, on_chunk: Callable[[int], None] | None = None,
) -> list[BatchJob]:  # fmt: skip
    """The jobs of a trading day in order (default: every job, for the last NYSE session)."""
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


def trigger_run(umbrella_id: int, portfolio_ids: list[int] | None) -> BatchJob:
    """Claim a queued umbrella (a conditional update: only one worker gets it) and run it."""
    claimed = BatchJob.objects.filter(pk=umbrella_id, status=BatchJob.Status.QUEUED).update(
        status=BatchJob.Status.RUNNING, started_at=timezone.now()
    )
    umbrella = BatchJob.objects.get(pk=umbrella_id)
    if not claimed:
        return umbrella
    started = time.perf_counter()
    jobs = TRIGGERS[umbrella.name.removeprefix("trigger:")]
    try:
        runs = run_daily_batch(
            umbrella.run_date,
            jobs=jobs,
            portfolio_ids=portfolio_ids,
            triggered_by=umbrella.triggered_by,
        )
    except Exception as exc:  # noqa: BLE001 - recorded on the job row
        runs = []
        umbrella.error = f"{type(exc).__name__}: {exc}"[:1000]
    statuses = {r.status for r in runs}
    umbrella.status = (
        BatchJob.Status.FAILED if umbrella.error or statuses == {BatchJob.Status.FAILED}
        else BatchJob.Status.PARTIAL if statuses - {BatchJob.Status.SUCCEEDED}
        else BatchJob.Status.SUCCEEDED
    )  # fmt: skip
    umbrella.counts = {"jobs": {r.name: {"id": r.pk, "status": r.status} for r in runs}}
    umbrella.failed_portfolios = {k: v for r in runs for k, v in r.failed_portfolios.items()}
    umbrella.finished_at = timezone.now()
    umbrella.duration_s = time.perf_counter() - started
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
