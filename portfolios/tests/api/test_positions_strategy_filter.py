"""The positions list's `strategy` filter: a strategy's positions; another user's strategy gives
nothing; a bad id is a 400 in the envelope."""

from __future__ import annotations

import pytest

from portfolios.models import Strategy
from portfolios.tests.factories import PortfolioFactory, stock
from sigmasight.tests.helpers import assert_envelope

pytestmark = pytest.mark.django_db


def test_filters_the_strategys_positions_and_no_one_elses(user, auth_client, other_client):
    portfolio = PortfolioFactory(owner=user)
    held, other = stock(portfolio, "AAPL", "10"), stock(portfolio, "KO", "5")
    pair = Strategy.objects.create(portfolio=portfolio, name="P", kind="custom", is_detected=False)
    pair.positions.add(held)
    body = auth_client.get("/api/v1/positions/", {"strategy": pair.pk}).json()
    assert [p["id"] for p in body["results"]] == [held.pk]
    assert other.pk not in [p["id"] for p in body["results"]]
    assert other_client.get("/api/v1/positions/", {"strategy": pair.pk}).json()["count"] == 0


@pytest.mark.parametrize("value", ["abc", "", "0"])
def test_a_bad_strategy_is_a_400_in_the_envelope(auth_client, value):
    body = assert_envelope(
        auth_client.get("/api/v1/positions/", {"strategy": value}), 400, "validation_error"
    )
    assert "strategy" in body["fields"]
