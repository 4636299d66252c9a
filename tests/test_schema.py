"""The OpenAPI schema states what the API does (Hardening II, item 7), and the API is strict
where it used to read a malformed parameter or body as if it were absent."""

from __future__ import annotations

import json

import pytest
from drf_spectacular.generators import SchemaGenerator

from analytics.jobs import TRIGGERS
from marketdata import calendar
from portfolios.tests.factories import PortfolioFactory
from sigmasight.api.fields import MAX_ID
from sigmasight.api.schema import AS_OF_PATTERN, ERRORS
from stress.api.views import CRISES

API = "/api/v1"


@pytest.fixture(scope="module")
def openapi() -> dict:
    return SchemaGenerator().get_schema(public=True)


def _parameter(openapi: dict, path: str, name: str, method: str = "get") -> dict:
    parameters = openapi["paths"][path][method]["parameters"]
    return next(p for p in parameters if p["name"] == name)


# Schema facts ---------------------------------------------------------------------------------
def test_schema_batch_trigger_is_an_enum_of_the_triggers(openapi):
    trigger = _parameter(openapi, "/api/v1/admin/batch/{trigger}/", "trigger", "post")
    assert trigger["in"] == "path"
    assert sorted(trigger["schema"]["enum"]) == sorted(TRIGGERS)
    assert set(TRIGGERS) == {"market-data", "risk-metrics", "snapshots", "stress", "limits", "all"}


def test_schema_historical_crisis_enum_and_portfolio_query(openapi):
    path = "/api/v1/stress/historical/{crisis}/"
    assert sorted(_parameter(openapi, path, "crisis")["schema"]["enum"]) == sorted(CRISES)
    portfolio = _parameter(openapi, path, "portfolio")
    assert portfolio["in"] == "query"
    assert portfolio["schema"]["type"] == "integer"
    assert (portfolio["schema"]["minimum"], portfolio["schema"]["maximum"]) == (1, MAX_ID)


def test_schema_every_operation_documents_every_error_status_with_the_envelope(openapi):
    envelope = openapi["components"]["schemas"]["ErrorEnvelope"]
    assert envelope["required"] == ["error"]
    shared = openapi["components"]["responses"]
    for name, *_ in ERRORS.values():
        schema = shared[name]["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/ErrorEnvelope"}
    assert shared["Throttled"]["headers"]["Retry-After"]["required"] is True
    for path, item in openapi["paths"].items():
        for method, operation in item.items():
            for status in ("400", "401", "403", "404", "405", "413", "415", "422", "429", "503"):
                assert status in operation["responses"], (method, path, status)


def test_schema_states_the_limits(openapi):
    page_size = _parameter(openapi, "/api/v1/positions/", "page_size")["schema"]
    assert (page_size["minimum"], page_size["maximum"]) == (1, 500)
    assert _parameter(openapi, "/api/v1/positions/", "page")["schema"]["minimum"] == 1
    assert _parameter(openapi, "/api/v1/positions/{id}/", "id")["schema"]["maximum"] == MAX_ID
    as_of = _parameter(openapi, "/api/v1/risk/greeks/", "as_of")["schema"]
    assert as_of["pattern"] == AS_OF_PATTERN
    assert (calendar.FIRST_YEAR, calendar.LAST_YEAR) == (1990, 2099)  # what the pattern spells
    # NulQueryMiddleware refuses NUL in any query parameter: free text says so.
    assert "\\x00" in _parameter(openapi, "/api/v1/positions/", "search")["schema"]["pattern"]


def test_schema_states_the_text_rule_and_non_empty_bodies(openapi):
    schemas = openapi["components"]["schemas"]
    name = schemas["TagRequest"]["properties"]["name"]
    # Text, or a number DRF keeps as its text; the text without control characters.
    assert name["anyOf"][1] == {"type": "number"}
    assert "\\u0000-\\u001f" in name["anyOf"][0]["pattern"]
    assert schemas["CalculateRequest"]["properties"]["options"]["minItems"] == 1
    assert schemas["ScenarioCalculateBodyRequest"]["required"] == ["portfolio"]


@pytest.mark.parametrize(
    ("query", "content_type"),
    [
        ("?format=json", "application/vnd.oai.openapi+json"),
        ("?format=yaml", "application/vnd.oai.openapi"),
        ("", "application/vnd.oai.openapi"),
    ],
)
def test_schema_view_honours_format(api_client, query, content_type):
    response = api_client.get(f"/api/schema/{query}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith(content_type)
    if "json" in query:
        assert json.loads(response.content)["openapi"].startswith("3.")


# Strict cases ---------------------------------------------------------------------------------
def _refused(response, field: str) -> None:
    assert response.status_code == 400, response.content
    body = response.json()["error"]
    assert body["code"] == "validation_error"
    assert field in body["fields"], body


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url",
    [
        f"{API}/risk/greeks/?as_of=",
        f"{API}/stress/correlations/?as_of=",
        f"{API}/factors/exposures/?level=",
        f"{API}/stress/historical/2008/?portfolio=",
    ],
)
def test_empty_query_parameter_is_refused_naming_it(auth_client, user, url):
    PortfolioFactory(owner=user)
    _refused(auth_client.get(url), url.rsplit("?", 1)[1].split("=")[0])


@pytest.mark.django_db
@pytest.mark.parametrize("value", ["null", "", "0", "501", "ten"])
def test_page_size_outside_1_to_500_or_not_a_number_is_refused(auth_client, value):
    _refused(auth_client.get(f"{API}/tags/?page_size={value}"), "page_size")


@pytest.mark.django_db
@pytest.mark.parametrize("value", ["", "0", "last"])
def test_page_not_a_positive_number_is_refused(auth_client, value):
    _refused(auth_client.get(f"{API}/tags/?page={value}"), "page")


@pytest.mark.django_db
def test_empty_typed_filter_is_refused_but_blank_text_is_not(auth_client):
    _refused(auth_client.get(f"{API}/positions/?expiring_before="), "expiring_before")
    assert auth_client.get(f"{API}/positions/?symbol=&search=").status_code == 200


@pytest.mark.django_db
def test_json_array_body_is_refused_in_the_envelope(auth_client, user):
    portfolio = PortfolioFactory(owner=user)
    response = auth_client.patch(f"{API}/portfolios/{portfolio.pk}/", [], format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "parse_error"


@pytest.mark.django_db
def test_form_body_is_refused_where_the_api_takes_json(auth_client):
    response = auth_client.post(f"{API}/tags/", {"name": "x"}, format="multipart")
    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_media_type"


@pytest.mark.django_db
def test_scenarios_calculate_without_a_body_names_portfolio(auth_client, user):
    PortfolioFactory(owner=user)
    _refused(auth_client.post(f"{API}/risk/scenarios/calculate/"), "portfolio")


@pytest.mark.django_db
def test_historical_portfolio_of_another_user_is_404(other_client, user):
    portfolio = PortfolioFactory(owner=user)
    response = other_client.get(f"{API}/stress/historical/2008/?portfolio={portfolio.pk}")
    assert response.status_code == 404


@pytest.mark.django_db
def test_boolean_filter_neither_true_nor_false_is_refused(auth_client):
    _refused(auth_client.get(f"{API}/stress/scenarios/?is_active=maybe"), "is_active")
    assert auth_client.get(f"{API}/stress/scenarios/?is_active=false").status_code == 200


@pytest.mark.django_db
def test_as_of_before_the_first_session_is_422_not_a_server_error(auth_client, user):
    PortfolioFactory(owner=user)
    response = auth_client.get(f"{API}/risk/greeks/?as_of=1990-01-01")  # a holiday, day one
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "insufficient_history"
    assert "as_of" in response.json()["error"]["fields"]
