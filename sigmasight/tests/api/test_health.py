from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def test_health_reports_each_dependency(api_client, settings):
    response = api_client.get("/api/v1/health/")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"status", "database", "cache", "broker", "last_batch"}
    assert body["status"] == "ok"
    assert body["database"] == "ok"
    assert body["cache"] == "ok"
    assert body["broker"] == ("eager" if settings.CELERY_TASK_ALWAYS_EAGER else "ok")
    assert body["last_batch"] is None


def test_health_broker_down_is_degraded_not_failed(api_client, settings):
    # A real broker address where nothing listens: the check must time out fast, not hang.
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    body = api_client.get("/api/v1/health/").json()
    assert body["broker"] == "down"
    assert body["status"] == "degraded"
