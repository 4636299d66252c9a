"""Fuzzing the API (issue 11): schemathesis generates requests from `/api/schema/` and sends them
to the Django app in-process (WSGI) as a demo user, on the seeded demo.

Every response must be free of server errors and conform to the schema (status code, body).
`make test` runs a bounded number of examples per operation, deterministically (the same cases
every run); `make fuzz` runs many more, randomly (SIGMASIGHT_FUZZ_EXAMPLES, SIGMASIGHT_FUZZ_SEED).

The demo is seeded once for the module inside a transaction rolled back at the end, and every
example runs in a savepoint rolled back after it, so each request sees the untouched demo. Ids in
paths, `?portfolio=` and bodies are sometimes replaced by real ones (the user's own objects and
another demo user's), so requests reach the code behind the 404.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, transaction
from django.test import override_settings
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from hypothesis import strategies as st
from rest_framework_simplejwt.tokens import RefreshToken
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)

from analytics.models import FactorDefinition
from conftest import _guarded_connect, _guarded_getaddrinfo
from modeling import services as modeling_services
from portfolios import demo
from portfolios.models import Portfolio, Position, Strategy, Tag
from sigmasight.accounts.models import User
from stress.models import StressScenario

pytestmark = [pytest.mark.fuzz, pytest.mark.django_db]

EXAMPLES = int(os.environ.get("SIGMASIGHT_FUZZ_EXAMPLES", "0") or 0)
LONG_RUN = EXAMPLES > 0
SEED = os.environ.get("SIGMASIGHT_FUZZ_SEED")

# Operations not fuzzed, and why.
EXCLUDED = {
    # Deletes and rebuilds every demo account: destructive, and a full seed per example.
    ("POST", "/api/v1/admin/demo/reset/"): "destructive and slow",
    # Queue the daily batch: minutes of work per example, staff only (a 403 for the demo user).
    ("POST", "/api/v1/admin/batch/{trigger}/"): "batch trigger: slow, staff only",
    # Blacklists refresh tokens: state the other examples' auth would depend on.
    ("POST", "/api/v1/auth/logout/"): "token blacklist",
    ("POST", "/api/v1/auth/refresh/"): "token rotation blacklists the old token",
}

CONFIG = SchemathesisConfig.from_dict(
    {
        **({"seed": int(SEED)} if SEED else {}),
        "generation": {
            "max-examples": EXAMPLES or 8,
            "deterministic": not LONG_RUN and not SEED,
            "database": "none",
            # The JWT comes from the fixture; a generated Authorization header would replace it.
            "with-security-parameters": False,
        },
        # Stateful sequences are out of scope; the coverage phase's boundary cases are many per
        # operation, so the bounded run leaves them to `make fuzz`.
        "phases": {"stateful": {"enabled": False}, "coverage": {"enabled": LONG_RUN}},
    }
)
UNLIMITED = "1000000/min"
CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance]


@dataclass(frozen=True)
class Targets:
    """Real ids the generated requests are aimed at, besides whatever Hypothesis makes up."""

    portfolio: list[int]
    position: list[int]
    tag: list[int]
    strategy: list[int]
    scenario: list[int]
    session: list[int]


@dataclass(frozen=True)
class Fuzzed:
    app: WSGIHandler
    token: str
    targets: Targets


def _seed() -> Targets:
    demo.demo_seed(stdout=None)
    user = User.objects.get(email=demo.GROWTH.email)
    other = User.objects.get(email=demo.VALUE.email)
    own = Portfolio.objects.get(owner=user)
    theirs = Portfolio.objects.get(owner=other)
    session = modeling_services.session_create(owner=user, portfolio=own, name="fuzz")

    def first_ids(queryset, owner_field: str) -> list[int]:
        ids = []
        for owner in (user, other):
            pk = queryset.filter(**{owner_field: owner}).order_by("pk").values_list("pk").first()
            if pk:
                ids.append(pk[0])
        return ids

    return Targets(
        portfolio=[own.pk, theirs.pk],
        position=first_ids(Position.objects, "portfolio__owner"),
        tag=first_ids(Tag.objects, "owner"),
        strategy=first_ids(Strategy.objects, "portfolio__owner"),
        scenario=list(StressScenario.objects.order_by("pk").values_list("pk", flat=True)[:2]),
        session=[session.pk],
    )


@pytest.fixture(scope="module")
def fuzzed(django_db_setup, django_db_blocker) -> Iterator[Fuzzed]:
    with (
        django_db_blocker.unblock(),
        pytest.MonkeyPatch.context() as patch,
        override_settings(
            SIGMASIGHT_MARKET_DATA_SOURCE="synthetic",
            # One user sends every request: the rate limits are not under test here.
            SIGMASIGHT_THROTTLE_USER=UNLIMITED,
            SIGMASIGHT_THROTTLE_ANON=UNLIMITED,
            SIGMASIGHT_THROTTLE_LOGIN_IP=UNLIMITED,
            SIGMASIGHT_THROTTLE_LOGIN_EMAIL=UNLIMITED,
        ),
    ):
        patch.setattr("socket.getaddrinfo", _guarded_getaddrinfo)
        patch.setattr("socket.socket.connect", _guarded_connect)
        # Requests run inside the test's transaction, as with Django's test client: the handler
        # must not close the connection at the end of each request.
        request_started.disconnect(close_old_connections)
        request_finished.disconnect(close_old_connections)
        atomic = transaction.atomic()
        atomic.__enter__()
        try:
            targets = _seed()
            assert FactorDefinition.objects.exists()
            user = User.objects.get(email=demo.GROWTH.email)
            token = str(RefreshToken.for_user(user).access_token)
            yield Fuzzed(WSGIHandler(), token, targets)
        finally:
            transaction.set_rollback(True)
            atomic.__exit__(None, None, None)
            request_started.connect(close_old_connections)
            request_finished.connect(close_old_connections)


def _served_schema() -> dict:
    """What `/api/schema/` serves, built in-process: the operations must be known when the
    tests are collected, before any database exists (the view itself reads none)."""
    return json.loads(OpenApiJsonRenderer().render(SchemaGenerator().get_schema(public=True)))


schema = schemathesis.openapi.from_dict(_served_schema(), config=CONFIG).exclude(
    func=lambda ctx: (ctx.operation.method.upper(), ctx.operation.path) in EXCLUDED
)

# Path parameters and query/body fields that hold ids, by the kind of object they name.
_PATH_TARGETS = {
    "/api/v1/portfolios/{id}/": "portfolio",
    "/api/v1/stress/results/{portfolio_id}/": "portfolio",
    "/api/v1/stress/test/{portfolio_id}/": "portfolio",
    "/api/v1/positions/{id}/": "position",
    "/api/v1/factors/diagnostics/{position_id}/": "position",
    "/api/v1/tags/{id}/": "tag",
    "/api/v1/strategies/{id}/": "strategy",
    "/api/v1/stress/scenarios/{id}/": "scenario",
    "/api/v1/modeling/sessions/{id}/": "session",
}
_FIELD_TARGETS = {"portfolio": "portfolio", "session": "session", "portfolio_id": "portfolio"}


def _aim(case, data: st.DataObject, targets: Targets) -> None:
    """Sometimes swap a generated id for a real one (own or another user's)."""

    def pick(kind: str, current: object) -> object:
        return data.draw(st.sampled_from([current, *getattr(targets, kind)]))

    for prefix, kind in _PATH_TARGETS.items():
        name = prefix.rsplit("{", 1)[1].rstrip("}/")
        if case.path.startswith(prefix) and name in case.path_parameters:
            case.path_parameters = {
                **case.path_parameters,
                name: pick(kind, case.path_parameters[name]),
            }
    # Containers are assigned anew, not changed in place: the case tracks what was generated.
    for attr in ("query", "body"):
        container = getattr(case, attr)
        if isinstance(container, dict) and container.keys() & _FIELD_TARGETS.keys():
            setattr(
                case,
                attr,
                {
                    key: pick(_FIELD_TARGETS[key], value) if key in _FIELD_TARGETS else value
                    for key, value in container.items()
                },
            )


@schema.parametrize()
@schema.given(data=st.data())
def test_api_fuzz_no_server_error_and_schema_conformance(case, data, fuzzed: Fuzzed):
    _aim(case, data, fuzzed.targets)
    with transaction.atomic():
        # identity: the in-process WSGI transport does not decode gzip (tested in test_caching).
        headers = {"Authorization": f"Bearer {fuzzed.token}", "Accept-Encoding": "identity"}
        case.call_and_validate(app=fuzzed.app, headers=headers, checks=CHECKS)
        transaction.set_rollback(True)
