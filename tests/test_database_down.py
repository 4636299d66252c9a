"""The database going away under a running server: 503 in the envelope on every kind of path (API,
login, admin, health), never a crash or a 500, nothing half-written, and service back by itself
when the database returns.

A real gunicorn serves the committed test database. On PostgreSQL it connects through a TCP proxy
that the test cuts (every open connection reset, new ones refused) and restores; SQLite, being a
file, cannot go away under an open connection, so its server is given a database file it cannot
open, which raises the same OperationalError.
"""

from __future__ import annotations

import http.client
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.db import connection
from rest_framework_simplejwt.tokens import RefreshToken

from portfolios.models import Portfolio
from sigmasight.accounts.tests.factories import DEFAULT_PASSWORD, UserFactory
from sigmasight.servers import gunicorn
from sigmasight.tests.faultproxy import FaultProxy


def _call(
    port: int,
    method: str,
    path: str,
    body: dict | None = None,
    token: str | None = None,
    cookie: str | None = None,
):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if cookie:
            headers["Cookie"] = cookie
        conn.request(method, path, json.dumps(body) if body is not None else None, headers)
        response = conn.getresponse()
        raw = response.read()
        kind = response.getheader("Content-Type") or ""
        return response.status, (json.loads(raw) if "json" in kind and raw else raw), response
    finally:
        conn.close()


@contextmanager
def _server(database_url: str, log: Path) -> Iterator[int]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "sigmasight.settings.test",
        "DATABASE_URL": database_url,
        "DB_TIMEOUT_SECONDS": "2",
    }
    with gunicorn(env, workers=1, log=log) as port:
        yield port


def _assert_unavailable(status: int, body: object, response) -> None:
    assert status == 503, body
    assert body == {
        "error": {
            "code": "database_unavailable",
            "message": "The database is unavailable; try again shortly.",
            "fields": {},
        }
    }
    assert response.getheader("Retry-After") == "30"
    assert response.getheader("X-Request-ID")


def _assert_every_path_unavailable(port: int, token: str | None, email: str) -> None:
    # An authenticated read (the JWT's user is looked up), a write, login, the admin (plain
    # Django views, sessions), and health (which reports the database down).
    _assert_unavailable(*_call(port, "GET", "/api/v1/portfolios/", token=token))
    _assert_unavailable(
        *_call(port, "POST", "/api/v1/portfolios/", {"name": "During the outage"}, token=token)
    )
    _assert_unavailable(
        *_call(port, "POST", "/api/v1/auth/login/", {"email": email, "password": DEFAULT_PASSWORD})
    )
    # A staff member's session cookie: the admin looks the session up before any view runs.
    _assert_unavailable(
        *_call(port, "GET", "/admin/", cookie="sessionid=abcdefghijklmnopqrstuvwxyz012345")
    )
    status, body, _ = _call(port, "GET", "/api/v1/health/")
    assert status == 503
    assert body["database"] == "down"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_postgres_going_away_is_503_and_service_returns_with_it(tmp_path):
    user = UserFactory()
    db = connection.settings_dict
    proxy = FaultProxy(db["HOST"] or "127.0.0.1", int(db["PORT"] or 5432)).start()
    url = f"postgres://{db['USER']}@127.0.0.1:{proxy.port}/{db['NAME']}"
    try:
        with _server(url, tmp_path / "gunicorn.log") as port:
            login = {"email": user.email, "password": DEFAULT_PASSWORD}
            status, body, _ = _call(port, "POST", "/api/v1/auth/login/", login)
            assert status == 200, body
            token = body["access"]
            status, body, _ = _call(port, "POST", "/api/v1/portfolios/", {"name": "Before"}, token)
            assert status == 201, body

            proxy.cut()  # the server's open connection is reset; new ones are refused
            started = time.monotonic()
            _assert_every_path_unavailable(port, token, user.email)
            assert time.monotonic() - started < 30  # each answer within the connect timeout

            proxy.restore()
            status, body, _ = _call(port, "GET", "/api/v1/portfolios/", token=token)
            assert status == 200, body
            assert [p["name"] for p in body["results"]] == ["Before"]  # nothing half-written
            status, _, _ = _call(port, "GET", "/api/v1/health/")
            assert status == 200
    finally:
        proxy.cut()
    assert list(Portfolio.objects.values_list("name", flat=True)) == ["Before"]


@pytest.mark.django_db
def test_sqlite_database_that_cannot_be_opened_is_503(tmp_path):
    user = UserFactory()  # in the test's database: the server only sees its token
    token = str(RefreshToken.for_user(user).access_token)
    missing = tmp_path / "no-such-directory" / "sigmasight.sqlite3"
    with _server(f"sqlite:///{missing}", tmp_path / "gunicorn.log") as port:
        _assert_every_path_unavailable(port, token, user.email)
    assert not missing.exists()
