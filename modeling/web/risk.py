"""Risk (metrics per confidence and horizon, contributions by a chosen grouping, market and rate
scenarios, attribution, liquidity, concentration) and stress (results worst first, P&L by factor
of a chosen scenario, the custom scenario form)."""

from __future__ import annotations

import json
from itertools import accumulate
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from analytics.contributions import BY, MEASURES, METHODS
from modeling.web.bridge import Answer, api
from modeling.web.common import book_context, data, first_error, signed_in
from stress.models import StressScenario

CONFIDENCES = ("0.95", "0.99")
HORIZONS = ("1", "10")
ATTRIBUTION_TOP = 8  # factors drawn one by one; the rest summed as "other factors"


def _part(answer: Answer) -> dict[str, Any]:
    """A section's data, or the API's reason it has none (a new book, too little history)."""
    return (
        {"data": answer.data, "error": None}
        if answer.ok
        else {
            "data": None,
            "error": first_error(answer),
        }
    )


def _choice(
    request: HttpRequest, key: str, allowed: tuple[str, ...] | list[str], default: str
) -> str:
    value = request.GET.get(key, default)
    return value if value in allowed else default


def _contributions(request: HttpRequest, portfolio_id: int) -> dict[str, Any]:
    query = {
        "portfolio": portfolio_id,
        "measure": _choice(request, "measure", list(MEASURES), "var"),
        "method": _choice(request, "method", list(METHODS), "historical"),
        "by": _choice(request, "by", list(BY), "position"),
        "confidence": _choice(request, "confidence", CONFIDENCES, "0.95"),
    }
    part = _part(api(request, "/api/v1/risk/contributions/", query))
    rows = (part["data"] or {}).get("contributions") or []
    top = max((abs(float(r["component"] or 0)) for r in rows), default=0) or 1
    return {
        **part,
        "query": query,
        "scale": top,
        "measures": MEASURES,
        "methods": METHODS,
        "groupings": BY,
    }


def attribution_chart(series: list[dict[str, Any]]) -> dict[str, Any]:
    """Cumulative P&L: the total, each of the largest factors, the other factors and specific."""
    totals: dict[str, float] = {}
    for day in series:
        for key, pnl in (day.get("parts") or {}).items():
            totals[key] = totals.get(key, 0.0) + abs(float(pnl))
    named = sorted(totals, key=lambda k: -totals[k])[:ATTRIBUTION_TOP]

    def cumulative(values: list[float]) -> list[float]:
        return [round(v, 2) for v in accumulate(values)]

    lines = [
        {"label": "Total", "values": cumulative([float(d["total_pnl"]) for d in series])},
        {"label": "Specific", "values": cumulative([float(d["specific_pnl"]) for d in series])},
    ]
    for key in named:
        lines.append(
            {
                "label": key,
                "values": cumulative([float((d.get("parts") or {}).get(key, 0)) for d in series]),
            }
        )
    other = [
        sum(float(v) for k, v in (d.get("parts") or {}).items() if k not in named) for d in series
    ]
    if any(other):
        lines.append({"label": "Other factors", "values": cumulative(other)})
    return {
        "title": "Cumulative P&L by factor and specific",
        "x": [d["date"] for d in series],
        "series": lines,
    }


@signed_in
def risk(request: HttpRequest, portfolio_id: int) -> HttpResponse:
    context = book_context(request, portfolio_id, "risk")
    contributions = _contributions(request, portfolio_id)
    if request.htmx:  # type: ignore[attr-defined]  # the grouping form: just the table
        context["contributions"] = contributions
        return render(request, "web/partials/contributions.html", context)
    confidence = _choice(request, "confidence", CONFIDENCES, "0.95")
    horizon = _choice(request, "horizon_days", HORIZONS, "1")
    book = {"portfolio": portfolio_id}
    metrics = _part(
        api(
            request,
            "/api/v1/risk/metrics/",
            {**book, "confidence": confidence, "horizon_days": horizon},
        )
    )
    attribution = _part(api(request, "/api/v1/risk/attribution/", {**book, "by": "factor"}))
    context.update(
        confidence=confidence,
        horizon=horizon,
        confidences=CONFIDENCES,
        horizons=HORIZONS,
        metrics=metrics,
        contributions=contributions,
        market=_part(api(request, "/api/v1/risk/scenarios/market/", book)),
        rates=_part(api(request, "/api/v1/risk/scenarios/rates/", book)),
        attribution=attribution,
        attribution_chart=attribution_chart((attribution["data"] or {}).get("series") or []),
        liquidity=_part(api(request, "/api/v1/risk/liquidity/", book)),
        concentration=_part(api(request, "/api/v1/risk/concentration/", book)),
    )
    return render(request, "web/risk.html", context)


def _stress_context(request: HttpRequest, portfolio_id: int) -> dict[str, Any]:
    context = book_context(request, portfolio_id, "stress")
    as_of = context["summary"]["as_of"]
    results = data(
        api(request, f"/api/v1/stress/results/{portfolio_id}/", {"start": as_of, "end": as_of})
    )
    results = sorted(results, key=lambda r: float(r["total_pnl"]))  # worst first
    chosen = request.GET.get("scenario")
    selected = next((r for r in results if str(r["scenario_id"]) == chosen), None) or (
        results[0] if results else None
    )
    by_factor = sorted(
        ((selected or {}).get("by_factor") or {}).items(), key=lambda item: float(item[1])
    )
    top = max((abs(float(v)) for _, v in by_factor), default=0) or 1
    factors = data(api(request, "/api/v1/factors/definitions/", {"page_size": 500}))
    factor_rows = factors["results"] if isinstance(factors, dict) else factors
    context.update(
        as_of=as_of,
        results=results,
        selected=selected,
        by_factor=by_factor,
        scale=top,
        factors=[f["name"] for f in factor_rows],
        categories=StressScenario._meta.get_field("category").choices,
        form={"name": "", "category": "market", "shocks": "", "description": ""},
        form_errors={},
    )
    return context


@signed_in
def stress(request: HttpRequest, portfolio_id: int) -> HttpResponse:
    return render(request, "web/stress.html", _stress_context(request, portfolio_id))


def _shocks(text: str) -> dict[str, Any] | None:
    """`Market: -0.2, Value: 0.05` (one per line or comma separated) as the API's shocks."""
    shocks: dict[str, Any] = {}
    for part in text.replace("\n", ",").split(","):
        if not part.strip():
            continue
        if ":" not in part:
            return None
        name, _, move = part.rpartition(":")
        shocks[name.strip()] = move.strip()
    return shocks


@signed_in
@require_POST
def stress_custom(request: HttpRequest, portfolio_id: int) -> HttpResponse:
    """Create the user's scenario through the API's validation, then run it on this book."""
    context = _stress_context(request, portfolio_id)
    form = {key: request.POST.get(key, "") for key in ("name", "category", "shocks", "description")}
    shocks = _shocks(form["shocks"])
    if shocks is None:
        errors: dict[str, Any] = {
            "shocks": ["Write each shock as factor: move, e.g. Market: -0.2."]
        }
    else:
        body = {**form, "shocks": {k: _number(v) for k, v in shocks.items()}}
        created = api(request, "/api/v1/stress/scenarios/", method="POST", body=body)
        if created.ok:
            run = api(
                request,
                f"/api/v1/stress/test/{portfolio_id}/",
                method="POST",
                body={"scenario_ids": [created.data["id"]]},
            )
            if run.ok:
                messages.success(request, f"Scenario “{form['name']}” created and run.")
                url = reverse("web:stress", args=[portfolio_id])
                return redirect(f"{url}?scenario={created.data['id']}")
            data(run)
        errors = created.error.get("fields") or {"__all__": [first_error(created)]}
    context.update(form=form, form_errors=errors)
    return render(request, "web/stress.html", context, status=400)


def _number(text: str) -> Any:
    """A move as a number when it reads as one; otherwise as typed, for the API to refuse."""
    try:
        return json.loads(text)
    except ValueError:
        return text
