from __future__ import annotations

import logging

from django.apps import AppConfig

logger = logging.getLogger("sigmasight.outbox")


def _flush_on_worker_ready(**kwargs: object) -> None:
    # A worker starting (Redis back, a deploy) sends what the web kept while the broker was down.
    from sigmasight.outbox.services import outbox_flush

    try:
        outbox_flush()
    except Exception:
        logger.exception("outbox flush at worker start failed; beat flushes every minute")


class OutboxConfig(AppConfig):
    name = "sigmasight.outbox"
    label = "outbox"
    verbose_name = "Task outbox"

    def ready(self) -> None:
        from celery.signals import worker_ready

        worker_ready.connect(_flush_on_worker_ready, dispatch_uid="outbox_flush_on_worker_ready")
