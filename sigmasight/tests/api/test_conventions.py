"""API conventions every endpoint inherits: envelope, auth, pagination, throttling."""

from __future__ import annotations

import re

import pytest
from django.test import override_settings
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from sigmasight.api.pagination import StandardPagination
from sigmasight.tests.helpers import assert_envelope
from sigmasight.tests.routes import PUBLIC

pytestmark = pytest.mark.django_db


def _api_routes() -> list[str]:
    """Every concrete API path in the URL configuration, ids filled with 1."""
    routes: list[str] = []

    def walk(patterns: list, prefix: str) -> None:
        for pattern in patterns:
            text = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, text)
            elif isinstance(pattern, URLPattern):
                routes.append(text)

    walk(get_resolver().url_patterns, "/")
    paths = []
    for route in routes:
        if not route.startswith("/api/") or route.startswith("/api/^"):
            continue
        route = re.sub(r"\(\?P<\w+>[^)]*\)", "1", route)  # routers' regex ids: (?P<pk>[^/.]+)
        route = re.sub(r"<(?:\w+:)?(\w+)>", "1", route)
        route = route.replace("^", "").replace("$", "")
        if "(" in route or "\\" in route:
            continue  # format-suffix regex variants duplicate the plain route
        paths.append(route)
    return sorted(set(paths))


def test_route_walk_finds_the_auth_routes():
    routes = _api_routes()
    assert "/api/v1/auth/me/" in routes
    assert "/api/v1/auth/logout/" in routes
    assert "/api/v1/portfolios/1/upload/" in routes
    assert "/api/v1/modeling/sessions/1/trades/1/" in routes


def test_every_protected_route_answers_401_in_envelope_without_token(api_client):
    protected = [route for route in _api_routes() if route not in PUBLIC]
    assert protected
    for route in protected:
        for method in ("get", "post", "put", "patch", "delete"):
            response = getattr(api_client, method)(route)
            assert_envelope(response, 401, "not_authenticated")
            assert response["WWW-Authenticate"].startswith("Bearer")


def test_public_routes_need_no_token(api_client):
    assert api_client.get("/api/v1/health/").status_code == 200
    assert api_client.get("/api/schema/").status_code == 200
    assert api_client.get("/api/docs/").status_code == 200


def test_malformed_json_is_400_in_envelope(api_client):
    response = api_client.post(
        "/api/v1/auth/login/",
        data='{"email": "a@b.c", "password": ',
        content_type="application/json",
    )
    error = assert_envelope(response, 400, "parse_error")
    assert "JSON" in error["message"]


def test_unsupported_media_type_is_415_in_envelope(api_client):
    response = api_client.post("/api/v1/auth/login/", data="<x/>", content_type="application/xml")
    assert_envelope(response, 415, "unsupported_media_type")


def test_wrong_method_is_405_in_envelope(auth_client):
    assert_envelope(auth_client.delete("/api/v1/auth/me/"), 405, "method_not_allowed")


@pytest.mark.parametrize(
    "path", ["/api/v1/no-such-thing/", "/api/v2/auth/me/", "/not-an-api-path/"]
)
def test_unknown_path_is_404_in_envelope(api_client, path):
    assert_envelope(api_client.get(path), 404, "not_found")


@pytest.mark.parametrize(
    "query",
    ["tag=%00", "tag=a,%00b", "symbol=AA%00PL", "portfolio=1&by=strategy&tag%00=x"],
)
def test_a_nul_in_a_query_parameter_is_400_not_500(auth_client, query):
    # Found by the fuzz run on PostgreSQL, whose text cannot hold NUL (SQLite matched nothing).
    for path in ("/api/v1/positions/", "/api/v1/positions/grouped/"):
        response = auth_client.get(f"{path}?{query}")
        error = assert_envelope(response, 400, "validation_error")
        assert error["message"] == "Query parameters must not contain NUL characters."
        assert b"\\u0000" not in response.content  # the field names are shown escaped
        assert response["X-Content-Type-Options"] == "nosniff"


@pytest.mark.urls("sigmasight.tests.urls_errors")
class TestExceptionHandler:
    def test_domain_error_keeps_its_status_code_and_fields(self, api_client):
        error = assert_envelope(api_client.get("/fail/domain/"), 422, "insufficient_history")
        assert error["fields"] == {"sessions": 12, "required": 60}

    def test_django_http404_and_permission_denied_hide_details(self, api_client):
        assert "secret" not in str(
            assert_envelope(api_client.get("/fail/http404/"), 404, "not_found")
        )
        denied = assert_envelope(api_client.get("/fail/denied/"), 403, "permission_denied")
        assert "secret" not in str(denied)

    def test_database_outage_is_503(self, api_client):
        response = api_client.get("/fail/database/")
        assert_envelope(response, 503, "database_unavailable")
        assert response["Retry-After"] == "30"

    def test_unexpected_exception_is_500_without_traceback(self, api_client, caplog):
        response = api_client.get("/fail/crash/")
        error = assert_envelope(response, 500, "server_error")
        assert "secret" not in response.content.decode()
        assert "Traceback" not in response.content.decode()
        assert error["message"] == "An unexpected error occurred."
        assert any(record.exc_info for record in caplog.records if record.name == "sigmasight.api")

    def test_validation_error_maps_fields_to_message_lists(self, api_client):
        response = api_client.post("/fail/x/", {"amount": "abc", "legs": ["x"]}, format="json")
        error = assert_envelope(response, 400, "validation_error")
        assert error["fields"]["amount"] == ["A valid number is required."]
        assert error["fields"]["legs"] == {"0": ["A valid integer is required."]}


@override_settings(SIGMASIGHT_THROTTLE_USER="3/min")
def test_user_throttle_answers_429_with_retry_after(auth_client):
    for _ in range(3):
        assert auth_client.get("/api/v1/auth/me/").status_code == 200
    response = auth_client.get("/api/v1/auth/me/")
    assert_envelope(response, 429, "throttled")
    assert int(response["Retry-After"]) > 0


@override_settings(SIGMASIGHT_THROTTLE_USER="3/min")
def test_user_throttle_is_per_user(auth_client, other_client):
    for _ in range(3):
        auth_client.get("/api/v1/auth/me/")
    assert auth_client.get("/api/v1/auth/me/").status_code == 429
    assert other_client.get("/api/v1/auth/me/").status_code == 200


def test_default_user_throttle_is_100_per_minute(settings):
    assert settings.SIGMASIGHT_THROTTLE_USER == "100/min"


@pytest.mark.parametrize(("asked", "served"), [(None, 50), ("10", 10), ("500", 500)])
def test_page_size_defaults_to_50_and_is_capped_at_500(asked, served):
    query = {} if asked is None else {"page_size": asked}
    request = Request(APIRequestFactory().get("/", query))
    assert StandardPagination().get_page_size(request) == served


def test_page_size_over_500_is_refused():
    request = Request(APIRequestFactory().get("/", {"page_size": "5000"}))
    with pytest.raises(ValidationError) as refused:
        StandardPagination().get_page_size(request)
    assert "page_size" in refused.value.detail
