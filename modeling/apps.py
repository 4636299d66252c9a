from __future__ import annotations

from django.apps import AppConfig


class ModelingConfig(AppConfig):
    name = "modeling"
    verbose_name = "What-if modeling"

    def ready(self) -> None:
        from modeling.limits.jobs import declare_jobs

        declare_jobs()
        # The app's tasks are queued by name (reports, alert deliveries): registered in every
        # process, not only in workers (Celery's autodiscovery imports them at worker start), so
        # an eager run in the web or a command runs them instead of sending them to no broker.
        import modeling.tasks  # noqa: F401
