from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from analytics.schedule import DEFAULTS, schedule_upsert

pytestmark = pytest.mark.django_db


def test_schedule_exists_after_migrate_with_the_trading_day_times():
    # post_migrate already ran the upsert for the test database.
    tasks = {t.name: t for t in PeriodicTask.objects.filter(name__startswith="sigmasight:")}
    assert set(tasks) == {e.name for e in DEFAULTS}
    times = {
        name: (t.crontab.hour, t.crontab.minute, t.crontab.day_of_week) for name, t in tasks.items()
    }
    assert times["sigmasight:market-data"] == ("16", "0", "1-5")
    assert times["sigmasight:stress"] == ("17", "35", "1-5")
    assert times["sigmasight:limits"] == ("17", "45", "1-5")
    assert times["sigmasight:alerts"] == ("17", "50", "1-5")
    assert times["sigmasight:retention"] == ("17", "55", "1-5")
    assert times["sigmasight:weekly-correlation"] == ("17", "40", "5")
    assert {str(t.crontab.timezone) for t in tasks.values()} == {"America/New_York"}


def test_upsert_is_idempotent_and_keeps_a_staff_edit():
    assert schedule_upsert()["created"] == 0
    edited = PeriodicTask.objects.get(name="sigmasight:greeks")
    edited.crontab = CrontabSchedule.objects.create(
        minute="5", hour="18", day_of_week="1-5", timezone="America/New_York"
    )
    edited.save()
    result = schedule_upsert()
    assert result["kept_staff_edits"] == 1
    assert PeriodicTask.objects.get(name="sigmasight:greeks").crontab.hour == "18"
    disabled = PeriodicTask.objects.get(name="sigmasight:factors")
    disabled.enabled = False
    disabled.save()
    schedule_upsert()
    assert PeriodicTask.objects.get(name="sigmasight:factors").enabled is False


def test_unknown_entries_are_disabled_not_deleted():
    stale = PeriodicTask.objects.create(
        name="sigmasight:retired-job",
        task="analytics.run_job",
        crontab=CrontabSchedule.objects.create(minute="0", hour="3"),
    )
    other = PeriodicTask.objects.create(
        name="celery.backend_cleanup", task="celery.backend_cleanup", crontab=stale.crontab
    )
    out = io.StringIO()
    call_command("setup_schedule", stdout=out)
    assert "disabled: 1" in out.getvalue()
    assert PeriodicTask.objects.get(pk=stale.pk).enabled is False
    assert PeriodicTask.objects.get(pk=other.pk).enabled is True
