"""The overview: equity and daily P&L over the snapshots, exposures, Greeks, factor betas, VaR and
ES, open breaches and the data-quality banner."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from modeling.web.bridge import api
from modeling.web.common import book_context, data, first_error, portfolios_of, signed_in

SECTIONS = {"overview", "positions", "risk", "stress", "whatif", "reports"}


def betas_chart(betas: dict[str, float]) -> list[dict[str, Any]]:
    ordered = sorted(betas.items(), key=lambda item: -abs(item[1] or 0))
    top = max((abs(v or 0) for _, v in ordered), default=0) or 1
    return [{"factor": k, "beta": v, "scale": top} for k, v in ordered]


@signed_in
def overview(request: HttpRequest, portfolio_id: int) -> HttpResponse:
    context = book_context(request, portfolio_id, "overview")
    summary = context["summary"]
    performance = data(api(request, f"/api/v1/portfolios/{portfolio_id}/performance/"))
    metrics = api(request, "/api/v1/risk/metrics/", {"portfolio": portfolio_id})
    breaches = data(
        api(request, "/api/v1/breaches/", {"portfolio": portfolio_id, "status": "open"})
    )
    series = performance["series"]
    context.update(
        summary=summary,
        performance=performance,
        metrics=metrics.data if metrics.ok else None,
        metrics_error=None if metrics.ok else first_error(metrics),
        breaches=breaches["results"],
        betas=betas_chart(summary.get("factor_betas") or {}),
        equity_chart={
            "title": "Equity and daily P&L",
            "x": [point["date"] for point in series],
            "series": [
                {"label": "Equity", "values": [float(p["equity"]) for p in series]},
                {
                    "label": "Daily P&L",
                    "values": [float(p["daily_pnl"]) for p in series],
                    "axis": "right",
                },
            ],
        },
    )
    return render(request, "web/overview.html", context)


@signed_in
def switch(request: HttpRequest) -> HttpResponse:
    """The navigation's portfolio chooser: the same section of another of the user's books."""
    section = request.GET.get("section", "overview")
    if section not in SECTIONS:
        section = "overview"
    try:
        chosen = int(request.GET.get("portfolio", ""))
    except ValueError:
        chosen = -1
    if not any(p["id"] == chosen for p in portfolios_of(request)):
        return redirect(reverse("web:home"))
    return redirect(reverse(f"web:{section}", args=[chosen]))
