"""The breaches API: the user's breaches, newest first, filtered by portfolio, status and level,
listed for a fixed number of queries; acknowledging an open one (audited, once), never a resolved
one; another user's are a 404 and never listed."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from modeling.models import Breach, Limit
from portfolios.tests.factories import PortfolioFactory
from sigmasight.audit.models import AuditEvent
from sigmasight.tests.helpers import assert_envelope

pytestmark = pytest.mark.django_db

BREACHES = "/api/v1/breaches/"
DAY = date(2026, 11, 20)


def _limit(owner, portfolio=None, **fields) -> Limit:
    values = {"measure": "gross_exposure", "unit": "money", "hard": 1_000_000.0, **fields}
    return Limit.objects.create(owner=owner, portfolio=portfolio, **values)


def _breach(limit: Limit, portfolio, *, days_ago: int = 0, **fields) -> Breach:
    seen = DAY - timedelta(days=days_ago)
    values = {
        "session": seen,
        "value": 1_200_000.0,
        "bound_value": limit.hard,
        "level": "hard",
        "first_seen": seen - timedelta(days=3),
        "last_seen": seen,
        "notified_value": 1_200_000.0,
        **fields,
    }
    return Breach.objects.create(limit=limit, portfolio=portfolio, **values)


@pytest.fixture
def book(user):
    return PortfolioFactory(owner=user, name="Core")


@pytest.fixture
def breaches(user, book) -> dict[str, Breach]:
    """An open, an acknowledged and a resolved breach of the user's, on two portfolios."""
    hedge = PortfolioFactory(owner=user, name="Hedge")
    gross = _limit(user, None, name="Gross cap")
    beta = _limit(user, book, measure="beta", unit="number", hard=1.2, bound="abs_max")
    return {
        "open": _breach(gross, book),
        "acknowledged": _breach(
            gross,
            hedge,
            days_ago=1,
            level="warning",
            status="acknowledged",
            acknowledged_at="2026-11-19T18:00:00Z",
        ),
        "resolved": _breach(beta, book, days_ago=5, status="resolved", resolved_on=DAY),
    }


def _ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


def test_breach_list_is_newest_first_with_its_fields(auth_client, breaches, book):
    response = auth_client.get(BREACHES)

    order = ["open", "acknowledged", "resolved"]
    assert _ids(response) == [breaches[k].pk for k in order]
    row = response.json()["results"][0]
    assert row == {
        "id": breaches["open"].pk,
        "limit": breaches["open"].limit_id,
        "limit_name": "Gross cap",
        "measure": "gross_exposure",
        "unit": "money",
        "bound": "max",
        "portfolio": book.pk,
        "session": "2026-11-20",
        "value": 1_200_000.0,
        "bound_value": 1_000_000.0,
        "level": "hard",
        "status": "open",
        "first_seen": "2026-11-17",
        "last_seen": "2026-11-20",
        "resolved_on": None,
        "acknowledged_at": None,
    }
    resolved = auth_client.get(f"{BREACHES}{breaches['resolved'].pk}/").json()
    assert resolved["limit_name"] == "beta abs_max 1.2 number"  # an unnamed limit says what it is


def test_breach_list_filters(auth_client, breaches, book):
    assert _ids(auth_client.get(BREACHES, {"status": "open"})) == [breaches["open"].pk]
    both = auth_client.get(f"{BREACHES}?status=open&status=acknowledged")
    assert _ids(both) == [breaches["open"].pk, breaches["acknowledged"].pk]
    on_book = _ids(auth_client.get(BREACHES, {"portfolio": book.pk}))
    assert on_book == [breaches["open"].pk, breaches["resolved"].pk]
    assert _ids(auth_client.get(BREACHES, {"level": "warning"})) == [breaches["acknowledged"].pk]
    limit = breaches["resolved"].limit_id
    assert _ids(auth_client.get(BREACHES, {"limit": limit})) == [breaches["resolved"].pk]
    oldest = _ids(auth_client.get(BREACHES, {"ordering": "last_seen"}))
    assert oldest[0] == breaches["resolved"].pk
    for query in ({"status": "closed"}, {"portfolio": ""}, {"limit": "0"}, {"level": "x"}):
        assert_envelope(auth_client.get(BREACHES, query), 400, "validation_error")


def test_breach_acknowledge_marks_an_open_breach_once(auth_client, user, breaches):
    breach = breaches["open"]
    url = f"{BREACHES}{breach.pk}/acknowledge/"

    response = auth_client.post(url)

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["id"], body["status"]) == (breach.pk, "acknowledged")
    assert body["acknowledged_at"] is not None
    breach.refresh_from_db()
    assert (breach.status, breach.acknowledged_by_id) == ("acknowledged", user.pk)
    acknowledged_at = breach.acknowledged_at
    [event] = AuditEvent.objects.filter(action="breach.acknowledge")
    assert (event.actor_id, event.object_id) == (user.pk, str(breach.pk))
    assert event.portfolio_id == breach.portfolio_id

    again = auth_client.post(url)  # already acknowledged: the same answer, nothing changes

    assert again.status_code == 200 and again.json()["status"] == "acknowledged"
    breach.refresh_from_db()
    assert breach.acknowledged_at == acknowledged_at
    assert AuditEvent.objects.filter(action="breach.acknowledge").count() == 1


def test_breach_acknowledge_of_a_resolved_breach_is_a_conflict(auth_client, breaches):
    breach = breaches["resolved"]

    response = auth_client.post(f"{BREACHES}{breach.pk}/acknowledge/")

    error = assert_envelope(response, 409, "breach_resolved")
    assert "resolved" in error["message"]
    breach.refresh_from_db()
    assert (breach.status, breach.acknowledged_at) == ("resolved", None)
    assert not AuditEvent.objects.exists()


def test_breaches_are_read_only_but_for_acknowledging(auth_client, breaches):
    url = f"{BREACHES}{breaches['open'].pk}/"
    for method in ("post", "put", "patch", "delete"):
        assert_envelope(getattr(auth_client, method)(url, {}, format="json"), 405)
    assert_envelope(auth_client.post(BREACHES, {}, format="json"), 405)


def test_breaches_of_another_user_are_404_and_never_listed(other_client, breaches, book):
    breach = breaches["open"]

    assert_envelope(other_client.get(f"{BREACHES}{breach.pk}/"), 404, "not_found")
    response = other_client.post(f"{BREACHES}{breach.pk}/acknowledge/")
    assert_envelope(response, 404, "not_found")
    breach.refresh_from_db()
    assert breach.status == "open"
    assert other_client.get(BREACHES).json()["count"] == 0
    assert other_client.get(BREACHES, {"portfolio": book.pk}).json()["count"] == 0


def test_breaches_of_a_deleted_limit_go_with_it(auth_client, breaches):
    limit = breaches["open"].limit
    assert auth_client.delete(f"/api/v1/limits/{limit.pk}/").status_code == 204
    assert _ids(auth_client.get(BREACHES)) == [breaches["resolved"].pk]


@pytest.mark.parametrize("size", [1, 12])
def test_breach_list_query_count_is_fixed(auth_client, user, book, size, django_assert_num_queries):
    for n in range(size):
        limit = _limit(user, None if n % 2 else book, name=f"limit {n}")
        _breach(limit, book, days_ago=n)
    with django_assert_num_queries(3):  # user, count, page (with its limits)
        response = auth_client.get(BREACHES)
    assert response.json()["count"] == size
