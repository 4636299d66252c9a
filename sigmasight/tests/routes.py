"""Every route of the URL configuration under /api/v1/, with its view and methods, and what fills
each placeholder of a route naming a user's object: for the walks over every route (the
whole-system tests in `tests/`, the conventions here)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from django.test import override_settings
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework import permissions
from rest_framework.views import APIView

from sigmasight.accounts.api.views import RegistrationPermission

API = "/api/v1/"

# Routes that answer without a token.
PUBLIC = {
    "/api/v1/auth/login/",
    "/api/v1/auth/refresh/",
    "/api/v1/health/",
    "/api/schema/",
    "/api/docs/",
}
# What fills each placeholder of a route naming a user's object, by the route's text between
# /api/v1/ and its first placeholder. A route with a placeholder not listed here fails the walk:
# add it, so that every new route is walked.
OWNED = {
    "portfolios/": {"pk": "portfolio"},
    "positions/": {"pk": "position"},
    "tags/": {"pk": "tag"},
    "strategies/": {"pk": "strategy"},
    "stress/scenarios/": {"pk": "scenario"},
    "stress/test/": {"portfolio_id": "portfolio"},
    "stress/results/": {"portfolio_id": "portfolio"},
    "factors/diagnostics/": {"position_id": "position"},
    "modeling/sessions/": {"pk": "session", "trade_id": "trade"},
    "export/history/": {"pk": "export"},
    "reports/": {"pk": "report"},
    "limits/": {"pk": "limit"},
    "breaches/": {"pk": "breach"},
}
# Shared reference data (prices, chains, crisis replays): no owner, the same for every user.
SHARED = {
    "market-data/prices/": {"symbol": "AAPL"},
    "market-data/options/": {"underlying": "AAPL"},
    "stress/historical/": {"crisis": "2008"},
}
METHODS = ("get", "post", "put", "patch", "delete")
# The walks make more requests per user than the per-minute rate allows; rates are tested apart.
unthrottled = override_settings(SIGMASIGHT_THROTTLE_USER="100000/min")


@dataclass(frozen=True)
class Route:
    template: str  # "/api/v1/portfolios/{pk}/upload/"
    view: type[APIView]
    methods: tuple[str, ...]

    @property
    def params(self) -> list[str]:
        return re.findall(r"{(\w+)}", self.template)

    @property
    def prefix(self) -> str:
        return self.template.removeprefix(API).split("{", 1)[0]

    @property
    def staff_only(self) -> bool:
        return any(
            isinstance(p, type) and issubclass(p, (permissions.IsAdminUser, RegistrationPermission))
            for p in self.view.permission_classes
        )

    def url(self, ids: Mapping[str, object]) -> str:
        return self.template.format(**ids)


def _template(text: str) -> str | None:
    text = text.replace("^", "").replace("$", "")
    text = re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", text)
    text = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", text)
    return None if "(" in text or "\\" in text else text


def api_routes() -> list[Route]:
    """Every route of the URL configuration under /api/v1/, with its view and methods."""
    found: dict[str, Route] = {}

    def walk(patterns: list, prefix: str) -> None:
        for pattern in patterns:
            text = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, text)
                continue
            assert isinstance(pattern, URLPattern)
            template = _template(text)
            if template is None or not template.startswith(API):
                continue
            callback = pattern.callback
            # as_view() sets view_class (DRF viewsets: cls); the stubs type callbacks as functions.
            view = getattr(callback, "cls", None) or callback.view_class  # type: ignore[attr-defined]
            allowed = [m for m in METHODS if m in view.http_method_names]
            actions = getattr(callback, "actions", None)
            methods = [m for m in allowed if (m in actions if actions else hasattr(view, m))]
            found[template] = Route(template, view, tuple(methods))

    walk(get_resolver().url_patterns, "/")
    return sorted(found.values(), key=lambda r: r.template)
