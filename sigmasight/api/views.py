"""Plain Django views that answer in the error envelope (unknown paths, server errors)."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse

from sigmasight.api.errors import error_response


def not_found(
    request: HttpRequest, exception: Exception | None = None, **kwargs: object
) -> JsonResponse:
    return error_response(404, "not_found", "No such resource.")


def server_error(request: HttpRequest) -> JsonResponse:
    return error_response(500, "server_error")


def bad_request(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return error_response(400, "bad_request")


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return error_response(403, "permission_denied")
