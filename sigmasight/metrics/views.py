"""GET /metrics: Prometheus' text format, for a bearer token or an allow-listed address only.

Anyone else gets the same 404 as an unknown path (not 403: a scanner learns nothing, not even
that the endpoint exists), and with neither `SIGMASIGHT_METRICS_TOKEN` nor
`SIGMASIGHT_METRICS_ALLOWED_IPS` set everyone does. The client address is the one the throttles
and the audit trail use (`SIGMASIGHT_NUM_PROXIES` trusted proxies), so a client-written
X-Forwarded-For never gets in.

The task outbox is read at scrape time (one aggregate over its pending-rows index); a database
that does not answer leaves its two gauges out of the scrape rather than failing it.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
from collections.abc import Iterator

from django.conf import settings
from django.db import DatabaseError
from django.db.models import Count, Min
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from sigmasight.audit.services import client_ip
from sigmasight.cachesafe import warn_limited
from sigmasight.env import IPNetwork
from sigmasight.outbox.models import OutboxTask

logger = logging.getLogger("sigmasight.api")


class OutboxCollector(Collector):
    def collect(self) -> Iterator[Metric]:
        try:
            row = OutboxTask.objects.filter(sent_at__isnull=True).aggregate(
                pending=Count("id"), oldest=Min("created_at")
            )
        except DatabaseError as exc:
            warn_limited("metrics-outbox", "metrics: outbox not read (%s)", exc, log=logger)
            return
        oldest = row["oldest"]
        yield GaugeMetricFamily(
            "sigmasight_outbox_pending_tasks",
            "Tasks in the outbox not yet published to the broker.",
            value=row["pending"],
        )
        yield GaugeMetricFamily(
            "sigmasight_outbox_oldest_pending_age_seconds",
            "Age of the oldest task not yet published (0 when none waits).",
            value=0.0 if oldest is None else (timezone.now() - oldest).total_seconds(),
        )


_AT_SCRAPE = CollectorRegistry(auto_describe=False)
_AT_SCRAPE.register(OutboxCollector())


def _token_matches(request: HttpRequest, token: str | None) -> bool:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if not token or scheme.lower() != "bearer" or not given:
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())


def _address_allowed(request: HttpRequest, networks: list[IPNetwork]) -> bool:
    if not networks:
        return False
    address = client_ip(request)
    if address is None:
        return False
    ip = ipaddress.ip_address(address)
    candidates = [ip, getattr(ip, "ipv4_mapped", None) or ip]  # ::ffff:10.0.0.7 is 10.0.0.7
    return any(candidate in network for candidate in candidates for network in networks)


def access_allowed(request: HttpRequest) -> bool:
    return _token_matches(request, settings.SIGMASIGHT_METRICS_TOKEN) or _address_allowed(
        request, settings.SIGMASIGHT_METRICS_ALLOWED_IPS
    )


def exposition() -> bytes:
    """Every metric family in the text format: summed over the processes' files in multiprocess
    mode, else this process's registry; then the outbox, read now."""
    if settings.PROMETHEUS_MULTIPROC_DIR is not None:
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(settings.PROMETHEUS_MULTIPROC_DIR))
    else:
        registry = REGISTRY
    return generate_latest(registry) + generate_latest(_AT_SCRAPE)


@csrf_exempt  # refused callers get the plain 404 whatever the method, never the CSRF page
def metrics_view(request: HttpRequest) -> HttpResponse:
    if not access_allowed(request):
        raise Http404
    if request.method != "GET":
        return HttpResponseNotAllowed(["GET"])
    return HttpResponse(
        exposition(), content_type=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"}
    )
