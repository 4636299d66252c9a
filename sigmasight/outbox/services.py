"""Sending Celery tasks so that a broker that is down loses nothing and fails no request.

`outbox_send(signature)` is how the web enqueues work (instead of
`transaction.on_commit(lambda: task.delay(...))`). It always writes an `OutboxTask` row *inside
the caller's transaction*, then after commit publishes it and marks it sent. Why the row first,
always, rather than only when a publish fails: the row commits atomically with the business
change (a report row, a queued batch job), so nothing is lost even if the process dies between
commit and publish, and a failed publish needs no second write path (no "store it now, in a new
transaction, after the fact" that could itself fail). The cost is one insert and one update per
send; the web sends a task only on a few staff and report actions.

After commit the publish is bounded: its own broker connection with 1 s socket timeouts, one
retry 0.2 s later, and no result-channel subscription (`sigmasight.celery.RedisResultBackend`),
so a request never waits for seconds on a dead broker. If it fails, the row stays pending with
the error (warning logged at most once a minute), the broker's circuit breaker opens for a few
seconds (sends meanwhile go straight to the outbox), and the caller still gets its normal answer:
the task id it was given is the one the task is published under later, so a 202's `job_id` stays
valid.

`outbox_flush()` publishes pending rows oldest first. It runs from beat every minute
(`sigmasight:outbox-flush`, `analytics/schedule.py`), when a worker starts (`worker_ready`), and
in the web right after a successful publish when older rows are waiting (an indexed `exists()` on
the send path only, never on reads). Rows are taken with `select_for_update(skip_locked=True)` on
PostgreSQL, and the after-commit publish takes its row the same way, so two senders never publish
the same row; on SQLite writers are serialized by the database lock. Delivery is at least once:
a process killed after publishing but before marking the row sent publishes it again later, so
every task sent this way must be idempotent (they claim their row with a conditional update:
`run_trigger`, `run_job`, `generate_report`; `refresh_prices` upserts; a second `demo_reset`
rebuilds the demo once more). Sent rows are kept a week for the admin, then deleted by the flush.

In eager mode (no `REDIS_URL`) nothing is stored: the task runs on commit, as before.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

from celery.canvas import Signature
from django.db import transaction
from django.utils import timezone
from kombu import Connection

from sigmasight.cachesafe import CircuitBreaker, warn_limited
from sigmasight.celery import app
from sigmasight.outbox.models import OutboxTask

logger = logging.getLogger("sigmasight.outbox")

broker_breaker = CircuitBreaker("broker", log=logger)

# One retry shortly after the first attempt: enough for a pooled connection Redis dropped when it
# restarted, short enough (with 1 s socket timeouts) for a web request.
PUBLISH_TIMEOUT_S = 1.0
PUBLISH_RETRY_POLICY = {
    "max_retries": 1,
    "interval_start": 0.2,
    "interval_step": 0.2,
    "interval_max": 0.2,
}
OPTIONS = ("queue", "countdown", "priority")
BATCH = 50
KEEP_SENT = timedelta(days=7)
ERROR_LIMIT = 2000


@dataclass(frozen=True)
class FlushResult:
    sent: int
    pending: int


def outbox_send(signature: Signature) -> str:
    """Enqueue `signature` once the current transaction commits; returns its task id.

    Only `queue`, `countdown` and `priority` options are supported (stored as JSON); the
    arguments must be JSON (ids and ISO dates, as every task here takes).
    """
    task_id = signature.freeze().id
    if app.conf.task_always_eager:
        transaction.on_commit(signature.apply_async)
        return task_id
    unknown = set(signature.options) - {*OPTIONS, "task_id", "reply_to"}
    if unknown or signature.subtask_type:
        raise ValueError(f"outbox_send takes a plain task signature; unsupported: {unknown}")
    assert signature.task is not None  # a task's signature names it
    with transaction.atomic():
        row = OutboxTask.objects.create(
            task=signature.task,
            args=list(signature.args),
            kwargs=dict(signature.kwargs),
            task_id=task_id,
            options={k: v for k, v in signature.options.items() if k in OPTIONS},
        )
    transaction.on_commit(lambda: _publish_committed(row.pk))
    return task_id


def outbox_pending() -> bool:
    return OutboxTask.objects.filter(sent_at__isnull=True).exists()


def outbox_flush(*, limit: int = 1000) -> FlushResult:
    """Publish up to `limit` pending rows, oldest first; stops at the first publish failure."""
    sent = 0
    failed = False
    with _connection() as connection:
        while sent < limit and not failed:
            with transaction.atomic():
                rows = list(
                    OutboxTask.objects.select_for_update(skip_locked=True)
                    .filter(sent_at__isnull=True)
                    .order_by("created_at", "id")[: min(BATCH, limit - sent)]
                )
                for row in rows:
                    if not _publish(row, connection):
                        failed = True
                        break
                    sent += 1
            if not rows:
                break
    OutboxTask.objects.filter(
        sent_at__lt=timezone.now() - KEEP_SENT, sent_at__isnull=False
    ).delete()
    pending = OutboxTask.objects.filter(sent_at__isnull=True).count()
    if sent or pending:
        logger.info("outbox flushed", extra={"sent": sent, "pending": pending})
    return FlushResult(sent=sent, pending=pending)


@contextmanager
def _connection() -> Iterator[Connection]:
    """A broker connection of its own with short timeouts and one reconnect attempt: the
    process-wide pool keeps the patient settings the workers want."""
    connection = app.connection_for_write(
        connect_timeout=PUBLISH_TIMEOUT_S,
        transport_options={
            "socket_timeout": PUBLISH_TIMEOUT_S,
            "socket_connect_timeout": PUBLISH_TIMEOUT_S,
            "max_retries": 1,
            "interval_start": 0.2,
            "interval_step": 0.2,
            "interval_max": 0.2,
        },
    )
    try:
        yield connection
    finally:
        connection.release()


def _publish(row: OutboxTask, connection: Connection) -> bool:
    """Send one row under its task id and mark it sent; on a broker error record it and open the
    breaker. False when not sent (breaker open or error)."""
    if not broker_breaker.available():
        return False
    try:
        app.send_task(
            row.task,
            args=row.args,
            kwargs=row.kwargs,
            task_id=row.task_id,
            connection=connection,
            retry=True,
            retry_policy=PUBLISH_RETRY_POLICY,
            **row.options,
        )
    except Exception as exc:  # noqa: BLE001 - any publish failure leaves the row for the flush
        broker_breaker.failed(exc)
        row.attempts += 1
        row.last_error = f"{type(exc).__name__}: {exc}"[:ERROR_LIMIT]
        row.save(update_fields=["attempts", "last_error"])
        return False
    broker_breaker.succeeded()
    row.sent_at = timezone.now()
    row.save(update_fields=["sent_at"])
    return True


def _publish_committed(pk: int) -> None:
    """The after-commit publish of one row; never raises (the caller's change is committed and
    its answer must not turn into a 500)."""
    try:
        if not broker_breaker.available():
            warn_limited(
                "outbox:deferred",
                "broker unavailable: tasks are kept in the outbox until it returns",
                log=logger,
            )
            return
        with _connection() as connection, transaction.atomic():
            row = (
                OutboxTask.objects.select_for_update(skip_locked=True)
                .filter(pk=pk, sent_at__isnull=True)
                .first()
            )
            if row is None:  # a flush took it (or already sent it)
                return
            if not _publish(row, connection):
                warn_limited(
                    "outbox:deferred",
                    "broker unavailable: %s %s kept in the outbox (%s)",
                    row.task,
                    row.task_id,
                    row.last_error,
                    log=logger,
                )
                return
        if outbox_pending():  # the broker is back: send what waited for it
            outbox_flush()
    except Exception:
        logger.exception("outbox publish failed", extra={"outbox_id": pk})
