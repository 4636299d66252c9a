"""Throttles whose rates are read from Django settings on each request, so they follow
`override_settings` and need no class-level copy of REST_FRAMEWORK.

Login has two more on top of the anonymous rate, against password guessing: attempts per client
IP (one machine trying many accounts) and per attempted email (many machines trying one account).
Both count every attempt, successful or not, and answer 429 with `Retry-After` in the envelope.

Counts live in the default cache (Redis in production). While Redis is unreachable they live in a
process-local cache instead (`sigmasight.cachesafe.FallbackCache`): the API keeps serving and the
limits, login's included, still apply, per process, rather than failing open or answering 500.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, cast

from django.conf import settings
from rest_framework.throttling import AnonRateThrottle, SimpleRateThrottle, UserRateThrottle

from sigmasight.accounts.models import normalize_email
from sigmasight.cachesafe import FallbackCache

if TYPE_CHECKING:  # rest_framework.views imports this module through its settings
    from django.core.cache.backends.base import BaseCache
    from rest_framework.request import Request
    from rest_framework.views import APIView

# One per process, shared by every throttle: the local counts survive from request to request.
throttle_cache = FallbackCache("default")
# DRF types a throttle's cache as a BaseCache; FallbackCache has the get and set it calls.
_cache = cast("BaseCache", throttle_cache)


class UserThrottle(UserRateThrottle):
    cache = _cache

    def get_rate(self) -> str:
        return settings.SIGMASIGHT_THROTTLE_USER


class AnonThrottle(AnonRateThrottle):
    cache = _cache

    def get_rate(self) -> str:
        return settings.SIGMASIGHT_THROTTLE_ANON


class LoginIPThrottle(SimpleRateThrottle):
    scope = "login_ip"
    cache = _cache

    def get_rate(self) -> str:
        return settings.SIGMASIGHT_THROTTLE_LOGIN_IP

    def get_cache_key(self, request: Request, view: APIView) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class LoginEmailThrottle(SimpleRateThrottle):
    scope = "login_email"
    cache = _cache

    def get_rate(self) -> str:
        return settings.SIGMASIGHT_THROTTLE_LOGIN_EMAIL

    def get_cache_key(self, request: Request, view: APIView) -> str | None:
        data = request.data
        email = data.get("email") if hasattr(data, "get") else None
        if not isinstance(email, str) or not email.strip():
            return None  # nothing to guess against; the body is refused as invalid anyway
        # Hashed: any string is a safe cache key, and no address sits in the cache in clear.
        ident = hashlib.sha256(normalize_email(email).encode()).hexdigest()
        return self.cache_format % {"scope": self.scope, "ident": ident}
