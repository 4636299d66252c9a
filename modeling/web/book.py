"""Positions: the sortable, filterable table with Greeks and P&L, the CSV upload (every row and
column error as the API reports it; nothing written on any error) and the export."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from modeling.web.bridge import api
from modeling.web.common import book_context, data, first_error, signed_in
from portfolios.models import Position
from sigmasight.api.uploads import limit_uploads
from sigmasight.exceptions import PayloadTooLarge

FILTERS = ("tag", "strategy", "position_type", "underlying")
COLUMNS = [
    ("symbol", "Symbol", "symbol"),
    ("position_type", "Type", None),
    ("quantity", "Quantity", "quantity"),
    ("last_price", "Price", None),
    ("market_value", "Market value", "market_value"),
    ("exposure", "Exposure", "exposure"),
    ("daily_pnl", "Daily P&L", "daily_pnl"),
    ("unrealized_pnl", "Unrealized P&L", "unrealized_pnl"),
]
TYPES = Position.PositionType.choices
PAGE_SIZE = 500


def _query(request: HttpRequest, portfolio_id: int) -> dict[str, Any]:
    query: dict[str, Any] = {"portfolio": portfolio_id, "page_size": PAGE_SIZE}
    for key in FILTERS:
        if request.GET.get(key):
            query[key] = request.GET[key]
    ordering = request.GET.get("ordering", "symbol")
    query["ordering"] = ordering
    return query


def _positions_context(
    request: HttpRequest, portfolio_id: int, upload_errors: list[dict[str, Any]] | None = None
) -> tuple[dict[str, Any], int]:
    context = book_context(request, portfolio_id, "positions")
    query = _query(request, portfolio_id)
    answer = api(request, "/api/v1/positions/", query)
    status = 200
    if answer.ok:
        positions, count, error = answer.data["results"], answer.data["count"], None
    else:  # a filter the API refused: its message, no rows
        positions, count, error, status = [], 0, first_error(answer), answer.status
    tags = data(api(request, "/api/v1/tags/", {"page_size": PAGE_SIZE}))["results"]
    strategies = data(
        api(request, "/api/v1/strategies/", {"portfolio": portfolio_id, "page_size": PAGE_SIZE})
    )["results"]
    ordering = query["ordering"]
    columns = [
        {
            "label": label,
            "field": field,
            "order": key,
            "sorted": "ascending"
            if ordering == key
            else "descending"
            if ordering == f"-{key}"
            else "",
            "next": f"-{key}" if ordering == key else key,
        }
        for field, label, key in COLUMNS
    ]
    context.update(
        positions=positions,
        count=count,
        truncated=count > len(positions),
        filter_error=error,
        filters={key: request.GET.get(key, "") for key in FILTERS},
        ordering=ordering,
        columns=columns,
        tags=tags,
        strategies=strategies,
        types=TYPES,
        upload_errors=upload_errors or [],
        max_upload_mb=settings.SIGMASIGHT_UPLOAD_MAX_BYTES // (1024 * 1024),
    )
    return context, status


@signed_in
def positions(request: HttpRequest, portfolio_id: int) -> HttpResponse:
    context, status = _positions_context(request, portfolio_id)
    template = "web/partials/positions_table.html" if request.htmx else "web/positions.html"  # type: ignore[attr-defined]
    return render(request, template, context, status=status)


@signed_in
@require_POST
def upload(request: HttpRequest, portfolio_id: int) -> HttpResponse:
    """The API's upload: 400 with every row's error and nothing written, or the counts."""
    limit_uploads(request, settings.SIGMASIGHT_UPLOAD_MAX_BYTES)
    try:
        files = request.FILES
        form = {"mode": request.POST.get("mode", "append")}
    except PayloadTooLarge as exc:
        context, _ = _positions_context(request, portfolio_id, [{"message": exc.message}])
        return render(request, "web/positions.html", context, status=413)
    answer = api(
        request,
        f"/api/v1/portfolios/{portfolio_id}/upload/",
        method="POST",
        form=form,
        files=files,
    )
    if answer.status == 404:
        data(answer)
    if not answer.ok:
        error = answer.error
        rows = list((error.get("fields") or {}).get("rows") or [])
        other = [
            {"column": field, "message": " ".join(map(str, messages_))}
            for field, messages_ in (error.get("fields") or {}).items()
            if field != "rows"
        ]
        errors = rows + other or [{"message": first_error(answer)}]
        context, _ = _positions_context(request, portfolio_id, errors)
        context["upload_message"] = first_error(answer)
        return render(request, "web/positions.html", context, status=answer.status)
    result = answer.data
    messages.success(
        request,
        f"Uploaded: {result['created']} created, {result['updated']} updated, "
        f"{result['total']} positions in the file.",
    )
    return redirect(reverse("web:positions", args=[portfolio_id]))


@signed_in
def export(request: HttpRequest, portfolio_id: int) -> HttpResponse:
    """The API's export, re-importable (the upload's format)."""
    answer = api(request, f"/api/v1/portfolios/{portfolio_id}/export/", {"format": "csv"})
    if not answer.ok:
        data(answer)
    return answer.response
