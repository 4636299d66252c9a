"""The default beat schedule (DESIGN.md's trading day, America/New_York) in
django-celery-beat's tables, upserted by name.

Each entry we write carries a fingerprint of what we wrote in its description; an entry whose
schedule, task or switch no longer matches its fingerprint was edited by staff and is left alone.
Entries named `sigmasight:...` that the defaults no longer know are disabled, never deleted.
Jobs run for the last completed NYSE session and skip non-sessions by themselves.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from django.db import transaction
from django_celery_beat.models import CrontabSchedule, PeriodicTask

TIMEZONE = "America/New_York"
PREFIX = "sigmasight:"


@dataclass(frozen=True)
class Entry:
    name: str
    task: str
    minute: str
    hour: str
    day_of_week: str
    kwargs: dict


WEEKDAYS = "1-5"
DEFAULTS = [
    Entry(
        "sigmasight:market-data", "analytics.run_job", "0", "16", WEEKDAYS, {"job": "market_data"}
    ),
    Entry("sigmasight:greeks", "analytics.run_job", "0", "17", WEEKDAYS, {"job": "greeks"}),
    Entry("sigmasight:factors", "analytics.run_job", "15", "17", WEEKDAYS, {"job": "factors"}),
    Entry(
        "sigmasight:attribution", "analytics.run_job", "18", "17", WEEKDAYS, {"job": "attribution"}
    ),
    Entry(
        "sigmasight:market-risk", "analytics.run_job", "20", "17", WEEKDAYS, {"job": "market_risk"}
    ),
    Entry("sigmasight:snapshots", "analytics.run_job", "30", "17", WEEKDAYS, {"job": "snapshots"}),
    Entry("sigmasight:stress", "analytics.run_job", "35", "17", WEEKDAYS, {"job": "stress"}),
    Entry("sigmasight:weekly-correlation", "stress.refresh_correlation", "40", "17", "5", {}),
    Entry(
        "sigmasight:weekly-scenario-backtest", "analytics.scenario_backtest", "45", "17", "5", {}
    ),
    Entry("sigmasight:limits", "analytics.run_job", "45", "17", WEEKDAYS, {"job": "limits"}),
    Entry("sigmasight:alerts", "analytics.run_job", "50", "17", WEEKDAYS, {"job": "alerts"}),
    Entry("sigmasight:retention", "analytics.run_job", "55", "17", WEEKDAYS, {"job": "retention"}),
    # Tasks the web kept in the outbox while the broker was down (sigmasight/outbox/services.py).
    Entry("sigmasight:outbox-flush", "outbox.flush", "*", "*", "*", {}),
]


def _fingerprint(task: PeriodicTask) -> str:
    c = task.crontab
    state = [task.task, task.kwargs, task.enabled, c.minute, c.hour, c.day_of_week, str(c.timezone)]
    return hashlib.sha256(json.dumps(state, default=str).encode()).hexdigest()[:16]


def _description(task: PeriodicTask) -> str:
    return (
        f"Managed by setup_schedule; edit freely (edits are kept). fingerprint={_fingerprint(task)}"
    )


def schedule_upsert() -> dict[str, int]:
    result = {"created": 0, "updated": 0, "kept_staff_edits": 0, "disabled": 0}
    with transaction.atomic():
        for entry in DEFAULTS:
            crontab, _ = CrontabSchedule.objects.get_or_create(
                minute=entry.minute,
                hour=entry.hour,
                day_of_week=entry.day_of_week,
                day_of_month="*",
                month_of_year="*",
                timezone=TIMEZONE,
            )
            task = PeriodicTask.objects.filter(name=entry.name).select_related("crontab").first()
            if (
                task is not None
                and task.crontab
                and not task.description.endswith(f"fingerprint={_fingerprint(task)}")
            ):
                result["kept_staff_edits"] += 1
                continue
            created = task is None
            task = task or PeriodicTask(name=entry.name)
            task.task, task.crontab, task.kwargs, task.enabled = (
                entry.task,
                crontab,
                json.dumps(entry.kwargs),
                True,
            )
            task.interval = task.solar = task.clocked = None
            task.save()
            task.description = _description(task)
            task.save(update_fields=["description"])
            result["created" if created else "updated"] += 1
        known = {e.name for e in DEFAULTS}
        stale = PeriodicTask.objects.filter(name__startswith=PREFIX, enabled=True).exclude(
            name__in=known
        )
        result["disabled"] = stale.update(enabled=False)
    return result
