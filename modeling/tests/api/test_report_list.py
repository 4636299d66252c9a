"""GET /api/v1/reports/: the caller's reports only, newest first, filtered by portfolio; a bad
query is a 400 in the envelope."""

from __future__ import annotations

import pytest

from modeling.models import Report
from portfolios.tests.factories import PortfolioFactory
from sigmasight.tests.helpers import assert_envelope

pytestmark = pytest.mark.django_db

URL = "/api/v1/reports/"


def _report(owner, portfolio) -> Report:
    return Report.objects.create(
        owner=owner, portfolio=portfolio, kind="risk_summary", format="csv"
    )


def test_lists_the_callers_reports_newest_first_and_by_portfolio(user, auth_client):
    first, second = PortfolioFactory(owner=user), PortfolioFactory(owner=user)
    older, newer, other_book = _report(user, first), _report(user, first), _report(user, second)
    body = auth_client.get(URL).json()
    assert [r["id"] for r in body["results"]] == [other_book.pk, newer.pk, older.pk]
    assert body["results"][0]["status"] == "queued" and body["results"][0]["download_url"] is None
    mine = auth_client.get(URL, {"portfolio": first.pk}).json()
    assert [r["id"] for r in mine["results"]] == [newer.pk, older.pk]


def test_another_users_reports_are_never_listed(user, other_user, other_client):
    theirs = PortfolioFactory(owner=user)
    _report(user, theirs)
    assert other_client.get(URL).json()["count"] == 0
    assert other_client.get(URL, {"portfolio": theirs.pk}).json()["count"] == 0


@pytest.mark.parametrize("value", ["abc", "", "0", "-1"])
def test_a_bad_portfolio_is_a_400_in_the_envelope(auth_client, value):
    body = assert_envelope(auth_client.get(URL, {"portfolio": value}), 400, "validation_error")
    assert "portfolio" in body["fields"]


def test_needs_a_login(api_client):
    assert_envelope(api_client.get(URL), 401, "not_authenticated")
