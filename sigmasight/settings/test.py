"""Settings for the test suite: the base settings with a fixed key and fast password hashing.

The environment still chooses the database and Redis, so the same suite runs on SQLite and on
PostgreSQL with Redis.
"""

from __future__ import annotations

import os

os.environ.setdefault("SECRET_KEY", "test-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz")
os.environ.setdefault("DEBUG", "false")
os.environ.setdefault("SECURE_SSL_REDIRECT", "false")
os.environ.setdefault("ALLOWED_HOSTS", "testserver,localhost,127.0.0.1")

from sigmasight.env import env_int
from sigmasight.settings.base import *  # noqa: F403
from sigmasight.settings.base import REDIS_URL, STORAGES

# Argon2 is the production hasher (asserted in a test); hashing speed here is not the point.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {
    **STORAGES,
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Serve static files by lookup per request: no collectstatic needed before the suite.
WHITENOISE_AUTOREFRESH = True

# Retries of provider errors happen at once in tests (the backoff itself is unit-tested).
SIGMASIGHT_BATCH_RETRY_BACKOFF_S = 0.0

# Without Redis the suite keeps each process's cache to itself (no files shared with a running
# `make run`) and the API cache off unless asked, as the SQLite run always has; the file cache
# and its cross-process invalidation have their own tests (tests/test_file_cache.py).
if not REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    SIGMASIGHT_API_CACHE_TTL_S = env_int("SIGMASIGHT_API_CACHE_TTL_S", 0, minimum=0)
