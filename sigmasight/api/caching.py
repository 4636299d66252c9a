"""Caching the read endpoints that serve stored results (the batch's and the book's).

Cached: a portfolio's summary (and the default one's), exposures and performance; positions and
positions/grouped filtered to one owned portfolio; risk/greeks, risk/factors, risk/metrics,
risk/scenarios/market|rates|accuracy; factors/exposures; stress/results. Not what-if modeling,
on-demand calculations (greeks/calculate, stress/test), shared reference data or admin.

A response body (`Response.data`, never the Response) is cached under
`api-cache:<view>:p<portfolio>:g<global>.<portfolio generation>:<digest of the params>`: the
data are the same for every user allowed to see the portfolio, so the owner is not in the key;
instead every view checks ownership (`portfolio_for`, a scoped queryset) before it looks in the
cache, so another user gets 404 whatever is cached. The params are the normalised query (the
resolved `as_of`, sorted), so `?as_of=` variants are cached apart.

Nothing is deleted to invalidate: writers bump a generation counter instead, and entries of an
old generation are never read again (they expire after `SIGMASIGHT_API_CACHE_TTL_S`, which also
bounds how long a write that bypasses the services and the admin stays unseen; 0 turns the
cache off; admin writes drop everything: `AdminInvalidatesCache`).
`results_changed(portfolio_ids)` bumps the portfolios' counters (the batch after each chunk
commits; on-demand computations); `book_changed` the same for writes to the book;
`results_changed` of every portfolio of a user for what all of them show (tags, the user's
stress scenarios: `portfolios.services.owner_changed`);
`everything_changed()` the global counter (new closes, which any portfolio may hold; the demo
rebuilt). A bump happens at once and again after the transaction commits, so a reader that cached
the old rows in between is dropped too. Counters start at a nanosecond clock reading, so one
lost to eviction or a Redis restart never comes back to a number that was used before.

The cache is never needed to answer: when Redis is down or fails, the shared cache breaker
(`sigmasight.cachesafe`) skips it for a few seconds, the view computes from the database
(`X-Cache: bypass`), warnings are rate-limited, a failed bump never fails the write (it is kept
and retried by the next cache use in this process; the TTL covers the other processes).
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from rest_framework.request import Request
from rest_framework.response import Response

from sigmasight.cachesafe import safe_cache_call, warn_limited
from sigmasight.metrics import api_cache_outcome

if TYPE_CHECKING:
    # The admin mixin's base for the type checker: a ModelAdmin, with django-import-export's
    # ImportMixin on import admins (no stubs, so Any: every super() call below is known).
    from import_export.admin import ImportMixin as _AdminBase
else:
    _AdminBase = object

logger = logging.getLogger("sigmasight.api")

PREFIX = "api-cache"
GLOBAL_GENERATION = f"{PREFIX}:gen:all"
HEADER = "X-Cache"
_MISSING = object()

_pending: set[str] = set()  # generation keys whose bump failed, retried at the next cache use
_pending_lock = threading.Lock()


class _Unavailable(Exception):
    """The cache was skipped (breaker open) or failed: compute from the database instead."""


def _unavailable() -> Any:
    raise _Unavailable


def _call(fn: Callable[..., Any], *args: Any) -> Any:
    """A cache call through the shared breaker; _Unavailable when it is open or the call fails
    (Redis away, or anything else: the cache is never needed to answer)."""
    try:
        return safe_cache_call(fn, *args, fallback=_unavailable)
    except _Unavailable:
        raise
    except Exception as exc:
        warn_limited(
            "api-cache-error", "API cache call failed (%s: %s)", type(exc).__name__, exc, log=logger
        )
        raise _Unavailable from exc


def generation_key(portfolio_id: int) -> str:
    return f"{PREFIX}:gen:p:{portfolio_id}"


def _fresh() -> int:
    return time.time_ns()


def _generations(keys: list[str]) -> list[int]:
    found = _call(cache.get_many, keys)
    values = []
    for key in keys:
        value = found.get(key)
        if value is None:  # never bumped, or evicted: start it (another process may just have)
            value = _fresh()
            if not _call(cache.add, key, value, None):
                value = _call(cache.get, key) or value
        values.append(int(value))
    return values


def _incr_or_start(key: str) -> None:
    try:
        cache.incr(key)
    except ValueError:  # no counter yet (or evicted): any fresh value differs from the old ones
        cache.set(key, _fresh(), None)


def _bump_keys(keys: Iterable[str]) -> None:
    for key in keys:
        _call(_incr_or_start, key)


def _flush_pending() -> None:
    if not _pending:
        return
    with _pending_lock:
        keys = sorted(_pending)
        _pending.clear()
    try:
        _bump_keys(keys)
    except _Unavailable:
        with _pending_lock:
            _pending.update(keys)


def _bump_now(keys: list[str]) -> None:
    try:
        _flush_pending()
        _bump_keys(keys)
    except _Unavailable:
        with _pending_lock:
            _pending.update(keys)
        warn_limited(
            "api-cache-bump",
            "API cache generation not bumped (cache unavailable); retried at the next cache use, "
            "cached reads may be stale for up to %s s",
            settings.SIGMASIGHT_API_CACHE_TTL_S,
            log=logger,
        )


def _bump(keys: list[str]) -> None:
    if not keys:
        return
    _bump_now(keys)
    if transaction.get_connection().in_atomic_block:
        transaction.on_commit(lambda: _bump_now(keys))


def results_changed(portfolio_ids: Iterable[int]) -> None:
    """Stored results of these portfolios were written: their cached reads are stale."""
    _bump([generation_key(pk) for pk in sorted(set(portfolio_ids))])


book_changed = results_changed  # positions, tags, strategies, the portfolio row itself


def everything_changed() -> None:
    """Something every portfolio reads changed (closes, the stress library, factors)."""
    _bump([GLOBAL_GENERATION])


def everything_generation() -> int | None:
    """The global counter (bumped by `everything_changed`: new closes anywhere), or None while
    the cache cannot say: a reader keeping what it read must then keep nothing."""
    try:
        return _generations([GLOBAL_GENERATION])[0]
    except _Unavailable:
        return None


def _digest(params: Mapping[str, Any]) -> str:
    text = json.dumps(sorted((str(k), v) for k, v in params.items()), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def query_params(request: Request) -> dict[str, Any]:
    """Every query parameter (all values, sorted) and the scheme and host: for list views whose
    filters come from the raw query and whose `next`/`previous` links are absolute."""
    params: dict[str, Any] = {
        k: sorted(request.query_params.getlist(k)) for k in request.query_params
    }
    params["_origin"] = f"{request.scheme}://{request.get_host()}"
    return params


def cached_response(
    view: str, portfolio_id: int, params: Mapping[str, Any], compute: Callable[[], Response]
) -> Response:
    """`compute()`'s response, from the cache when an entry of the current generations exists.

    The caller has already checked that the user may read `portfolio_id`. Only a 200 is stored.
    """
    ttl = settings.SIGMASIGHT_API_CACHE_TTL_S
    if ttl <= 0:
        return _tagged(compute(), view, "bypass")
    try:
        _flush_pending()
        generations = _generations([GLOBAL_GENERATION, generation_key(portfolio_id)])
        key = (
            f"{PREFIX}:{view}:p{portfolio_id}:g{generations[0]}.{generations[1]}:{_digest(params)}"
        )
        data = _call(cache.get, key, _MISSING)
    except _Unavailable:
        return _tagged(compute(), view, "bypass")
    if data is not _MISSING:
        return _tagged(Response(data), view, "hit")
    response = compute()
    if response.status_code == 200:
        try:
            _call(cache.set, key, response.data, ttl)
        except _Unavailable:
            return _tagged(response, view, "bypass")
    return _tagged(response, view, "miss")


def _tagged(response: Response, view: str, outcome: str) -> Response:
    response[HEADER] = outcome
    api_cache_outcome(view, outcome)  # hit ratio: README, "Metrics and error reporting"
    return response


class AdminInvalidatesCache(_AdminBase):
    """For ModelAdmins of what cached reads show (portfolios, positions, tags, strategies,
    securities, factor definitions, stress scenarios): admin forms, deletes and imports write
    around the services, so each drops every cached read (the global counter; admin edits are
    rare and a cold cache costs one recomputation per read). Put it first in the bases."""

    def save_model(self, request: Any, obj: Any, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        everything_changed()

    def save_related(self, request: Any, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)  # many-to-many: a position's tags
        everything_changed()

    def delete_model(self, request: Any, obj: Any) -> None:
        super().delete_model(request, obj)
        everything_changed()

    def delete_queryset(self, request: Any, queryset: Any) -> None:
        super().delete_queryset(request, queryset)
        everything_changed()

    def process_result(self, result: Any, request: Any) -> Any:
        """django-import-export's confirmed import (only on import admins)."""
        response = super().process_result(result, request)
        everything_changed()
        return response
