"""GET /api/v1/health/: is the database, the cache and the broker answering?

The database being down makes the service unusable (503); cache or broker trouble degrades it
(200, status "degraded") because the web keeps serving from the database.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import permissions, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

logger = logging.getLogger("sigmasight.api")


def check_database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # noqa: BLE001 - any failure means "down" here
        logger.warning("health: database down: %s", exc)
        return "down"
    return "ok"


def check_cache() -> str:
    key = f"health:{uuid.uuid4().hex}"
    try:
        cache.set(key, "1", timeout=5)
        ok = cache.get(key) == "1"
        cache.delete(key)
    except Exception as exc:  # noqa: BLE001
        logger.warning("health: cache down: %s", exc)
        return "down"
    return "ok" if ok else "down"


def check_broker() -> str:
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return "eager"
    import redis

    timeout = settings.CELERY_BROKER_TRANSPORT_OPTIONS["socket_timeout"]
    try:
        client = redis.Redis.from_url(
            settings.CELERY_BROKER_URL, socket_connect_timeout=timeout, socket_timeout=timeout
        )
        client.ping()
        client.close()
    except Exception as exc:  # noqa: BLE001
        logger.warning("health: broker down: %s", exc)
        return "down"
    return "ok"


# The batch runner registers where its last finished run is read (analytics, in its AppConfig):
# the ground reports it without importing the app above it.
_last_batch: list[Callable[[], dict | None]] = []


def last_batch_from(reader: Callable[[], dict | None]) -> None:
    _last_batch[:] = [reader]


def last_batch() -> dict | None:
    """The most recently finished batch job run (None when no batch runner is installed)."""
    return _last_batch[0]() if _last_batch else None


class HealthView(APIView):
    authentication_classes: list = []
    permission_classes = [permissions.AllowAny]
    throttle_classes: list = []

    @extend_schema(
        tags=["operations"],
        responses={
            (200, "application/json"): inline_serializer(
                "Health",
                {
                    "status": serializers.ChoiceField(choices=["ok", "degraded", "down"]),
                    "database": serializers.CharField(),
                    "cache": serializers.CharField(),
                    "broker": serializers.CharField(),
                    "last_batch": serializers.DictField(allow_null=True),
                },
            ),
        },
    )
    def get(self, request: Request) -> Response:
        body = {
            "database": check_database(),
            "cache": check_cache(),
            "broker": check_broker(),
        }
        if body["database"] == "down":
            overall, code = "down", 503
        elif "down" in body.values():
            overall, code = "degraded", 200
        else:
            overall, code = "ok", 200
        batch = last_batch() if body["database"] == "ok" else None
        return Response({"status": overall, **body, "last_batch": batch}, status=code)
