"""The task outbox against the real Redis of this machine behind a fault proxy (both legs):
published after commit under the id the caller was given, kept when the broker is down without
holding the caller, sent once by the flush when it returns, flushed by beat and worker start."""

from __future__ import annotations

import time

import pytest
from celery.signals import worker_ready
from django_celery_beat.models import PeriodicTask

from sigmasight.celery import app
from sigmasight.outbox.models import OutboxTask
from sigmasight.outbox.services import broker_breaker, outbox_flush, outbox_send
from sigmasight.outbox.tests.redisproxy import proxied_redis
from sigmasight.tasks import ping

pytestmark = pytest.mark.django_db


@pytest.fixture
def broker():
    with proxied_redis() as proxied:
        yield proxied


def _send(capture, payload: str = "x") -> tuple[str, float]:
    started = time.monotonic()
    with capture(execute=True):
        task_id = outbox_send(ping.s(payload))
    return task_id, time.monotonic() - started


def test_outbox_send_publishes_after_commit_under_the_given_id(
    broker, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        task_id = outbox_send(ping.s("hello"))
        assert OutboxTask.objects.get().sent_at is None
        assert broker.task_ids() == []  # nothing leaves before the commit
    for callback in callbacks:
        callback()
    row = OutboxTask.objects.get()
    assert (row.task, row.args, row.task_id, row.attempts) == (
        "sigmasight.ping",
        ["hello"],
        task_id,
        0,
    )
    assert row.sent_at is not None
    [message] = broker.messages()
    assert message["headers"]["id"] == task_id and message["headers"]["task"] == "sigmasight.ping"


def test_a_rolled_back_change_sends_nothing(broker, django_capture_on_commit_callbacks):
    from django.db import transaction

    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        outbox_send(ping.s("never"))
        transaction.set_rollback(True)
    assert not OutboxTask.objects.exists()
    assert broker.task_ids() == []


def test_broker_down_keeps_the_task_fast_and_the_flush_sends_it_when_back(
    broker, django_capture_on_commit_callbacks, caplog
):
    broker.proxy.cut()
    first, took = _send(django_capture_on_commit_callbacks, "first")
    assert took < 1.5  # one bounded attempt, not Celery's patient retries (~19 s before)
    row = OutboxTask.objects.get(task_id=first)
    assert row.sent_at is None and row.attempts == 1 and "Connection refused" in row.last_error
    assert not broker_breaker.available()
    assert "broker unavailable" in caplog.text

    second, took = _send(django_capture_on_commit_callbacks, "second")
    assert took < 0.2  # the breaker is open: straight to the outbox, no connection attempt
    assert OutboxTask.objects.get(task_id=second).attempts == 0

    broker.proxy.restore()
    assert outbox_flush().sent == 0  # the breaker still open: not even tried
    broker_breaker.reset()  # what SIGMASIGHT_REDIS_RETRY_AFTER_S seconds do
    result = outbox_flush()
    assert (result.sent, result.pending) == (2, 0)
    assert broker.task_ids() == [first, second]  # oldest first, under the ids given out


def test_after_a_successful_send_the_web_flushes_what_waited(
    broker, django_capture_on_commit_callbacks
):
    broker.proxy.cut()
    waiting, _ = _send(django_capture_on_commit_callbacks, "waiting")
    broker.proxy.restore()
    broker_breaker.reset()
    fresh, _ = _send(django_capture_on_commit_callbacks, "fresh")
    assert set(broker.task_ids()) == {waiting, fresh}
    assert not OutboxTask.objects.filter(sent_at__isnull=True).exists()


def test_flushing_twice_sends_once(broker, django_capture_on_commit_callbacks):
    broker.proxy.cut()
    task_id, _ = _send(django_capture_on_commit_callbacks)
    broker.proxy.restore()
    broker_breaker.reset()
    assert outbox_flush().sent == 1
    assert outbox_flush().sent == 0
    assert broker.task_ids() == [task_id]


def test_a_worker_starting_flushes_the_outbox(broker, django_capture_on_commit_callbacks):
    broker.proxy.cut()
    task_id, _ = _send(django_capture_on_commit_callbacks)
    broker.proxy.restore()
    broker_breaker.reset()
    worker_ready.send(sender=None)
    assert broker.task_ids() == [task_id]


def test_the_beat_schedule_flushes_the_outbox_every_minute():
    # post_migrate wrote the default schedule into django-celery-beat's tables.
    entry = PeriodicTask.objects.select_related("crontab").get(name="sigmasight:outbox-flush")
    assert entry.task == "outbox.flush" and entry.enabled
    c = entry.crontab
    assert (c.minute, c.hour, c.day_of_week, c.day_of_month, c.month_of_year) == ("*",) * 5
    app.loader.import_default_modules()  # what a worker does at start (autodiscovery)
    assert "outbox.flush" in app.tasks


def test_the_flush_task_sends_the_pending_rows(broker, django_capture_on_commit_callbacks):
    from sigmasight.outbox.tasks import flush

    broker.proxy.cut()
    task_id, _ = _send(django_capture_on_commit_callbacks)
    broker.proxy.restore()
    broker_breaker.reset()
    assert flush.run() == {"sent": 1, "pending": 0}
    assert broker.task_ids() == [task_id]


def test_eager_mode_runs_the_task_on_commit_and_stores_nothing(
    eager_celery, django_capture_on_commit_callbacks, monkeypatch
):
    ran = []
    monkeypatch.setattr(ping, "run", lambda payload="ping": ran.append(payload))
    with django_capture_on_commit_callbacks(execute=True):
        outbox_send(ping.s("eager"))
        assert ran == []
    assert ran == ["eager"]
    assert not OutboxTask.objects.exists()


def test_unsupported_options_are_refused(broker):
    with pytest.raises(ValueError, match="link"):
        outbox_send(ping.s("x").set(link=ping.s("y")))


def test_sent_rows_are_kept_a_week(broker):
    from datetime import timedelta

    from django.utils import timezone

    old = OutboxTask.objects.create(
        task="sigmasight.ping", task_id="old", sent_at=timezone.now() - timedelta(days=8)
    )
    recent = OutboxTask.objects.create(
        task="sigmasight.ping", task_id="recent", sent_at=timezone.now() - timedelta(days=6)
    )
    outbox_flush()
    assert list(OutboxTask.objects.values_list("pk", flat=True)) == [recent.pk]
    assert not OutboxTask.objects.filter(pk=old.pk).exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_row_locked_by_another_sender_is_skipped(broker):
    """Two flushers (or a flush and the after-commit publish) never send the same row: the
    second skips what the first holds (`FOR UPDATE SKIP LOCKED`)."""
    import threading

    from django.db import connection, transaction

    row = OutboxTask.objects.create(task="sigmasight.ping", args=["x"], task_id="locked-row")
    locked, release = threading.Event(), threading.Event()

    def hold() -> None:
        try:
            with transaction.atomic():
                OutboxTask.objects.select_for_update().get(pk=row.pk)
                locked.set()
                release.wait(10)
        finally:
            connection.close()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert locked.wait(10)
        assert outbox_flush().sent == 0
    finally:
        release.set()
        holder.join()
    assert outbox_flush().sent == 1
    assert broker.task_ids() == ["locked-row"]
