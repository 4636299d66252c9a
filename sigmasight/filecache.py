"""The cache without Redis: Django's file-based cache in the data directory, shared by every
process on the machine (runserver, `manage.py` commands, gunicorn workers), so the API cache's
generation counters (sigmasight.api.caching) are seen by all of them and the cache can be on in
the embedded default too. Writes are atomic (a temporary file renamed into place); a counter's
increment is a read and a write, so two concurrent bumps may both write the same next number:
either way the number changed, which is all a bump has to do.

The keys carry the database's identity (`make_key`): the time its first migration was applied.
A database deleted and created again (the demo rebuilt by hand) starts with new keys instead of
the old database's entries, whose counters may have reached the same numbers. Read once per
process at the first cache use; before the first migration nothing is kept under it.
"""

from __future__ import annotations

import threading

from django.db import DatabaseError, connection

_lock = threading.Lock()
_identity: str | None = None


def database_identity() -> str | None:
    """When the database's first migration was applied (None: not migrated yet)."""
    global _identity
    if _identity is not None:
        return _identity
    with _lock:
        if _identity is None:
            try:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT MIN(applied) FROM django_migrations")
                    first = cursor.fetchone()[0]
            except DatabaseError:
                return None
            if first is None:
                return None
            _identity = str(first).replace(" ", "T")
    return _identity


def make_key(key: str, key_prefix: str, version: int) -> str:
    """Django's key (prefix:version:key) under the database's identity."""
    return f"{database_identity() or 'unmigrated'}:{key_prefix}:{version}:{key}"
