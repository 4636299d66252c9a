"""Request middleware: a request id on every request and one structured log line per request.

The id is the caller's `X-Request-ID` when it is a sane token (a proxy or the frontend chose it,
so their logs and ours join up), else a fresh one. It is stored as `request.request_id` (DRF's
Request proxies it, the audit trail records it) and returned as the `X-Request-ID` header.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.middleware.gzip import GZipMiddleware

logger = logging.getLogger("sigmasight.request")

REQUEST_ID_HEADER = "X-Request-ID"
# Letters, digits and . _ - only, at most 64 characters: safe in a log line and a header, and
# nothing a client can use to forge log fields or split a response.
_SANE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def request_id_from(incoming: str | None) -> str:
    """The caller's id when it is a sane token, else a new random one (32 hex digits)."""
    if incoming and _SANE_ID.fullmatch(incoming):
        return incoming
    return uuid.uuid4().hex


def _user_id(request: HttpRequest) -> int | None:
    # DRF's Request writes the user it authenticated (JWT) back onto the HttpRequest; reading it
    # only after the view ran means no extra query for requests that never authenticated.
    user = request.__dict__.get("user")
    if user is None:
        return None
    try:
        return user.pk if user.is_authenticated else None
    except Exception:  # noqa: BLE001 - a lazy session user whose lookup failed: no id to log
        return None


class RequestLogMiddleware:
    """Outermost middleware: times the whole stack and logs `sigmasight.request` once."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = request_id_from(request.headers.get(REQUEST_ID_HEADER))
        request.request_id = request_id  # type: ignore[attr-defined]  # read by the audit log
        started = time.perf_counter()
        response = self.get_response(request)
        duration_ms = round((time.perf_counter() - started) * 1000, 2)
        response[REQUEST_ID_HEADER] = request_id
        # The server's own time, for browsers' dev tools and the load test (`make load`).
        response["Server-Timing"] = f"app;dur={duration_ms}"
        fields = {
            "request_id": request_id,
            "user_id": _user_id(request),
            "method": request.method,
            "path": request.path,
            "status": response.status_code,
            "duration_ms": duration_ms,
        }
        logger.info(
            "%s %s %s %.1fms",
            request.method,
            request.path,
            response.status_code,
            duration_ms,
            extra=fields,
        )
        return response


class JSONGZipMiddleware(GZipMiddleware):
    """Django's GZipMiddleware for JSON bodies of at least `min_length` bytes only.

    Below about 1 KB gzip saves too little to pay for itself; CSV exports, files and static
    assets (WhiteNoise serves its own precompressed copies) are left alone. BREACH needs a secret
    reflected in a compressed body next to attacker-controlled input: the API authenticates with
    a JWT bearer header, not cookies with CSRF tokens in bodies, and Django adds random padding
    (`max_random_bytes`) to every gzipped body besides.
    """

    min_length = 1024

    def process_response(
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        content_type = response.get("Content-Type", "").split(";")[0].strip().lower()
        is_json = content_type == "application/json" or content_type.endswith("+json")
        if (
            response.streaming
            or not isinstance(response, HttpResponse)
            or not is_json
            or len(response.content) < self.min_length
        ):
            return response
        return super().process_response(request, response)


class NulQueryMiddleware:
    """A query parameter (name or value) holding a NUL character is refused (400 in the error
    envelope) before any view runs: PostgreSQL text cannot hold NUL, so such a filter would fail
    in the database (a 500) where SQLite would merely match nothing. Bodies are validated by
    their serializers (DRF's CharField refuses NUL)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        bad = sorted(
            {key for key, values in request.GET.lists() for v in [key, *values] if "\x00" in v}
        )
        if bad:
            from sigmasight.api.errors import envelope

            message = "Query parameters must not contain NUL characters."
            fields = {key.replace("\x00", "\\x00"): [message] for key in bad}
            return JsonResponse(envelope("validation_error", message, fields), status=400)
        return self.get_response(request)
