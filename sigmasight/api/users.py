"""The user of an API request, typed for the selectors and services that scope by it."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    from django.http import HttpRequest
    from rest_framework.request import Request

    from sigmasight.accounts.models import User


def request_user(request: Request | HttpRequest) -> User:
    """The user of a request that passed `IsAuthenticated` (the API's default permission) or the
    admin's login. An anonymous request never reaches the code that asks, so the type is narrowed
    without a check (DRF and Django type `request.user` as possibly anonymous)."""
    return cast("User", request.user)
