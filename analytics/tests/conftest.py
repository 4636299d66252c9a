"""Fixtures of the batch tests: two books with a year of synthetic history, and the test database
as a subprocess (a worker, a killed `run_batch`) sees it."""

from __future__ import annotations

import sqlite3
from datetime import date
from decimal import Decimal
from importlib import import_module
from pathlib import Path

import pytest
from django.apps import apps
from django.db import connection

from marketdata.calendar import sessions_back
from marketdata.providers.synthetic import SyntheticProvider
from marketdata.services import prices_fetch_and_cache
from portfolios.tests.factories import PortfolioFactory, option, stock

SERIES = ["SPY", "VTV", "VUG", "MTUM", "QUAL", "SIZE", "USMV", "US10Y", "US3M", "USO", "GLD", "EWG",
          "EEM", "FXI", "VIXY", "HYG", "JETS", "XLK"]  # fmt: skip


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
            f"sqlite:///{self.path}" if self.sqlite
            else f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
        )  # fmt: skip

    def export(self) -> None:
        if self.sqlite:
            connection.ensure_connection()
            with sqlite3.connect(self.path) as target:
                connection.connection.backup(target)

    def absorb(self) -> None:
        if self.sqlite:
            with sqlite3.connect(self.path) as source:
                source.backup(connection.connection)


@pytest.fixture
def shared_database(transactional_db, tmp_path) -> SharedDatabase:
    """Needs committed data (transactional_db): a subprocess never sees this test's transaction.
    An earlier transactional test's flush took what the data migrations seeded (the factors, and
    so the scenario library): seeded again."""
    from analytics.models import FactorDefinition
    from stress.library import load_library

    if not FactorDefinition.objects.exists():
        for migration in ("0003_seed_factors", "0004_macro_factors"):
            import_module(f"analytics.migrations.{migration}").seed(apps, None)
        load_library()
    return SharedDatabase(tmp_path)
