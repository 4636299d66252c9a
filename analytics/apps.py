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
        import analytics.jobs  # noqa: F401 - declares analytics' jobs of the day
        from analytics.batch import last_finished
        from sigmasight.api.health import last_batch_from

        last_batch_from(last_finished)
        post_migrate.connect(_setup_schedule, sender=self, dispatch_uid="analytics_setup_schedule")
