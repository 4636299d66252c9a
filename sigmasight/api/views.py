"""Plain Django views that answer in the error envelope (unknown paths, server errors)."""

from __future__ import annotations

import sys

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from sigmasight.api.errors import DATABASE_RETRY_AFTER, DATABASE_UNAVAILABLE, error_response
from sigmasight.exceptions import PayloadTooLarge


@csrf_exempt  # the catch-all answers every method: a 404, never Django's CSRF page
def not_found(
    request: HttpRequest, exception: Exception | None = None, **kwargs: object
) -> JsonResponse:
    return error_response(404, "not_found", "No such resource.")


def server_error(request: HttpRequest) -> JsonResponse:
    """Django's handler500: an exception no view handled (the admin, middleware, a session
    lookup). A database outage there is still a 503 in the envelope, as in the API's handler."""
    exc = sys.exc_info()[1]
    if isinstance(exc, PayloadTooLarge):  # an upload refused while read (e.g. the admin's import)
        return error_response(413, "payload_too_large", exc.message)
    if isinstance(exc, (OperationalError, InterfaceError)):
        response = error_response(503, DATABASE_UNAVAILABLE[0], DATABASE_UNAVAILABLE[1])
        response["Retry-After"] = DATABASE_RETRY_AFTER
        return response
    return error_response(500, "server_error")


def bad_request(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return error_response(400, "bad_request")


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return error_response(403, "permission_denied")
