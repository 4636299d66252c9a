"""The pages ask the API's own views, in process, for what they show.

A page names an endpoint by its API path (`/api/v1/portfolios/7/summary/`, exactly what the
external frontend calls); `api()` resolves it to the view, builds a request for the signed-in
user and runs the view's code: the same query validation, ownership check (another user's
portfolio is a 404 here as there), session resolution, API cache, selectors, services and
serializers. No HTTP, no token: the view is rebuilt once with session authentication (the page's
own session, whose CSRF check the page request already passed) and no API throttle (pages are
not API calls; sign-in keeps the login throttles, `auth.py`). So every number on a page is the
API's number for the same book, by construction, and a test compares them (tests/web).
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any, cast
from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse, QueryDict
from django.urls import resolve
from rest_framework.authentication import SessionAuthentication


@dataclass(frozen=True)
class Answer:
    status: int
    data: Any  # the body the API would send (its envelope on errors); None for files
    response: HttpResponse  # the view's own response (files: exports, report downloads)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def error(self) -> dict[str, Any]:
        """The envelope's error (`code`, `message`, `fields`), or an empty dict."""
        if self.ok or not isinstance(self.data, dict):
            return {}
        return dict(self.data.get("error") or {})


@cache
def _view(callback: Callable[..., Any]) -> Callable[..., Any]:
    """The API view behind `callback`, rebuilt for pages: session auth, no API throttle."""
    # DRF's as_view() leaves the class and its keyword arguments on the function it returns.
    cls: Any = getattr(callback, "cls")  # noqa: B009
    initkwargs = {
        **getattr(callback, "initkwargs", {}),
        "authentication_classes": [SessionAuthentication],
        "throttle_classes": [],
    }
    actions = getattr(callback, "actions", None)
    if actions is not None:  # a viewset: the same action map
        return cast("Callable[..., Any]", cls.as_view(actions, **initkwargs))
    return cast("Callable[..., Any]", cls.as_view(**initkwargs))


def _request(
    page: HttpRequest, method: str, path: str, query: Mapping[str, Any] | None
) -> HttpRequest:
    sub = HttpRequest()
    sub.method = method
    sub.path = sub.path_info = path
    sub.META = {
        key: value
        for key, value in page.META.items()
        if key in {"REMOTE_ADDR", "SERVER_NAME", "SERVER_PORT", "HTTP_HOST", "wsgi.url_scheme"}
    }
    items = [
        (key, str(v))
        for key, value in (query or {}).items()
        if value not in (None, "")
        for v in (value if isinstance(value, (list, tuple)) else [value])
    ]
    sub.GET = QueryDict(urlencode(items))
    sub.META["QUERY_STRING"] = sub.GET.urlencode()
    sub.COOKIES = page.COOKIES
    sub.session = page.session
    sub.user = page.user
    # The page request passed Django's CSRF middleware already; DRF's session check honours this.
    sub._dont_enforce_csrf_checks = True  # type: ignore[attr-defined]
    return sub


def api(
    page: HttpRequest,
    path: str,
    query: Mapping[str, Any] | None = None,
    *,
    method: str = "GET",
    body: Mapping[str, Any] | None = None,
    form: Mapping[str, Any] | None = None,
    files: Any = None,
) -> Answer:
    """Run the API view at `path` for the page's user. `body` is sent as JSON; `form` with
    `files` as a multipart form (the position upload)."""
    match = resolve(path)
    sub = _request(page, method, path, query)
    if body is not None:
        raw = json.dumps(body).encode()
        sub.META.update(CONTENT_TYPE="application/json", CONTENT_LENGTH=str(len(raw)))
        sub._body = raw  # read by the view's JSON parser
        sub._stream = io.BytesIO(raw)
        sub._read_started = False  # type: ignore[attr-defined]
    elif files is not None:
        # Django parsed the page's multipart body already: the view takes the parsed form
        # (DRF falls back to request.POST/FILES when the stream was read).
        sub.META.update(CONTENT_TYPE="multipart/form-data; boundary=page", CONTENT_LENGTH="1")
        sub.POST = sub._post = QueryDict(urlencode(dict(form or {})))  # type: ignore[attr-defined]
        sub.FILES = sub._files = files  # type: ignore[attr-defined]
        sub._read_started = True  # type: ignore[attr-defined]
    response = _view(match.func)(sub, *match.args, **match.kwargs)
    data = getattr(response, "data", None)
    return Answer(status=response.status_code, data=data, response=response)
