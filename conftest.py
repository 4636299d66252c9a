"""Shared fixtures: users, API clients and the marker rules (postgres, redis)."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from sigmasight import celery_app
from sigmasight.accounts.tests.factories import UserFactory


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    on_postgres = settings.DATABASES["default"]["ENGINE"].endswith("postgresql")
    for item in items:
        if "postgres" in item.keywords and not on_postgres:
            item.add_marker(pytest.mark.skip(reason="needs PostgreSQL (DATABASE_URL)"))
        if "redis" in item.keywords and not settings.REDIS_URL:
            item.add_marker(pytest.mark.skip(reason="needs Redis (REDIS_URL)"))


_real_getaddrinfo = socket.getaddrinfo
_real_connect = socket.socket.connect
_LOCAL_NAMES = {"localhost", "testserver"}


def _is_loopback(host: object) -> bool:
    if not isinstance(host, str):
        return False
    if host in _LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def _guarded_getaddrinfo(host, *args, **kwargs):
    if host is not None and not _is_loopback(host):
        raise OSError(f"test tried to resolve {host!r}: tests never leave this machine")
    return _real_getaddrinfo(host, *args, **kwargs)


def _guarded_connect(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address[0]):
        raise OSError(f"test tried to connect to {address!r}: tests never leave this machine")
    return _real_connect(self, address)


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Polygon and Yahoo are never called: any non-loopback connection fails the test."""
    monkeypatch.setattr(socket, "getaddrinfo", _guarded_getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", _guarded_connect)


@pytest.fixture(autouse=True)
def _clear_cache() -> None:
    # Throttle counters live in the cache; a test must not inherit another's requests.
    cache.clear()


@pytest.fixture
def eager_celery() -> Iterator[None]:
    """Run tasks in-process for this test even when REDIS_URL points at a broker."""
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = previous


@pytest.fixture
def vendor() -> str:
    return connection.vendor


@pytest.fixture
def user(db):
    return UserFactory()


@pytest.fixture
def other_user(db):
    """The second user of every API test: must never see `user`'s data."""
    return UserFactory()


@pytest.fixture
def staff_user(db):
    return UserFactory(is_staff=True)


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


def client_for(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
    return client


@pytest.fixture
def auth_client(user) -> APIClient:
    return client_for(user)


@pytest.fixture
def other_client(other_user) -> APIClient:
    return client_for(other_user)


@pytest.fixture
def staff_client(staff_user) -> APIClient:
    return client_for(staff_user)


@contextmanager
def module_database(django_db_blocker) -> Iterator[None]:
    """For a module-scoped fixture that builds data once (the demo, say): the database unblocked,
    the network guard on, the synthetic market forced (a POLYGON_API_KEY in the environment
    changes nothing), and everything rolled back when the module is done."""
    from django.db import transaction
    from django.test import override_settings

    with (
        django_db_blocker.unblock(),
        pytest.MonkeyPatch.context() as patch,
        override_settings(SIGMASIGHT_MARKET_DATA_SOURCE="synthetic"),
    ):
        patch.setattr("socket.getaddrinfo", _guarded_getaddrinfo)
        patch.setattr("socket.socket.connect", _guarded_connect)
        atomic = transaction.atomic()
        atomic.__enter__()
        try:
            yield
        finally:
            transaction.set_rollback(True)
            atomic.__exit__(None, None, None)
