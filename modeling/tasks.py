from __future__ import annotations

from celery import shared_task

from modeling.reports.services import report_run


@shared_task(name="modeling.generate_report", soft_time_limit=120, time_limit=150)
def generate_report(report_id: int) -> dict[str, object]:
    """Generate one queued report (a redelivered or duplicate task finds it claimed)."""
    report = report_run(report_id=report_id)
    if report is None:
        return {"report": report_id, "status": "skipped"}
    return {"report": report_id, "status": report.status}
