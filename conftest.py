"""Shared fixtures: users, API clients, the marker rules (postgres, redis), the network guard, a
database for module-scoped data, and what the tests of several apps share (the two books of the
batch tests, the test database as a subprocess sees it).

This file belongs to no app, so it may use any of them; the helpers that are not fixtures live
in the lowest app that can hold them (`sigmasight/tests/helpers.py`, `<app>/tests/helpers.py`)."""

from __future__ import annotations

import ipaddress
import socket
import sqlite3
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from importlib import import_module
from pathlib import Path

import pytest
from django.apps import apps
from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.test import override_settings
from rest_framework.test import APIClient

from analytics.models import FactorDefinition
from analytics.tests.helpers import SERIES
from marketdata.calendar import sessions_back
from marketdata.providers.synthetic import SyntheticProvider
from marketdata.services import prices_fetch_and_cache
from portfolios.tests.factories import PortfolioFactory, option, stock
from sigmasight import celery_app
from sigmasight.accounts.tests.factories import UserFactory
from sigmasight.tests.helpers import client_for
from stress.library import load_library


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


@pytest.fixture
def auth_client(user) -> APIClient:
    return client_for(user)


@pytest.fixture
def other_client(other_user) -> APIClient:
    return client_for(other_user)


@pytest.fixture
def staff_client(staff_user) -> APIClient:
    return client_for(staff_user)


@pytest.fixture(scope="module")
def module_no_network() -> Iterator[None]:
    """The network guard for a module-scoped fixture (`_no_network` guards each test)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("socket.getaddrinfo", _guarded_getaddrinfo)
        patch.setattr("socket.socket.connect", _guarded_connect)
        yield


@pytest.fixture(scope="module")
def module_database(django_db_setup, django_db_blocker, module_no_network) -> Iterator[None]:
    """For a module-scoped fixture that builds data once (the demo, say): the database unblocked,
    the network guard on, the synthetic market forced (a POLYGON_API_KEY in the environment
    changes nothing), and everything rolled back when the module is done."""
    with (
        django_db_blocker.unblock(),
        override_settings(SIGMASIGHT_MARKET_DATA_SOURCE="synthetic"),
    ):
        atomic = transaction.atomic()
        atomic.__enter__()
        try:
            yield
        finally:
            transaction.set_rollback(True)
            atomic.__exit__(None, None, None)


# --- the batch tests: two books, and the database a subprocess sees ---------------------------


@pytest.fixture
def batch_session() -> date:
    """The session the batch tests run."""
    return date(2026, 11, 20)


@pytest.fixture
def books(user, other_user, batch_session):
    first = PortfolioFactory(owner=user, cash=Decimal("100000"))
    stock(first, "AAPL", "100")
    option(first, "AAPL", date(2027, 1, 15), "C", "550", "-1")
    second = PortfolioFactory(owner=other_user, cash=Decimal("50000"))
    stock(second, "JPM", "-50")
    stock(second, "KO", "200")
    # The market-data job fetches through the configured chain (synthetic here); preload the
    # year of history the factor window needs so the test stays fast.
    start = sessions_back(batch_session, 270)[0]
    prices_fetch_and_cache(
        symbols=["AAPL", "JPM", "KO", *SERIES],
        start=start,
        end=batch_session,
        providers=[SyntheticProvider()],
    )
    return first, second


class SharedDatabase:
    """The test database for a subprocess: PostgreSQL's test database itself; SQLite's (in
    memory, private to this process) copied to a file with `export()` before the subprocess
    starts and copied back with `absorb()` once it has exited."""

    def __init__(self, tmp_path: Path) -> None:
        db = connection.settings_dict
        self.sqlite = connection.vendor == "sqlite"
        self.path = tmp_path / "shared.sqlite3"
        self.url = (
            f"sqlite:///{self.path}"
            if self.sqlite
            else f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
        )

    def export(self) -> None:
        if self.sqlite:
            connection.ensure_connection()
            with sqlite3.connect(self.path) as target:
                connection.connection.backup(target)

    def absorb(self) -> None:
        if self.sqlite:
            with sqlite3.connect(self.path) as source:
                source.backup(connection.connection)


def reference_data_ensure() -> None:
    """What the data migrations seeded (the factors, and so the scenario library), seeded again
    when an earlier transactional test's flush took it."""
    if not FactorDefinition.objects.exists():
        for migration in ("0003_seed_factors", "0004_macro_factors"):
            import_module(f"analytics.migrations.{migration}").seed(apps, None)
        load_library()


@pytest.fixture
def reference_data(transactional_db) -> None:
    """For a transactional test (committed data, a live server): the migrations' seed data."""
    reference_data_ensure()


@pytest.fixture
def shared_database(transactional_db, tmp_path) -> SharedDatabase:
    """Needs committed data (transactional_db): a subprocess never sees this test's transaction."""
    reference_data_ensure()
    return SharedDatabase(tmp_path)
