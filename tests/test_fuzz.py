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
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from rest_framework_simplejwt.tokens import RefreshToken
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.config import SchemathesisConfig
from schemathesis.config._checks import POSITIVE_DATA_ACCEPTANCE_EXPECTED_STATUSES
from schemathesis.specs.openapi.checks import positive_data_acceptance

from analytics.models import FactorDefinition
from modeling import demo
from modeling import services as modeling_services
from portfolios.models import Portfolio, Position, Strategy, Tag
from sigmasight.accounts.models import User
from sigmasight.api.fields import MAX_ID
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

# Operations whose well-formed requests may still break a rule of the domain, answered 400
# naming it, that no schema keyword states (OpenAPI 3.0 has no rule between two fields, no
# check of a file's content). Positive data need not pass there; every other check runs.
DOMAIN_RULES = {
    "POST /api/v1/modeling/sessions/": "as_of may not be in the future",
    "POST /api/v1/risk/greeks/calculate/": "exactly one of expiration/days_to_expiry, of "
    "volatility/option_price; prices positive",
    "POST /api/v1/stress/scenarios/": "shocks are keyed by active factor names",
    "GET /api/v1/modeling/sessions/{id}/suggestions/": "the hedge instrument must have a price",
    "POST /api/v1/positions/": "a row as the CSV validates it: known symbol, option legs agree",
    "PATCH /api/v1/positions/{id}/": "the same row rules for the changed fields",
    "POST /api/v1/modeling/sessions/{id}/trades/": "a trade is validated as a position row",
    "POST /api/v1/portfolios/{id}/upload/": "the file must be a valid position CSV",
    "POST /api/v1/strategies/": "each kind needs its legs (a pairs trade: one long, one short)",
    "PATCH /api/v1/strategies/{id}/": "detected strategies follow the book (read-only)",
    "DELETE /api/v1/strategies/{id}/": "detected strategies follow the book (read-only)",
    "GET /api/v1/risk/scenarios/market/": "each of `moves` within +-0.5 (a number in a string)",
    "GET /api/v1/risk/scenarios/rates/": "each of `moves` within +-0.05 (a number in a string)",
    "POST /api/v1/limits/": "the unit, params and levels suit the measure (warning within hard); "
    "a named stress scenario exists",
    "PATCH /api/v1/limits/{id}/": "the same rules for the limit as changed",
    "POST /api/v1/breaches/{id}/acknowledge/": "a resolved breach cannot be acknowledged (409)",
    "PUT /api/v1/alerts/settings/": "a webhook URL is public https and resolves; rotate_secret "
    "needs one",
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
        # Every check schemathesis has (`--checks all`), each as shipped but one: a well-formed
        # request for a date without the history a result needs is answered 422
        # `insufficient_history` (documented on every operation); which data exist is no fact a
        # schema can state, so positive data may meet it.
        "checks": {
            "positive_data_acceptance": {
                "expected-statuses": [*POSITIVE_DATA_ACCEPTANCE_EXPECTED_STATUSES, "422"]
            }
        },
        # Examples, coverage (boundary and negative cases of every parameter) and fuzzing run
        # in the parametrized test; stateful sequences, along the links schemathesis infers
        # between operations, in test_api_fuzz_stateful.
        "phases": {"stateful": {"enabled": True}},
    }
)
UNLIMITED = "1000000/min"
load_all_checks()
CHECKS_ALL = CHECKS.get_all()


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
    # A session with a trade, so that exporting it is a request that can succeed.
    modeling_services.trade_add(session=session, data={"symbol": "SPY", "quantity": "10"})

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
def fuzzed(django_db_setup, django_db_blocker, module_no_network) -> Iterator[Fuzzed]:
    with (
        django_db_blocker.unblock(),
        override_settings(
            SIGMASIGHT_MARKET_DATA_SOURCE="synthetic",
            # One user sends every request: the rate limits are not under test here.
            SIGMASIGHT_THROTTLE_USER=UNLIMITED,
            SIGMASIGHT_THROTTLE_ANON=UNLIMITED,
            SIGMASIGHT_THROTTLE_LOGIN_IP=UNLIMITED,
            SIGMASIGHT_THROTTLE_LOGIN_EMAIL=UNLIMITED,
        ),
    ):
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
            yield Fuzzed(APP, token, targets)
        finally:
            transaction.set_rollback(True)
            atomic.__exit__(None, None, None)
            request_started.connect(close_old_connections)
            request_finished.connect(close_old_connections)


def _served_schema() -> dict:
    """What `/api/schema/` serves, built in-process: the operations must be known when the
    tests are collected, before any database exists (the view itself reads none)."""
    return json.loads(OpenApiJsonRenderer().render(SchemaGenerator().get_schema(public=True)))


# The app every request goes to, in-process. It is the schema's own, so what a check sends
# besides the case (ignored_auth's probes without credentials) reaches it too.
APP = WSGIHandler()
_loaded = schemathesis.openapi.from_dict(_served_schema(), config=CONFIG)
_loaded.app = APP
schema = _loaded.exclude(
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
# Body fields listing ids of objects that must exist (unknown ones are a 400 naming them).
_LIST_TARGETS = {"scenario_ids": "scenario", "tag_ids": "tag", "position_ids": "position"}


def _is_id(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_ID


def _aim(case, data: st.DataObject, targets: Targets) -> None:
    """Sometimes swap a generated id for a real one (own or another user's).

    Only a valid id is swapped, so a negative case stays negative. In a positive case the ids
    in a body always name the user's own objects: a body naming a missing or another user's
    object is refused (400 naming the field), and existence is no fact a schema can state.
    Likewise rules between two parameters: a positive `start` after `end` is put in order, and
    `target=reduce_factor` gets the `factor` it needs.
    """
    positive = case.meta is not None and case.meta.generation.mode.is_positive

    def pick(kind: str, current: object) -> object:
        if not _is_id(current):
            return current
        return data.draw(st.sampled_from([current, *getattr(targets, kind)]))

    for prefix, kind in _PATH_TARGETS.items():
        name = prefix.rsplit("{", 1)[1].rstrip("}/")
        if case.path.startswith(prefix) and name in case.path_parameters:
            case.path_parameters = {
                **case.path_parameters,
                name: pick(kind, case.path_parameters[name]),
            }
    # Containers are assigned anew, not changed in place: the case tracks what was generated.
    if isinstance(case.query, dict) and case.query.keys() & _FIELD_TARGETS.keys():
        case.query = {
            key: pick(_FIELD_TARGETS[key], value) if key in _FIELD_TARGETS else value
            for key, value in case.query.items()
        }
    if positive:
        _keep_positive(case, targets)
    elif isinstance(case.body, dict) and case.body.keys() & _FIELD_TARGETS.keys():
        case.body = {
            key: pick(_FIELD_TARGETS[key], value) if key in _FIELD_TARGETS else value
            for key, value in case.body.items()
        }


def _keep_positive(case, targets: Targets) -> None:
    """What a positive case must also satisfy beyond its schema: rules between parameters and
    references to objects that exist."""
    query = case.query
    if isinstance(query, dict) and query.get("target") == "reduce_factor":
        case.query = query = {"factor": "Market", **query}  # reduce_factor names its factor
    if isinstance(query, dict) and {"start", "end"} <= query.keys():
        start, end = query["start"], query["end"]
        if isinstance(start, str) and isinstance(end, str) and start > end:
            case.query = {**query, "start": end, "end": start}
    if isinstance(case.body, dict):
        case.body = _own_references(case.body, targets)


def _own_references(body: dict, targets: Targets) -> dict:
    """The body with every object it names replaced by one of the user's own."""
    own = {}
    for key, value in body.items():
        if key in _FIELD_TARGETS:
            value = getattr(targets, _FIELD_TARGETS[key])[0]
        elif key in _LIST_TARGETS and isinstance(value, list) and value:
            value = [getattr(targets, _LIST_TARGETS[key])[0]]
        own[key] = value
    return own


def _excluded(case) -> list:
    return [positive_data_acceptance] if case.operation.label in DOMAIN_RULES else []


@schema.parametrize()
@schema.given(data=st.data())
def test_api_fuzz_no_server_error_and_schema_conformance(case, data, fuzzed: Fuzzed):
    _aim(case, data, fuzzed.targets)
    with transaction.atomic():
        # identity: the in-process WSGI transport does not decode gzip (tested in test_caching).
        headers = {"Authorization": f"Bearer {fuzzed.token}", "Accept-Encoding": "identity"}
        case.call_and_validate(
            app=fuzzed.app,
            headers=headers,
            checks=CHECKS_ALL,
            excluded_checks=_excluded(case),
        )
        transaction.set_rollback(True)


def test_api_fuzz_stateful(fuzzed: Fuzzed):
    """The stateful phase: sequences along the links schemathesis infers between operations
    (an id a POST returns used by the GET, PATCH and DELETE of that object), so use_after_free
    and ensure_resource_availability have something to check. Each sequence runs in a
    savepoint rolled back after it."""
    headers = {"Authorization": f"Bearer {fuzzed.token}", "Accept-Encoding": "identity"}

    class Workflow(schema.as_state_machine()):  # type: ignore[misc]  # built at run time
        def setup(self) -> None:
            self.atomic = transaction.atomic()
            self.atomic.__enter__()

        def teardown(self) -> None:
            transaction.set_rollback(True)
            self.atomic.__exit__(None, None, None)

        def before_call(self, case) -> None:
            if case.meta is not None and case.meta.generation.mode.is_positive:
                _keep_positive(case, fuzzed.targets)

        def get_call_kwargs(self, case) -> dict:
            return {"app": fuzzed.app, "headers": headers}

        def validate_response(self, response, case, additional_checks=None, **kwargs) -> None:
            case.validate_response(
                response,
                checks=CHECKS_ALL,
                excluded_checks=_excluded(case),
                headers=headers,
                transport_kwargs=kwargs,
                recorder=getattr(self, "recorder", None),
            )

    Workflow.run(
        settings=settings(
            max_examples=EXAMPLES or 8,
            stateful_step_count=6 if LONG_RUN else 4,
            deadline=None,
            derandomize=not LONG_RUN and not SEED,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
    )
