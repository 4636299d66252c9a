"""Counting and timing every request by the URL pattern it matched."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from sigmasight import metrics

UNMATCHED = "unmatched"
# A router's regex group, e.g. (?P<pk>[^/.]+), one level of nested parentheses allowed.
_REGEX_GROUP = re.compile(r"\(\?P<(\w+)>(?:[^()]|\([^()]*\))*\)")


def route_label(request: HttpRequest) -> str:
    """The template of the URL pattern the request matched (`/api/v1/portfolios/<pk>/`), never
    the path: ids stay out of the labels. `unmatched` when no pattern matched, or middleware
    answered before URL resolution (an HTTPS redirect, a CORS preflight, a refused query)."""
    match = getattr(request, "resolver_match", None)
    if match is None:
        return UNMATCHED
    route = _REGEX_GROUP.sub(r"<\1>", match.route.removeprefix("^").removesuffix("$"))
    return "/" + route


class MetricsMiddleware:
    """Near the outside of the stack: the time covers every middleware after it and the view
    (up to the response; a streamed body is not included)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        metrics.request_observe(
            method=request.method or "",
            route=route_label(request),
            status=response.status_code,
            seconds=time.perf_counter() - started,
        )
        return response
