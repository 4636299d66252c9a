"""The cache without Redis (sigmasight/filecache.py): Django's file-based cache in the data
directory, keyed by the database's identity and shared by every process on the machine, so a
bump in another process (a batch run by `manage.py`, another gunicorn worker) invalidates what
this one cached, and the API cache can be on in the embedded default."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from django.test import override_settings

from portfolios.tests.factories import PortfolioFactory
from sigmasight import filecache
from sigmasight.api import caching

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent


def file_cache(location: Path) -> dict:
    return {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(location),
            "KEY_FUNCTION": "sigmasight.filecache.make_key",
        }
    }


def bump_in_another_process(data_dir: Path, identity: str, portfolio_id: int) -> None:
    """A separate Python process with the embedded default's settings (no REDIS_URL: the file
    cache in `data_dir`) bumps the portfolio's generation, as a batch there would."""
    script = textwrap.dedent(
        f"""
        import django
        django.setup()
        from sigmasight import filecache
        filecache._identity = {identity!r}  # the same database as the test's
        from sigmasight.api.caching import results_changed
        results_changed([{portfolio_id}])
        """
    )
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")},
        "DJANGO_SETTINGS_MODULE": "sigmasight.settings.base",
        "SIGMASIGHT_DATA_DIR": str(data_dir),
        "SECRET_KEY": "file-cache-test-0123456789-abcdefghijklmnopqrstuvwxyz-0123456789",
        "DEBUG": "true",
    }
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]


def test_a_bump_in_another_process_invalidates_this_ones_reads(auth_client, user, tmp_path):
    portfolio = PortfolioFactory(owner=user)
    identity = filecache.database_identity()
    assert identity  # the test database is migrated: its first migration's time
    url = f"/api/v1/portfolios/{portfolio.pk}/summary/"
    with override_settings(CACHES=file_cache(tmp_path / "cache"), SIGMASIGHT_API_CACHE_TTL_S=600):
        first = auth_client.get(url)
        assert first.status_code == 200 and first["X-Cache"] == "miss"
        assert auth_client.get(url)["X-Cache"] == "hit"
        assert any((tmp_path / "cache").iterdir())  # on disk, where other processes look
        bump_in_another_process(tmp_path, identity, portfolio.pk)
        again = auth_client.get(url)
        assert again["X-Cache"] == "miss" and again.json() == first.json()
        assert auth_client.get(url)["X-Cache"] == "hit"


def test_keys_carry_the_database_identity(monkeypatch):
    monkeypatch.setattr(filecache, "_identity", "2026-01-02T03:04:05.000006")
    assert filecache.make_key("k", "", 1) == "2026-01-02T03:04:05.000006::1:k"
    other = "2026-12-03T16:00:00.000001"  # the same database created again
    monkeypatch.setattr(filecache, "_identity", other)
    assert filecache.make_key("k", "", 1) != "2026-01-02T03:04:05.000006::1:k"
    assert filecache.make_key(caching.GLOBAL_GENERATION, "", 1).startswith(other)


def test_the_embedded_default_caches_in_files_with_the_api_cache_on(tmp_path):
    """The base settings without Redis: the file cache in the data directory, the cache on."""
    script = (
        "import django; django.setup(); from django.conf import settings as s; "
        "c = s.CACHES['default']; print(c['BACKEND'], c['LOCATION'], s.SIGMASIGHT_API_CACHE_TTL_S)"
    )
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")},
        "DJANGO_SETTINGS_MODULE": "sigmasight.settings.base",
        "SIGMASIGHT_DATA_DIR": str(tmp_path),
        "SECRET_KEY": "file-cache-test-0123456789-abcdefghijklmnopqrstuvwxyz-0123456789",
    }
    shown = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert shown.returncode == 0, shown.stderr[-2000:]
    backend, location, ttl = shown.stdout.split()
    assert backend.endswith("FileBasedCache") and location == str(tmp_path / "cache")
    assert int(ttl) == 600
