"""The limits API: CRUD of a user's own limits, validated whole by the spec (nothing written when
refused), scoped to the user (another user's limit is a 404, their portfolio a 400), audited,
and listed for a fixed number of queries."""

from __future__ import annotations

import pytest

from modeling.models import Limit
from portfolios.tests.factories import PortfolioFactory
from sigmasight.audit.models import AuditEvent
from sigmasight.tests.helpers import assert_envelope
from stress.models import StressScenario

pytestmark = pytest.mark.django_db

LIMITS = "/api/v1/limits/"
CRISIS = "Limits test crash"
VAR = {
    "name": "1-day VaR",
    "measure": "var",
    "params": {"confidence": 0.99},
    "bound": "max",
    "unit": "share_of_equity",
    "warning": 0.04,
    "hard": 0.06,
}


@pytest.fixture
def book(user):
    return PortfolioFactory(owner=user, name="Core")


@pytest.fixture
def scenarios(db) -> None:
    StressScenario.objects.create(name=CRISIS, category="historical", shocks={"Market": -0.4})
    StressScenario.objects.create(
        name="Limits test retired", category="market", shocks={"Market": -0.1}, is_active=False
    )


def _limit(owner, portfolio=None, **fields) -> Limit:
    values = {"measure": "gross_exposure", "unit": "money", "hard": 1_000_000.0, **fields}
    return Limit.objects.create(owner=owner, portfolio=portfolio, **values)


def _events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("id"))


# --- create, read, update, delete -------------------------------------------------------------


def test_limit_create_stores_it_with_the_measures_defaults(auth_client, user, book):
    response = auth_client.post(LIMITS, {**VAR, "portfolio": book.pk}, format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    limit = Limit.objects.get(pk=body["id"])
    assert (limit.owner_id, limit.portfolio_id) == (user.pk, book.pk)
    # The stored params are explicit: the method and horizon the job will use.
    expected = {"method": "historical", "confidence": 0.99, "horizon_days": 1}
    assert limit.params == body["params"] == expected
    assert body["measure_label"] == "Value at risk"
    assert {k: body[k] for k in ("measure", "bound", "unit", "warning", "hard", "is_active")} == {
        "measure": "var",
        "bound": "max",
        "unit": "share_of_equity",
        "warning": 0.04,
        "hard": 0.06,
        "is_active": True,
    }
    [event] = _events("limit.create")
    assert (event.actor_id, event.object_id, event.portfolio_id) == (
        user.pk,
        str(limit.pk),
        book.pk,
    )
    assert event.details["measure"] == "var"


def test_limit_create_on_every_portfolio_and_with_defaults(auth_client, scenarios):
    body = {"measure": "stress_loss", "params": {"scenario": CRISIS}, "unit": "money", "hard": 5e5}
    response = auth_client.post(LIMITS, body, format="json")

    assert response.status_code == 201, response.content
    created = response.json()
    assert created["portfolio"] is None  # every portfolio of the user's
    assert (created["bound"], created["warning"], created["is_active"]) == ("max", None, True)
    assert created["params"] == {"scenario": CRISIS}
    assert created["name"] == ""


def test_limit_list_and_detail_are_the_users_own_in_order(auth_client, user, other_user, book):
    first = _limit(user, book, name="Gross")
    second = _limit(user, None, measure="beta", unit="number", hard=1.2, bound="abs_max")
    _limit(other_user, PortfolioFactory(owner=other_user))

    listed = auth_client.get(LIMITS).json()
    assert listed["count"] == 2
    assert [row["id"] for row in listed["results"]] == [first.pk, second.pk]
    detail = auth_client.get(f"{LIMITS}{second.pk}/").json()
    assert (detail["measure"], detail["bound"], detail["portfolio"]) == ("beta", "abs_max", None)


def test_limit_list_filters_and_orders(auth_client, user, book):
    other_book = PortfolioFactory(owner=user)
    on_book = _limit(user, book, name="b")
    on_all = _limit(user, None, name="a", measure="beta", unit="number", hard=1.0)
    _limit(user, other_book, name="c", is_active=False)

    def ids(query: dict) -> list[int]:
        response = auth_client.get(LIMITS, query)
        assert response.status_code == 200, response.content
        return [row["id"] for row in response.json()["results"]]

    assert ids({"portfolio": book.pk}) == [on_book.pk]
    assert ids({"applies_to": book.pk}) == [on_book.pk, on_all.pk]
    assert ids({"measure": "beta"}) == [on_all.pk]
    assert len(ids({"is_active": "false"})) == 1
    assert ids({"ordering": "name"})[:2] == [on_all.pk, on_book.pk]
    assert ids({"search": "beta"}) == [on_all.pk]
    assert_envelope(auth_client.get(LIMITS, {"measure": "nope"}), 400, "validation_error")
    assert_envelope(auth_client.get(LIMITS, {"applies_to": "0"}), 400, "validation_error")


def test_limit_patch_changes_what_it_names_and_is_audited(auth_client, user, book):
    limit = _limit(user, None, warning=800_000.0)

    response = auth_client.patch(
        f"{LIMITS}{limit.pk}/", {"hard": 2_000_000, "portfolio": book.pk}, format="json"
    )

    assert response.status_code == 200, response.content
    limit.refresh_from_db()
    assert (limit.hard, limit.portfolio_id, limit.warning) == (2_000_000.0, book.pk, 800_000.0)
    [event] = _events("limit.update")
    assert event.details["fields"] == ["hard", "portfolio"]
    assert event.details["changes"]["hard"] == [1_000_000.0, 2_000_000.0]


def test_limit_patch_is_checked_against_the_stored_limit(auth_client, user):
    """A PATCH of one field is validated with the others as stored: beta is not in money."""
    limit = _limit(user, None, warning=800_000.0)
    before = Limit.objects.filter(pk=limit.pk).values().get()

    for body, field in [
        ({"measure": "beta"}, "unit"),
        ({"hard": 500_000}, "warning"),  # the stored warning would be beyond it
        ({"params": {"confidence": 0.99}}, "params"),  # gross exposure takes none
    ]:
        error = assert_envelope(
            auth_client.patch(f"{LIMITS}{limit.pk}/", body, format="json"),
            400,
            "validation_error",
        )
        assert field in error["fields"], (body, error)

    assert Limit.objects.filter(pk=limit.pk).values().get() == before
    assert not _events("limit.update")


def test_limit_delete_is_audited(auth_client, user, book):
    limit = _limit(user, book)

    assert auth_client.delete(f"{LIMITS}{limit.pk}/").status_code == 204

    assert not Limit.objects.exists()
    [event] = _events("limit.delete")
    assert (event.object_id, event.portfolio_id) == (str(limit.pk), book.pk)


def test_limit_put_is_not_allowed(auth_client, user):
    limit = _limit(user)
    assert_envelope(auth_client.put(f"{LIMITS}{limit.pk}/", {}, format="json"), 405)


# --- validation -------------------------------------------------------------------------------


def _var(**changes) -> dict:
    return {**VAR, **changes}


INVALID = {
    "unknown measure": (_var(measure="sharpe"), "measure"),
    "wrong unit for the measure": (_var(unit="days"), "unit"),
    "unit unknown": (_var(unit="percent"), "unit"),
    "unknown param": (_var(params={"confidence": 0.99, "lookback": 20}), "params"),
    "param of another measure": (_var(params={"scenario": CRISIS}), "params"),
    "confidence not one the batch computes": (_var(params={"confidence": 0.9}), "params"),
    "method unknown": (_var(params={"method": "garch"}), "params"),
    "horizon out of range": (_var(params={"horizon_days": 1000}), "params"),
    "params not an object": (_var(params=[1]), "params"),
    "unknown scenario": (
        {"measure": "stress_loss", "params": {"scenario": "Martian invasion"}, "unit": "money"}
        | {"hard": 1},
        "params",
    ),
    "inactive scenario": (
        {
            "measure": "stress_loss",
            "params": {"scenario": "Limits test retired"},
            "unit": "money",
            "hard": 1,
        },
        "params",
    ),
    "stress loss without a scenario": (
        {"measure": "stress_loss", "unit": "money", "hard": 1},
        "params",
    ),
    "warning beyond hard": (_var(warning=0.08), "warning"),
    "warning below a minimum's hard": (
        {"measure": "gross_exposure", "bound": "min", "unit": "money", "warning": 5, "hard": 10},
        "warning",
    ),
    "negative absolute maximum": (
        {"measure": "beta", "bound": "abs_max", "unit": "number", "hard": -1},
        "hard",
    ),
    "bound unknown": (_var(bound="between"), "bound"),
    "hard missing": ({k: v for k, v in VAR.items() if k != "hard"}, "hard"),
    "hard not a number": (_var(hard="lots"), "hard"),
    "name with a control character": (_var(name="VaR\x00"), "name"),
}


@pytest.mark.parametrize(("body", "field"), list(INVALID.values()), ids=list(INVALID))
def test_limit_create_refuses_an_invalid_limit_naming_the_field(
    auth_client, book, scenarios, body, field
):
    response = auth_client.post(LIMITS, {**body, "portfolio": book.pk}, format="json")

    error = assert_envelope(response, 400, "validation_error")
    assert field in error["fields"], error
    assert all(isinstance(m, str) and m for m in error["fields"][field])
    assert not Limit.objects.exists()
    assert not AuditEvent.objects.exists()


def test_limit_create_refuses_another_users_or_a_missing_portfolio(auth_client, other_user, book):
    theirs = PortfolioFactory(owner=other_user)
    responses = [
        auth_client.post(LIMITS, _var(portfolio=theirs.pk), format="json"),
        auth_client.post(LIMITS, _var(portfolio=theirs.pk + 1000), format="json"),
    ]
    # Another user's portfolio answers exactly like one that does not exist.
    errors = [assert_envelope(r, 400, "validation_error") for r in responses]
    assert all(set(e["fields"]) == {"portfolio"} for e in errors)
    assert errors[0]["fields"]["portfolio"] == [
        m.replace(str(theirs.pk + 1000), str(theirs.pk)) for m in errors[1]["fields"]["portfolio"]
    ]
    assert not Limit.objects.exists()


def test_limit_cannot_move_to_another_users_portfolio(auth_client, user, other_user, book):
    limit = _limit(user, book)
    theirs = PortfolioFactory(owner=other_user)

    response = auth_client.patch(f"{LIMITS}{limit.pk}/", {"portfolio": theirs.pk}, format="json")

    assert "portfolio" in assert_envelope(response, 400, "validation_error")["fields"]
    limit.refresh_from_db()
    assert limit.portfolio_id == book.pk


def test_limit_may_name_the_users_own_scenario_not_another_users(auth_client, user, other_user):
    StressScenario.objects.create(
        name="My shock", category="market", shocks={"Market": -0.2}, owner=user
    )
    StressScenario.objects.create(
        name="Their shock", category="market", shocks={"Market": -0.2}, owner=other_user
    )
    body = {"measure": "stress_loss", "unit": "share_of_equity", "hard": 0.2}

    mine = auth_client.post(LIMITS, {**body, "params": {"scenario": "My shock"}}, format="json")
    theirs = auth_client.post(
        LIMITS, {**body, "params": {"scenario": "Their shock"}}, format="json"
    )

    assert mine.status_code == 201, mine.content
    assert "params" in assert_envelope(theirs, 400, "validation_error")["fields"]
    assert Limit.objects.count() == 1


def test_limit_owner_in_a_body_is_ignored(auth_client, user, other_user):
    response = auth_client.post(LIMITS, _var(owner=other_user.pk), format="json")
    assert response.status_code == 201, response.content
    assert Limit.objects.get().owner_id == user.pk


# --- another user -----------------------------------------------------------------------------


def test_limit_of_another_user_is_404_and_unchanged(other_client, user, book):
    limit = _limit(user, book)
    before = Limit.objects.filter(pk=limit.pk).values().get()
    url = f"{LIMITS}{limit.pk}/"

    assert_envelope(other_client.get(url), 404, "not_found")
    assert_envelope(other_client.patch(url, {"hard": 1}, format="json"), 404, "not_found")
    assert_envelope(other_client.delete(url), 404, "not_found")
    assert other_client.get(LIMITS).json()["count"] == 0
    assert other_client.get(LIMITS, {"portfolio": book.pk}).json()["count"] == 0
    assert Limit.objects.filter(pk=limit.pk).values().get() == before


def test_limits_need_a_token(api_client):
    assert_envelope(api_client.get(LIMITS), 401, "not_authenticated")


# --- query counts -----------------------------------------------------------------------------


@pytest.mark.parametrize("size", [1, 12])
def test_limit_list_query_count_is_fixed(auth_client, user, book, size, django_assert_num_queries):
    for n in range(size):
        _limit(user, book if n % 2 else None, name=f"limit {n}")
    with django_assert_num_queries(3):  # user, count, page
        response = auth_client.get(LIMITS)
    assert response.json()["count"] == size
