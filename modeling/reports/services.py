"""Report writes: queue a report, and run one (claimed, rendered, stored, marked)."""

from __future__ import annotations

import logging

from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone

from modeling.models import Report
from modeling.reports.build import document_build
from modeling.reports.renderers import render
from portfolios.models import Portfolio
from sigmasight.celery import app
from sigmasight.outbox.services import outbox_send

logger = logging.getLogger("sigmasight.reports")

ERROR_LIMIT = 2000


def report_queue(*, owner, portfolio: Portfolio, kind: str, fmt: str) -> Report:
    """A queued report; its task (modeling.tasks.generate_report, named: the tasks module imports
    this one) is enqueued once the row is committed."""
    with transaction.atomic():
        report = Report.objects.create(owner=owner, portfolio=portfolio, kind=kind, format=fmt)
        outbox_send(app.signature("modeling.generate_report", args=(report.pk,)))
    return report


def report_file_name(report: Report, as_of: object) -> str:
    return f"{report.kind}-portfolio{report.portfolio_id}-{as_of}-{report.pk}.{report.format}"


def report_run(*, report_id: int) -> Report | None:
    """Generate a queued report. Claimed queued -> running with a conditional update, so a
    redelivered task (or a second worker) finds it taken and does nothing; None then, or when
    the report is gone. Any error marks it failed with the reason; nothing is raised."""
    claimed = Report.objects.filter(pk=report_id, status=Report.Status.QUEUED).update(
        status=Report.Status.RUNNING, started_at=timezone.now()
    )
    if not claimed:
        logger.info("report not queued (gone or claimed)", extra={"report_id": report_id})
        return None
    report = Report.objects.select_related("portfolio").get(pk=report_id)
    try:
        document = document_build(kind=report.kind, portfolio=report.portfolio)
        content = render(document, report.format)
        report.file.save(report_file_name(report, document.as_of), ContentFile(content), save=False)
    except Exception as exc:  # any failure is the report's outcome, recorded on its row
        logger.exception("report failed", extra={"report_id": report_id})
        Report.objects.filter(pk=report_id).update(
            status=Report.Status.FAILED,
            error=f"{type(exc).__name__}: {exc}"[:ERROR_LIMIT],
            finished_at=timezone.now(),
        )
    else:
        Report.objects.filter(pk=report_id).update(
            status=Report.Status.DONE, file=report.file.name, error="", finished_at=timezone.now()
        )
        logger.info(
            "report done",
            extra={
                "report_id": report_id,
                "kind": report.kind,
                "format": report.format,
                "bytes": len(content),
            },
        )
    report.refresh_from_db()
    return report
