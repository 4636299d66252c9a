"""Every error the API returns has one shape (shared/API.md):

    {"error": {"code": "<snake_case>", "message": "<sentence>", "fields": {...}}}

DRF's own exceptions, Django's Http404/PermissionDenied, DomainError, database outages and any
unexpected exception all pass through `exception_handler`; plain Django views (unknown paths,
handler500) use `error_response` directly.
"""

from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.db import InterfaceError, OperationalError
from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

from sigmasight.exceptions import DomainError

logger = logging.getLogger("sigmasight.api")

_MESSAGES = {
    400: "The request is not valid.",
    401: "Authentication credentials were not provided or are not valid.",
    403: "You do not have permission to perform this action.",
    404: "Not found.",
    405: "Method not allowed.",
    413: "The request body is too large.",
    415: "Unsupported media type.",
    429: "Too many requests.",
    500: "An unexpected error occurred.",
    503: "A service this request depends on is unavailable.",
}


DATABASE_UNAVAILABLE = ("database_unavailable", "The database is unavailable; try again shortly.")
DATABASE_RETRY_AFTER = "30"


def envelope(code: str, message: str, fields: dict | None = None) -> dict:
    return {"error": {"code": code, "message": message, "fields": fields or {}}}


def error_response(status_code: int, code: str, message: str | None = None) -> JsonResponse:
    return JsonResponse(
        envelope(code, message or _MESSAGES.get(status_code, "Error.")), status=status_code
    )


def _flatten(detail: object) -> list[str]:
    if isinstance(detail, dict):
        return [f"{key}: {msg}" for key, value in detail.items() for msg in _flatten(value)]
    if isinstance(detail, list):
        return [msg for item in detail for msg in _flatten(item)]
    return [str(detail)]


def _fields(detail: object) -> dict:
    """Map a ValidationError's detail to `fields`: field -> list of messages (nested kept)."""

    def normalise(value: object) -> object:
        if isinstance(value, dict):
            return {key: normalise(item) for key, item in value.items()}
        if isinstance(value, list):
            if all(not isinstance(item, (dict, list)) for item in value):
                return [str(item) for item in value]
            return [normalise(item) for item in value]
        return [str(value)]

    if isinstance(detail, dict):
        return {key: normalise(value) for key, value in detail.items()}
    return {"non_field_errors": _flatten(detail)}


def _first_code(detail: object, fallback: str) -> str:
    if isinstance(detail, exceptions.ErrorDetail) and detail.code:
        return str(detail.code)
    if isinstance(detail, dict) and "code" in detail and isinstance(detail["code"], str):
        return detail["code"]
    return fallback


def exception_handler(exc: Exception, context: dict) -> Response:
    if isinstance(exc, DomainError):
        set_rollback()
        retry_after = getattr(exc, "retry_after", None)
        return Response(
            envelope(exc.code, exc.message, exc.fields),
            status=exc.status_code,
            headers={"Retry-After": str(retry_after)} if retry_after else None,
        )
    if isinstance(exc, RequestDataTooBig):
        return Response(envelope("payload_too_large", _MESSAGES[413]), status=413)
    if isinstance(exc, (OperationalError, InterfaceError)):
        set_rollback()
        logger.error("database unavailable: %s", exc, exc_info=exc)
        return Response(
            envelope(*DATABASE_UNAVAILABLE),
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": DATABASE_RETRY_AFTER},
        )
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()

    response = drf_exception_handler(exc, context)
    if response is None:
        set_rollback()
        view = context.get("view")
        logger.error("unhandled error in %s", type(view).__name__ if view else "view", exc_info=exc)
        return Response(envelope("server_error", _MESSAGES[500]), status=500)

    assert isinstance(exc, exceptions.APIException)
    if isinstance(exc, exceptions.ValidationError):
        body = envelope("validation_error", _MESSAGES[400], _fields(exc.detail))
    else:
        detail = exc.detail
        if isinstance(detail, dict):
            # simplejwt puts {"detail", "code", "messages"} in its token errors.
            message = str(detail.get("detail", _MESSAGES.get(response.status_code, "")))
            code = _first_code(detail, exc.default_code)
        else:
            message = " ".join(_flatten(detail))
            code = _first_code(detail, exc.default_code)
        body = envelope(code, message)
    response.data = body
    return response
