"""Operations metrics, served at /metrics in Prometheus' text format (`views.py`).

Instruments are prometheus_client's. With `PROMETHEUS_MULTIPROC_DIR` set, every process (gunicorn
workers, Celery workers on the same host) writes its samples to files in that directory and a
scrape sums them, so an answer does not depend on which worker took the scrape; unset, they live
in this process's registry. Labels come from fixed sets (URL patterns, job names, provider names,
exception classes), never from a raw path, a symbol or an id.

The app code reports through the helpers below and never touches an instrument.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import Counter, Histogram, disable_created_metrics

# No `_created` series (one per label set, and not written in multiprocess mode anyway).
disable_created_metrics()

HTTP_REQUESTS = Counter(
    "sigmasight_http_requests",
    "HTTP requests answered, by method, route template and status code.",
    ["method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    "sigmasight_http_request_duration_seconds",
    "Time from the request entering the middleware stack to its response, by route template.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
BATCH_JOBS = Counter(
    "sigmasight_batch_jobs",
    "Batch job rows closed, by job name and final status (succeeded, partial, failed).",
    ["job", "status"],
)
BATCH_DURATION = Histogram(
    "sigmasight_batch_job_duration_seconds",
    "Wall time of a batch job, from its start to its close.",
    ["job"],
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200),
)
BATCH_PORTFOLIOS_FAILED = Counter(
    "sigmasight_batch_portfolios_failed",
    "Portfolios a batch job reported failed (a trigger's umbrella repeats its jobs' failures).",
    ["job"],
)
PROVIDER_CALLS = Counter(
    "sigmasight_provider_calls",
    "Calls to a market-data provider, by outcome: ok, or the exception class it raised.",
    ["provider", "operation", "outcome"],
)
PROVIDER_LATENCY = Histogram(
    "sigmasight_provider_call_duration_seconds",
    "Time a market-data provider call took, whatever its outcome.",
    ["provider", "operation"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120),
)
API_CACHE = Counter(
    "sigmasight_api_cache_requests",
    "Reads of cached endpoints, by view and X-Cache outcome (hit, miss, bypass).",
    ["view", "outcome"],
)

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def request_observe(*, method: str, route: str, status: int, seconds: float) -> None:
    """One answered request; any other method is counted as `other` (clients choose it)."""
    method = method if method in _METHODS else "other"
    HTTP_REQUESTS.labels(method, route, str(status)).inc()
    HTTP_LATENCY.labels(method, route).observe(seconds)


def batch_job_closed(
    *, job: str, status: str, duration_s: float | None, portfolios_failed: int
) -> None:
    """A batch job row was closed (analytics.batch.job_close, trigger_close)."""
    BATCH_JOBS.labels(job, status).inc()
    if duration_s is not None:
        BATCH_DURATION.labels(job).observe(duration_s)
    BATCH_PORTFOLIOS_FAILED.labels(job).inc(portfolios_failed)


@contextmanager
def provider_call(provider: str, operation: str) -> Iterator[None]:
    """Time and count one call to a market-data provider; an exception is counted under its
    class name (ProviderTimeout, RateLimited, NoData, ...) and raised on."""
    started = time.perf_counter()
    outcome = "ok"
    try:
        yield
    except BaseException as exc:
        outcome = type(exc).__name__
        raise
    finally:
        PROVIDER_LATENCY.labels(provider, operation).observe(time.perf_counter() - started)
        PROVIDER_CALLS.labels(provider, operation, outcome).inc()


def api_cache_outcome(view: str, outcome: str) -> None:
    API_CACHE.labels(view, outcome).inc()
