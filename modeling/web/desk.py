"""Reports (generate, watch the status, download), alerts (limits and breaches, acknowledge) and,
for staff, operations (the day's batch runs, data sources and staleness, the task outbox)."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from analytics.jobs import TRIGGERS
from marketdata.calendar import last_completed_session
from marketdata.selectors import price_sources
from modeling.models import Report
from modeling.web.bridge import api
from modeling.web.common import (
    book_context,
    data,
    first_error,
    portfolios_of,
    signed_in,
    staff_only,
)
from sigmasight.outbox.selectors import outbox_status

RUNNING = {"queued", "running"}


@signed_in
def reports(request: HttpRequest, portfolio_id: int) -> HttpResponse:
    context = book_context(request, portfolio_id, "reports")
    listed = data(api(request, "/api/v1/reports/", {"portfolio": portfolio_id, "page_size": 50}))
    context.update(
        reports=listed["results"],
        running=any(r["status"] in RUNNING for r in listed["results"]),
        kinds=Report.Kind.choices,
        formats=Report.Format.choices,
    )
    template = "web/partials/reports_table.html" if request.htmx else "web/reports.html"  # type: ignore[attr-defined]
    return render(request, template, context)


@signed_in
@require_POST
def report_generate(request: HttpRequest, portfolio_id: int) -> HttpResponse:
    body = {
        "portfolio": portfolio_id,
        "kind": request.POST.get("kind", ""),
        "format": request.POST.get("format", ""),
    }
    answer = api(request, "/api/v1/reports/generate/", method="POST", body=body)
    if answer.ok:
        messages.success(request, f"Report {answer.data['id']} queued.")
    else:
        messages.error(request, first_error(answer))
    return redirect(reverse("web:reports", args=[portfolio_id]))


@signed_in
def report_download(request: HttpRequest, report_id: int) -> HttpResponse:
    answer = api(request, f"/api/v1/reports/{report_id}/download/")
    if not answer.ok:
        data(answer)
    return answer.response


@signed_in
def alerts(request: HttpRequest) -> HttpResponse:
    status = request.GET.get("status", "open")
    if status not in {"open", "acknowledged", "resolved", "all"}:
        status = "open"
    query = {"page_size": 200, **({} if status == "all" else {"status": status})}
    portfolios = portfolios_of(request)
    names = {p["id"]: p["name"] for p in portfolios}
    breaches = data(api(request, "/api/v1/breaches/", query))["results"]
    limits = data(api(request, "/api/v1/limits/", {"page_size": 500}))["results"]
    for row in [*breaches, *limits]:
        row["portfolio_name"] = names.get(row["portfolio"], "All portfolios")
    context = {
        "portfolios": portfolios,
        "portfolio": portfolios[0] if portfolios else None,
        "section": "alerts",
        "status": status,
        "breaches": breaches,
        "limits": limits,
        "settings": data(api(request, "/api/v1/alerts/settings/")),
    }
    return render(request, "web/alerts.html", context)


@signed_in
@require_POST
def acknowledge(request: HttpRequest, breach_id: int) -> HttpResponse:
    answer = api(request, f"/api/v1/breaches/{breach_id}/acknowledge/", method="POST", body={})
    breach = data(answer)
    if request.htmx:  # type: ignore[attr-defined]  # the row, acknowledged
        names = {p["id"]: p["name"] for p in portfolios_of(request)}
        breach["portfolio_name"] = names.get(breach["portfolio"], "")
        return render(request, "web/partials/breach_row.html", {"b": breach})
    messages.success(request, "Breach acknowledged.")
    return redirect(request.POST.get("next") or reverse("web:alerts"))


@staff_only
def operations(request: HttpRequest) -> HttpResponse:
    jobs = data(api(request, "/api/v1/admin/batch/jobs/", {"page_size": 50, "ordering": "-id"}))
    session = last_completed_session()
    portfolios = portfolios_of(request)
    context = {
        "portfolios": portfolios,
        "portfolio": portfolios[0] if portfolios else None,
        "section": "operations",
        "jobs": jobs["results"],
        "session": session,
        "sources": price_sources(session),
        "outbox": outbox_status(),
        "health": api(request, "/api/v1/health/").data,
        "triggers": TRIGGERS,
    }
    return render(request, "web/operations.html", context)


@staff_only
@require_POST
def rerun(request: HttpRequest) -> HttpResponse:
    """Queue a batch run through the API's trigger (the same validation, audit and queue)."""
    trigger = request.POST.get("trigger", "all")
    body = {"date": request.POST["date"]} if request.POST.get("date") else {}
    answer = api(request, f"/api/v1/admin/batch/{trigger}/", method="POST", body=body)
    if answer.ok:
        messages.success(request, f"Queued: job {answer.data['job_id']}.")
    else:
        messages.error(request, first_error(answer))
    return redirect(reverse("web:operations"))
