"""One structured `sigmasight.request` line per request, with a request id the response echoes."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import pytest

from sigmasight.logging import JsonFormatter
from sigmasight.middleware import request_id_from

pytestmark = pytest.mark.django_db

HEX_ID = re.compile(r"[0-9a-f]{32}")


@pytest.fixture
def request_log(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> pytest.LogCaptureFixture:
    """caplog listens on the root logger; the request logger only writes to its own handler."""
    monkeypatch.setattr(logging.getLogger("sigmasight.request"), "propagate", True)
    caplog.set_level(logging.INFO, logger="sigmasight.request")
    return caplog


def _lines(caplog: pytest.LogCaptureFixture) -> list[Any]:
    """The request log's records (Any: they carry the middleware's extra attributes)."""
    return [r for r in caplog.records if r.name == "sigmasight.request"]


def test_one_line_per_request_with_id_user_method_path_status_and_duration(
    auth_client, user, request_log
):
    response = auth_client.get("/api/v1/auth/me/", {"secret": "not-logged"})
    assert response.status_code == 200
    [line] = _lines(request_log)
    assert HEX_ID.fullmatch(response["X-Request-ID"])
    assert line.request_id == response["X-Request-ID"]
    assert line.user_id == user.pk
    assert (line.method, line.path, line.status) == ("GET", "/api/v1/auth/me/", 200)
    assert isinstance(line.duration_ms, float) and line.duration_ms >= 0
    assert line.levelno == logging.INFO
    assert "not-logged" not in line.getMessage()


def test_the_line_is_one_json_object_in_production_format(auth_client, user, request_log):
    auth_client.post("/api/v1/portfolios/", {"name": "Book"}, format="json")
    [line] = _lines(request_log)
    text = JsonFormatter().format(line)
    assert "\n" not in text
    payload = json.loads(text)
    assert payload["logger"] == "sigmasight.request"
    assert {k: payload[k] for k in ("method", "path", "status", "user_id")} == {
        "method": "POST",
        "path": "/api/v1/portfolios/",
        "status": 201,
        "user_id": user.pk,
    }
    assert HEX_ID.fullmatch(payload["request_id"])
    assert payload["duration_ms"] >= 0


def test_every_request_gets_a_fresh_id(api_client, request_log):
    first = api_client.get("/api/v1/health/")["X-Request-ID"]
    second = api_client.get("/api/v1/health/")["X-Request-ID"]
    assert first != second
    assert [line.request_id for line in _lines(request_log)] == [first, second]


@pytest.mark.parametrize("incoming", ["abc-123", "0b4c8f1e.trace_7", "A" * 64])
def test_a_sane_incoming_request_id_is_kept(api_client, request_log, incoming):
    response = api_client.get("/api/v1/health/", HTTP_X_REQUEST_ID=incoming)
    assert response["X-Request-ID"] == incoming
    assert _lines(request_log)[0].request_id == incoming


@pytest.mark.parametrize(
    "incoming",
    ["", "has space", "A" * 65, "-leading-dash", 'quote"d', "new\\nline", "<script>", "é"],
)
def test_anything_else_is_replaced_by_a_new_id(api_client, request_log, incoming):
    response = api_client.get("/api/v1/health/", HTTP_X_REQUEST_ID=incoming)
    assert HEX_ID.fullmatch(response["X-Request-ID"])
    assert _lines(request_log)[0].request_id == response["X-Request-ID"]


def test_request_id_from_rejects_control_characters():
    assert HEX_ID.fullmatch(request_id_from("ok\r\nSet-Cookie: x=1"))
    assert HEX_ID.fullmatch(request_id_from(None))


@pytest.mark.parametrize(
    ("path", "status"),
    [("/api/v1/auth/me/", 401), ("/api/v1/no-such-thing/", 404), ("/admin/login/", 200)],
)
def test_anonymous_failures_and_non_api_pages_are_logged_too(api_client, request_log, path, status):
    response = api_client.get(path)
    assert response.status_code == status
    [line] = _lines(request_log)
    assert (line.path, line.status, line.user_id) == (path, status, None)
    assert line.request_id == response["X-Request-ID"]


@pytest.mark.urls("sigmasight.tests.urls_errors")
def test_a_server_error_is_logged_with_its_status(api_client, request_log):
    response = api_client.get("/fail/crash/")
    assert response.status_code == 500
    [line] = _lines(request_log)
    assert line.status == 500
    assert line.request_id == response["X-Request-ID"]


def test_the_request_logger_is_configured_at_info(settings):
    config = settings.LOGGING["loggers"]["sigmasight.request"]
    assert config["level"] == "INFO"
    assert config["handlers"] == ["console"]
