"""OWASP API Security Top 10 over every route of the URL configuration.

Object level authorisation (API1): a second user walks every route that names an object with the
first user's ids, with every method the route answers, and gets 404; the first user's objects are
unchanged afterwards. Function level (API5): staff-only routes are 403 for everyone else. Mass
assignment (API3): owner and portfolio fields cannot point at another user's objects. Resource
consumption (API4): login throttles. Configuration (API8): headers, CORS, `check --deploy`.
Authentication on every route (API2) is in sigmasight/tests/api/test_conventions.py.
"""

from __future__ import annotations

import io
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.hashers import check_password, make_password
from django.core.management import call_command
from django.core.management.utils import get_random_secret_key
from django.db.models import Max, Model
from django.test import override_settings
from rest_framework.test import APIClient

from analytics.jobs import TRIGGERS
from analytics.models import BatchJob
from analytics.tests.helpers import SERIES
from modeling.models import (
    AlertSettings,
    Breach,
    ExportHistory,
    Limit,
    ModelingSession,
    ProFormaTrade,
    Report,
)
from modeling.tests.helpers import AS_OF, EXPIRY, add, fetch, open_session
from portfolios import services as book
from portfolios.models import Portfolio, Position, Strategy, Tag
from portfolios.tests.factories import PortfolioFactory, option, stock
from sigmasight.accounts.tests.factories import DEFAULT_PASSWORD, UserFactory
from sigmasight.settings import base
from sigmasight.tests.helpers import LOGIN, assert_envelope, client_for, manage
from sigmasight.tests.routes import OWNED, PUBLIC, SHARED, Route, api_routes, unthrottled
from stress.models import StressScenario

pytestmark = pytest.mark.django_db

STAFF = {
    "admin/batch/": {"trigger": next(iter(TRIGGERS))},
    "admin/batch/jobs/": {"pk": "job"},
}
STAFF_ROUTES = {
    "/api/v1/auth/register/",
    "/api/v1/market-data/refresh/",
    "/api/v1/admin/demo/reset/",
    "/api/v1/admin/batch/{trigger}/",
    "/api/v1/admin/batch/jobs/",
    "/api/v1/admin/batch/jobs/{pk}/",
}


def _owned_routes() -> list[Route]:
    return [r for r in api_routes() if r.params and not r.staff_only and r.prefix not in SHARED]


# --- the two books ----------------------------------------------------------------------------


def _world(user) -> dict[str, int]:
    """One of everything a route can name, owned by `user`, made through the API and services."""
    client = client_for(user)
    portfolio = PortfolioFactory(owner=user, cash=Decimal("250000"))
    aapl = stock(portfolio, "AAPL", "300")
    msft = stock(portfolio, "MSFT", "-120")
    calls = option(portfolio, "AAPL", EXPIRY, "C", "250", "-2")
    fetch([calls.symbol])
    tag = book.tag_create(owner=user, name="core")
    book.position_set_tags(position=aapl, tag_ids=[tag.pk])
    pair = book.strategy_create(
        portfolio=portfolio, name="pair", kind=Strategy.Kind.PAIRS, position_ids=[aapl.pk, msft.pk]
    )
    scenario = client.post(
        "/api/v1/stress/scenarios/",
        {"name": f"mine {user.pk}", "category": "market", "shocks": {"Market": -0.2}},
        format="json",
    )
    assert scenario.status_code == 201, scenario.content
    session = open_session(client, portfolio)
    trade = add(client, session, symbol="JPM", quantity="10")
    assert client.post(f"/api/v1/modeling/sessions/{session}/save/").status_code == 201
    export = client.post("/api/v1/export/trades/", {"session": session, "format": "csv"})
    assert export.status_code == 200, export.content
    report = client.post(
        "/api/v1/reports/generate/",
        {"portfolio": portfolio.pk, "kind": "risk_summary", "format": "csv"},
        format="json",
    )
    assert report.status_code == 202, report.content
    limit = client.post(
        "/api/v1/limits/",
        {"portfolio": portfolio.pk, "measure": "beta", "unit": "number", "hard": 1.5},
        format="json",
    )
    assert limit.status_code == 201, limit.content
    # Breaches are opened by the limits job; one made here stands for it.
    breach = Breach.objects.create(
        limit_id=limit.json()["id"],
        portfolio=portfolio,
        session=AS_OF,
        value=1.8,
        bound_value=1.5,
        level="hard",
        first_seen=AS_OF,
        last_seen=AS_OF,
        notified_value=1.8,
    )
    return {
        "portfolio": portfolio.pk,
        "position": aapl.pk,
        "tag": tag.pk,
        "strategy": pair.pk,
        "scenario": scenario.json()["id"],
        "session": session,
        "trade": trade["id"],
        "export": int(export["X-Export-Id"]),
        "report": report.json()["id"],
        "limit": limit.json()["id"],
        "breach": breach.pk,
    }


@pytest.fixture
def market(db) -> None:
    fetch(["AAPL", "MSFT", "JPM", *SERIES])
    call_command("load_stress_scenarios", stdout=io.StringIO())


@pytest.fixture
def mine(user, market) -> dict[str, int]:
    return _world(user)


@pytest.fixture
def theirs(other_user, market) -> dict[str, int]:
    return _world(other_user)


def _concrete(model: type[Model]) -> list[str]:
    return [f.attname for f in model._meta.concrete_fields]


def _state(user) -> dict[str, list]:
    """Everything the user owns, field by field: a write through another user's request shows."""
    owned = [
        Portfolio.objects.filter(owner=user),
        Position.objects.filter(portfolio__owner=user),
        Tag.objects.filter(owner=user),
        Strategy.objects.filter(portfolio__owner=user),
        StressScenario.objects.filter(owner=user),
        ModelingSession.objects.filter(owner=user),
        ProFormaTrade.objects.filter(session__owner=user),
        ExportHistory.objects.filter(user=user),
        Report.objects.filter(owner=user),
        Limit.objects.filter(owner=user),
        Breach.objects.filter(limit__owner=user),
        AlertSettings.objects.filter(user=user),
    ]
    return {
        qs.model.__name__: [
            {
                key: bytes(value) if isinstance(value, memoryview) else value
                for key, value in row.items()
            }
            for row in qs.order_by("pk").values(*_concrete(qs.model))
        ]
        for qs in owned
    }


# --- the walk ---------------------------------------------------------------------------------


def test_walker_knows_how_to_fill_every_route():
    routes = api_routes()
    assert len(routes) > 40
    assert {"/api/v1/portfolios/{pk}/", "/api/v1/modeling/sessions/{pk}/trades/{trade_id}/"} <= {
        r.template for r in routes
    }
    for route in routes:
        if not route.params:
            continue
        known = {**OWNED, **SHARED, **STAFF}.get(route.prefix)
        assert known is not None and set(route.params) <= set(known), (
            f"{route.template}: tell the walk in {api_routes.__module__} which object fills "
            f"{route.params} (OWNED, SHARED or STAFF)"
        )


@unthrottled
def test_every_object_route_is_404_for_another_user(mine, theirs, user, other_user):
    """Each placeholder in turn is the first user's id, the others the second user's own (a
    trade of mine under a session of yours); every method the route answers is a 404 for them,
    and nothing of the first user's changed."""
    before = _state(user)
    other = client_for(other_user)
    walked = 0
    for route in _owned_routes():
        names = OWNED[route.prefix]
        for leaked in route.params:
            ids = {p: (mine if p == leaked else theirs)[names[p]] for p in route.params}
            url = route.url(ids)
            for method in route.methods:
                response = getattr(other, method)(url, {}, format="json")
                assert response.status_code == 404, (method, url, response.content)
                assert_envelope(response, 404)
                walked += 1
    assert walked > 30
    assert _state(user) == before


@unthrottled
def test_every_object_route_answers_its_owner(mine, user):
    """The ids of the walk are real: the owner reads every object route (a GET is never the
    404 the other user gets; a report still queued says so with its own code)."""
    owner = client_for(user)
    for route in _owned_routes():
        if "get" not in route.methods:
            continue
        url = route.url({p: mine[OWNED[route.prefix][p]] for p in route.params})
        response = owner.get(url)
        assert response.status_code < 500, (url, response.content)
        if response.status_code == 404:
            assert response.json()["error"]["code"] != "not_found", url


@unthrottled
@pytest.mark.parametrize("param", ["portfolio", "session", "tag"])
def test_query_parameters_naming_another_users_object_look_like_missing_ones(mine, param):
    """`?portfolio=<yours>` answers exactly as `?portfolio=<no such id>` on every list and
    computed route: never data, never a different error that reveals the id exists."""
    stranger = client_for(UserFactory())
    model: type[Any] = {
        "portfolio": Portfolio,
        "session": ModelingSession,
        "tag": Tag,
    }[param]
    missing = (model.objects.aggregate(m=Max("pk"))["m"] or 0) + 1000
    routes = [
        r
        for r in api_routes()
        if not r.params and "get" in r.methods and not r.staff_only and r.template not in PUBLIC
    ]
    assert len(routes) > 15
    for route in routes:
        theirs_ = stranger.get(route.template, {param: mine[param]})
        absent = stranger.get(route.template, {param: missing})
        assert theirs_.status_code == absent.status_code, (route.template, theirs_.content)
        if theirs_["Content-Type"].startswith("application/json"):
            assert theirs_.json() == absent.json(), route.template


def test_staff_routes_are_the_expected_ones():
    staff = {r.template for r in api_routes() if r.staff_only}
    assert staff >= STAFF_ROUTES


@unthrottled
def test_staff_only_routes_are_403_for_everyone_else(auth_client, staff_client):
    job = BatchJob.objects.create(name="greeks", run_date=AS_OF)
    for route in api_routes():
        if not route.staff_only:
            continue
        ids = {p: job.pk if p == "pk" else STAFF[route.prefix][p] for p in route.params}
        url = route.url(ids)
        for method in route.methods:
            response = getattr(auth_client, method)(url, {}, format="json")
            assert_envelope(response, 403, "permission_denied")
    assert staff_client.get("/api/v1/admin/batch/jobs/").json()["count"] == 1
    assert staff_client.get(f"/api/v1/admin/batch/jobs/{job.pk}/").status_code == 200


# --- mass assignment --------------------------------------------------------------------------


def test_creating_with_another_users_portfolio_is_refused_and_writes_nothing(theirs, auth_client):
    portfolio = theirs["portfolio"]
    counts = {
        m: m.objects.count()
        for m in (Position, Strategy, ModelingSession, Report, StressScenario, Limit)
    }
    attempts = [
        (
            "/api/v1/positions/",
            {
                "portfolio": portfolio,
                "symbol": "IBM",
                "quantity": "1",
                "entry_price": "100",
                "entry_date": "2024-01-02",
            },
        ),
        (
            "/api/v1/strategies/",
            {
                "portfolio": portfolio,
                "name": "x",
                "kind": "custom",
                "position_ids": [theirs["position"]],
            },
        ),
        ("/api/v1/modeling/sessions/", {"portfolio": portfolio, "name": "x"}),
        (
            "/api/v1/reports/generate/",
            {"portfolio": portfolio, "kind": "risk_summary", "format": "csv"},
        ),
        ("/api/v1/risk/scenarios/calculate/", {"portfolio": portfolio}),
        ("/api/v1/export/trades/", {"session": theirs["session"], "format": "csv"}),
        (
            "/api/v1/limits/",
            {"portfolio": portfolio, "measure": "beta", "unit": "number", "hard": 1},
        ),
        (f"/api/v1/stress/test/{portfolio}/", {"scenario_ids": [theirs["scenario"]]}),
    ]
    for url, body in attempts:
        response = auth_client.post(url, body, format="json")
        assert response.status_code in (400, 404), (url, response.content)
        assert_envelope(response, response.status_code)
    assert {m: m.objects.count() for m in counts} == counts


def test_own_objects_cannot_reference_another_users(mine, theirs, auth_client):
    """My strategy over your position, your tag on my position, your scenario in my stress run."""
    response = auth_client.post(
        "/api/v1/strategies/",
        {
            "portfolio": mine["portfolio"],
            "name": "x",
            "kind": "custom",
            "position_ids": [mine["position"], theirs["position"]],
        },
        format="json",
    )
    assert_envelope(response, 400, "validation_error")
    response = auth_client.put(
        f"/api/v1/positions/{mine['position']}/tags/", {"tag_ids": [theirs["tag"]]}, format="json"
    )
    assert_envelope(response, 400, "validation_error")
    assert not Position.objects.filter(pk=mine["position"], tags__pk=theirs["tag"]).exists()
    response = auth_client.post(
        f"/api/v1/stress/test/{mine['portfolio']}/",
        {"scenario_ids": [theirs["scenario"]]},
        format="json",
    )
    assert_envelope(response, 400, "validation_error")


def test_owner_in_a_body_is_ignored(market, user, other_user, auth_client):
    created: dict[Any, Any] = {
        Portfolio: auth_client.post(
            "/api/v1/portfolios/", {"name": "mine", "owner": other_user.pk}, format="json"
        ),
        Tag: auth_client.post(
            "/api/v1/tags/", {"name": "t", "owner": other_user.pk}, format="json"
        ),
        StressScenario: auth_client.post(
            "/api/v1/stress/scenarios/",
            {"name": "s", "category": "market", "shocks": {"Market": -0.1}, "owner": other_user.pk},
            format="json",
        ),
    }
    for model, response in created.items():
        assert response.status_code == 201, response.content
        assert model.objects.get(pk=response.json()["id"]).owner_id == user.pk
    portfolio = created[Portfolio].json()["id"]
    response = auth_client.patch(
        f"/api/v1/portfolios/{portfolio}/", {"owner": other_user.pk, "name": "renamed"}
    )
    assert response.status_code == 200
    assert Portfolio.objects.get(pk=portfolio).owner_id == user.pk


def test_a_position_cannot_move_to_another_users_portfolio(mine, theirs, auth_client):
    response = auth_client.patch(
        f"/api/v1/positions/{mine['position']}/", {"portfolio": theirs["portfolio"]}, format="json"
    )
    assert_envelope(response, 400, "validation_error")
    assert Position.objects.get(pk=mine["position"]).portfolio_id == mine["portfolio"]


# --- throttles --------------------------------------------------------------------------------


def _login(client: APIClient, email: str, password: str = DEFAULT_PASSWORD, ip: str = "10.0.0.1"):
    return client.post(LOGIN, {"email": email, "password": password}, REMOTE_ADDR=ip)


@override_settings(SIGMASIGHT_THROTTLE_LOGIN_EMAIL="3/min", SIGMASIGHT_THROTTLE_LOGIN_IP="100/min")
def test_login_is_throttled_per_email_from_any_address(api_client, user):
    for n in range(3):
        assert _login(api_client, user.email, "wrong", ip=f"10.0.0.{n}").status_code == 401
    # The right password from a fresh address is refused too: the account is being guessed at.
    response = _login(api_client, user.email.upper(), ip="10.0.0.99")
    assert_envelope(response, 429, "throttled")
    assert int(response["Retry-After"]) > 0
    assert _login(api_client, "someone.else@example.com", "x").status_code == 401


@override_settings(SIGMASIGHT_THROTTLE_LOGIN_IP="3/min", SIGMASIGHT_THROTTLE_LOGIN_EMAIL="100/min")
def test_login_is_throttled_per_address_across_emails(api_client, user):
    for n in range(3):
        assert _login(api_client, f"guess{n}@example.com", "x").status_code == 401
    response = _login(api_client, user.email)
    assert_envelope(response, 429, "throttled")
    assert int(response["Retry-After"]) > 0
    assert _login(api_client, user.email, ip="10.0.0.2").status_code == 200


@override_settings(SIGMASIGHT_THROTTLE_LOGIN_IP="2/min")
def test_login_throttle_ignores_a_forged_forwarded_for(api_client, user):
    for n in range(2):
        api_client.post(
            LOGIN, {"email": user.email, "password": "x"}, HTTP_X_FORWARDED_FOR=f"203.0.113.{n}"
        )
    response = api_client.post(
        LOGIN, {"email": user.email, "password": "x"}, HTTP_X_FORWARDED_FOR="203.0.113.77"
    )
    assert_envelope(response, 429, "throttled")


def test_login_throttles_default_to_strict_rates(settings):
    assert settings.SIGMASIGHT_THROTTLE_LOGIN_IP == "20/min"
    assert settings.SIGMASIGHT_THROTTLE_LOGIN_EMAIL == "5/min"
    assert settings.REST_FRAMEWORK["NUM_PROXIES"] == 0


# --- passwords --------------------------------------------------------------------------------


def test_passwords_are_hashed_with_argon2id_and_old_hashes_upgraded_at_login(api_client):
    with override_settings(PASSWORD_HASHERS=base.PASSWORD_HASHERS):
        encoded = make_password("a-long-unusual-passphrase")
        assert encoded.startswith("argon2$argon2id$")
        assert check_password("a-long-unusual-passphrase", encoded)
        legacy = UserFactory()
        legacy.password = make_password(DEFAULT_PASSWORD, hasher="pbkdf2_sha256")
        legacy.save(update_fields=["password"])
        assert _login(api_client, legacy.email).status_code == 200
        legacy.refresh_from_db()
        assert legacy.password.startswith("argon2$argon2id$")


# --- headers, CORS, deploy check --------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/v1/health/", "/api/v1/auth/me/", "/api/v1/nope/"])
def test_security_headers_on_every_response(api_client, path):
    response = api_client.get(path)
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"


def test_hsts_on_https_and_redirect_to_https_when_debug_is_off(api_client, settings):
    response = api_client.get("/api/v1/health/", secure=True)
    assert response["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
    assert "Strict-Transport-Security" not in api_client.get("/api/v1/health/")
    settings.SECURE_SSL_REDIRECT = True  # off in the test settings only; on by default
    client = APIClient()  # SecurityMiddleware reads its settings when the client loads it
    redirected = client.get("/api/v1/auth/me/")
    assert redirected.status_code == 301
    assert redirected["Location"] == "https://testserver/api/v1/auth/me/"
    # The platform's health probe speaks plain HTTP inside the network.
    assert client.get("/api/v1/health/").status_code == 200


@override_settings(CORS_ALLOWED_ORIGINS=["https://app.example.com"])
def test_cors_allows_only_listed_origins(api_client):
    allowed = api_client.get("/api/v1/health/", HTTP_ORIGIN="https://app.example.com")
    assert allowed["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert "X-Request-ID" in allowed["Access-Control-Expose-Headers"]
    other = api_client.get("/api/v1/health/", HTTP_ORIGIN="https://evil.example.net")
    assert "Access-Control-Allow-Origin" not in other
    preflight = api_client.options(
        "/api/v1/auth/login/",
        HTTP_ORIGIN="https://app.example.com",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization, content-type, x-request-id",
    )
    assert preflight["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert "x-request-id" in preflight["Access-Control-Allow-Headers"]


def test_cors_allows_no_origin_by_default(api_client):
    assert base.CORS_ALLOWED_ORIGINS == []
    assert not getattr(base, "CORS_ALLOW_ALL_ORIGINS", False)
    response = api_client.get("/api/v1/health/", HTTP_ORIGIN="http://localhost:3000")
    assert "Access-Control-Allow-Origin" not in response


def test_check_deploy_is_clean_with_only_the_required_production_settings():
    env = {
        "DEBUG": "false",
        "SECRET_KEY": get_random_secret_key() + get_random_secret_key(),
        "ALLOWED_HOSTS": "sigmasight.example.com",
    }
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout
