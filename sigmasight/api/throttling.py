"""Throttles whose rates are read from Django settings on each request, so they follow
`override_settings` and need no class-level copy of REST_FRAMEWORK."""

from __future__ import annotations

from django.conf import settings
from rest_framework.throttling import AnonRateThrottle, UserRateThrottle


class UserThrottle(UserRateThrottle):
    def get_rate(self) -> str:
        return settings.SIGMASIGHT_THROTTLE_USER


class AnonThrottle(AnonRateThrottle):
    def get_rate(self) -> str:
        return settings.SIGMASIGHT_THROTTLE_ANON
