"""What-if: open a session, add and remove trades, before / after / change, the portfolio's limits
before and after, hedge suggestions to apply, the trades exported as CSV or FIX."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from modeling.services import TARGETS
from modeling.web.bridge import api
from modeling.web.common import book_context, data, first_error, signed_in

TRADE_FIELDS = ("symbol", "quantity", "price", "option_type", "strike", "expiration", "underlying")
ROWS = [  # what the before / after / change table shows: (label, path in a state, kind)
    ("Equity", ("equity",), "money"),
    ("Gross exposure", ("exposures", "gross"), "money"),
    ("Net exposure", ("exposures", "net"), "money"),
    ("Long exposure", ("exposures", "long"), "money"),
    ("Short exposure", ("exposures", "short"), "money"),
    ("Delta", ("greeks", "delta"), "num"),
    ("Dollar delta", ("greeks", "dollar_delta"), "money"),
    ("Gamma", ("greeks", "gamma"), "num"),
    ("Vega", ("greeks", "vega"), "num"),
    ("Theta", ("greeks", "theta"), "num"),
]


def _at(state: dict[str, Any] | None, path: tuple[str, ...]) -> Any:
    value: Any = state
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def impact_rows(impacts: dict[str, Any]) -> list[dict[str, Any]]:
    rows = [
        {
            "label": label,
            "field": ".".join(path),
            "kind": kind,
            "before": _at(impacts["before"], path),
            "after": _at(impacts["after"], path),
            "change": _at(impacts["change"], path),
        }
        for label, path, kind in ROWS
    ]
    var: dict[str, dict[str, Any]] = {
        side: next(iter(impacts[side].get("var") or []), {})
        for side in ("before", "after", "change")
    }
    for key, label in (("var_historical", "Historical VaR 95%"), ("expected_shortfall", "ES 95%")):
        rows.append(
            {
                "label": label,
                "field": f"var.0.{key}",
                "kind": "money",
                **{s: var[s].get(key) for s in var},
            }
        )
    return rows


def _sessions(request: HttpRequest, portfolio_id: int) -> list[dict[str, Any]]:
    listed = data(api(request, "/api/v1/modeling/sessions/", {"page_size": 500, "ordering": "-id"}))
    return [s for s in listed["results"] if s["portfolio"] == portfolio_id]


@signed_in
def whatif(request: HttpRequest, portfolio_id: int, session_id: int | None = None) -> HttpResponse:
    context = book_context(request, portfolio_id, "whatif")
    sessions = _sessions(request, portfolio_id)
    if session_id is None and sessions:
        return redirect(reverse("web:whatif_session", args=[portfolio_id, sessions[0]["id"]]))
    context.update(sessions=sessions, targets=TARGETS, trade_form={}, trade_errors={})
    if session_id is not None:
        session = data(api(request, f"/api/v1/modeling/sessions/{session_id}/"))
        if session["portfolio"] != portfolio_id:
            return redirect(reverse("web:whatif_session", args=[session["portfolio"], session_id]))
        context["session"] = session
        impacts = session.get("last_impacts")
        context["impacts"] = impacts
        context["rows"] = impact_rows(impacts) if impacts else []
        target = request.GET.get("target")
        if target in TARGETS:
            query = {"target": target, "factor": request.GET.get("factor", "")}
            suggestion = api(request, f"/api/v1/modeling/sessions/{session_id}/suggestions/", query)
            context["suggestion"] = suggestion.data if suggestion.ok else None
            context["suggestion_error"] = None if suggestion.ok else first_error(suggestion)
            context["target"] = target
    return render(request, "web/whatif.html", context)


@signed_in
@require_POST
def session_open(request: HttpRequest, portfolio_id: int) -> HttpResponse:
    name = request.POST.get("name", "").strip() or "What-if"
    answer = api(
        request,
        "/api/v1/modeling/sessions/",
        method="POST",
        body={"portfolio": portfolio_id, "name": name},
    )
    if not answer.ok:
        data(answer) if answer.status == 404 else messages.error(request, first_error(answer))
        return redirect(reverse("web:whatif", args=[portfolio_id]))
    return redirect(reverse("web:whatif_session", args=[portfolio_id, answer.data["id"]]))


def _calculate(request: HttpRequest, session_id: int) -> None:
    answer = api(
        request, f"/api/v1/modeling/sessions/{session_id}/calculate/", method="POST", body={}
    )
    if not answer.ok:
        messages.error(request, first_error(answer))


@signed_in
@require_POST
def trade_add(request: HttpRequest, portfolio_id: int, session_id: int) -> HttpResponse:
    """Add the trade (the API validates it as a position row) and recalculate the impacts."""
    form = {key: request.POST.get(key, "").strip() for key in TRADE_FIELDS}
    body = {key: value for key, value in form.items() if value}
    answer = api(
        request, f"/api/v1/modeling/sessions/{session_id}/trades/", method="POST", body=body
    )
    if answer.status == 404:
        data(answer)
    if not answer.ok:
        context = book_context(request, portfolio_id, "whatif")
        session = data(api(request, f"/api/v1/modeling/sessions/{session_id}/"))
        impacts = session.get("last_impacts")
        context.update(
            sessions=_sessions(request, portfolio_id),
            session=session,
            impacts=impacts,
            rows=impact_rows(impacts) if impacts else [],
            targets=TARGETS,
            trade_form=form,
            trade_errors=answer.error.get("fields") or {"__all__": [first_error(answer)]},
        )
        return render(request, "web/whatif.html", context, status=answer.status)
    _calculate(request, session_id)
    return redirect(reverse("web:whatif_session", args=[portfolio_id, session_id]))


@signed_in
@require_POST
def trade_remove(
    request: HttpRequest, portfolio_id: int, session_id: int, trade_id: int
) -> HttpResponse:
    answer = api(
        request, f"/api/v1/modeling/sessions/{session_id}/trades/{trade_id}/", method="DELETE"
    )
    if answer.status == 404:
        data(answer)
    _calculate(request, session_id)
    return redirect(reverse("web:whatif_session", args=[portfolio_id, session_id]))


@signed_in
@require_POST
def suggestion_apply(request: HttpRequest, portfolio_id: int, session_id: int) -> HttpResponse:
    """Add the suggested hedge trades (as the API suggested them) to the session."""
    query = {"target": request.POST.get("target", ""), "factor": request.POST.get("factor", "")}
    suggestion = api(request, f"/api/v1/modeling/sessions/{session_id}/suggestions/", query)
    if suggestion.status == 404:
        data(suggestion)
    if not suggestion.ok:
        messages.error(request, first_error(suggestion))
    else:
        for trade in suggestion.data["trades"]:
            body = {
                "symbol": trade["symbol"],
                "quantity": str(trade["quantity"]),
                "price": str(trade["price"]),
            }
            added = api(
                request, f"/api/v1/modeling/sessions/{session_id}/trades/", method="POST", body=body
            )
            if not added.ok:
                messages.error(request, first_error(added))
                break
        _calculate(request, session_id)
    return redirect(reverse("web:whatif_session", args=[portfolio_id, session_id]))


@signed_in
@require_POST
def trades_export(request: HttpRequest, portfolio_id: int, session_id: int) -> HttpResponse:
    """The API's export (CSV blotter or FIX 4.4), recorded in the export history."""
    fmt = request.POST.get("format", "csv")
    answer = api(
        request,
        "/api/v1/export/trades/",
        method="POST",
        body={"session": session_id, "format": fmt},
    )
    if answer.ok:
        return answer.response
    if answer.status == 404:
        data(answer)
    messages.error(request, first_error(answer))
    return redirect(reverse("web:whatif_session", args=[portfolio_id, session_id]))
