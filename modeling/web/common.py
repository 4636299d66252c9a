"""What every page shares: who is signed in, their portfolios, the chosen one, errors."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse

from modeling.web.bridge import Answer, api

PageView = Callable[..., HttpResponse]


class PageNotFound(Exception):
    """Raised by a page when the API said 404: the page answers its own 404."""


def not_found(request: HttpRequest) -> HttpResponse:
    return render(request, "web/not_found.html", {"signed_in": True}, status=404)


def data(answer: Answer) -> Any:
    """The body of a read the page cannot do without (a 404 becomes the page's 404)."""
    if answer.status == 404:
        raise PageNotFound
    if not answer.ok:
        raise RuntimeError(f"the API answered {answer.status}: {answer.error}")
    return answer.data


def portfolios_of(request: HttpRequest) -> list[dict[str, Any]]:
    return list(data(api(request, "/api/v1/portfolios/", {"page_size": 500}))["results"])


def signed_in(view: PageView) -> PageView:
    """Signed-in users only (others go to the sign-in page); a 404 from the API is the page's."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path(), reverse("web:signin"))
        try:
            return view(request, *args, **kwargs)
        except PageNotFound:
            return not_found(request)

    return wrapper


def staff_only(view: PageView) -> PageView:
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_staff:  # signed_in runs first
            return not_found(request)
        return view(request, *args, **kwargs)

    return signed_in(wrapper)


def book_context(request: HttpRequest, portfolio_id: int, section: str) -> dict[str, Any]:
    """The navigation's portfolios, the chosen one (another user's: the page's 404), its summary
    and the data-quality banner every page of the book carries."""
    portfolios = portfolios_of(request)
    chosen = next((p for p in portfolios if p["id"] == portfolio_id), None)
    if chosen is None:
        raise PageNotFound
    summary = data(api(request, f"/api/v1/portfolios/{portfolio_id}/summary/"))
    return {
        "portfolios": portfolios,
        "portfolio": chosen,
        "section": section,
        "summary": summary,
        "warnings": quality_warnings(summary.get("data_quality")),
    }


def quality_warnings(quality: dict[str, Any] | None) -> list[str]:
    """What the banner says about the data a result rests on (nothing when all is real and
    fresh)."""
    if not quality:
        return []
    warnings = []
    if quality.get("source") == "synthetic":
        warnings.append(
            "Synthetic prices: these numbers come from generated demo series, not from a market."
        )
    elif quality.get("mixed") or quality.get("source") == "mixed":
        warnings.append("Mixed sources: real book prices meet synthetic series in these results.")
    if quality.get("stale"):
        warnings.append("Stale prices: some prices are older than the session shown.")
    if quality.get("fallbacks"):
        warnings.append(f"{quality['fallbacks']} option(s) priced with a default volatility.")
    if quality.get("missing_greeks"):
        warnings.append(f"{quality['missing_greeks']} option(s) have no Greeks for this session.")
    return warnings


def first_error(answer: Answer) -> str:
    error = answer.error
    return str(error.get("message") or f"The request failed ({answer.status}).")
