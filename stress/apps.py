from __future__ import annotations

import logging

from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _load_library(sender: AppConfig, **kwargs: object) -> None:
    # Seed the shared scenario library after every migrate; load_library never overwrites a
    # scenario staff edited, so this is safe to repeat. A library that cannot load (factors
    # migrated away, an invalid file) must not fail migrate itself: it is logged instead.
    from django.db import DatabaseError

    from sigmasight.exceptions import ValidationFailed
    from stress.library import load_library

    try:
        load_library()
    except (ValidationFailed, DatabaseError) as exc:
        logging.getLogger("sigmasight.batch").warning("stress library not loaded: %s", exc)


class StressConfig(AppConfig):
    name = "stress"
    verbose_name = "Stress testing"

    def ready(self) -> None:
        from stress.jobs import declare_jobs

        declare_jobs()
        post_migrate.connect(_load_library, sender=self, dispatch_uid="stress_load_library")
