from __future__ import annotations

import logging

from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _setup_schedule(sender: AppConfig, **kwargs: object) -> None:
    # After every migrate the default schedule exists; staff edits are kept (schedule.py).
    from django.db import DatabaseError

    from analytics.schedule import schedule_upsert

    try:
        schedule_upsert()
    except DatabaseError as exc:
        logging.getLogger("sigmasight.batch").warning("beat schedule not set up: %s", exc)


class AnalyticsConfig(AppConfig):
    name = "analytics"
    verbose_name = "Analytics"

    def ready(self) -> None:
        post_migrate.connect(_setup_schedule, sender=self, dispatch_uid="analytics_setup_schedule")
