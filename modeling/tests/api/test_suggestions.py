"""Hedge suggestions: applied through the API, each reaches its target within one share."""

from __future__ import annotations

import pytest

from modeling.tests.helpers import AS_OF, EXPIRY, SESSIONS, add, calculate, close, open_session
from sigmasight.tests.helpers import assert_envelope, client_for

pytestmark = pytest.mark.django_db


def suggest(client, session_id: int, **query) -> dict:
    response = client.get(f"{SESSIONS}{session_id}/suggestions/", query)
    assert response.status_code == 200, response.content
    return response.json()


def apply(client, session_id: int, suggestion: dict) -> dict:
    for trade in suggestion["trades"]:
        add(client, session_id, symbol=trade["symbol"], quantity=trade["quantity"])
    return calculate(client, session_id)["after"]


@pytest.fixture
def session_id(portfolio, user) -> int:
    """The book with a pending trade: suggestions hedge the session's book, trades included."""
    client = client_for(user)
    session_id = open_session(client, portfolio)
    add(client, session_id, symbol="NVDA", quantity="75")
    add(
        client,
        session_id,
        symbol="AAPL",
        quantity="3",
        option_type="P",
        strike="600",
        expiration=EXPIRY.isoformat(),
    )
    return session_id


@pytest.mark.parametrize("instrument", ["SPY", "underlying"])
def test_delta_neutral_brings_delta_within_one_share(user, session_id, instrument):
    client = client_for(user)
    before = calculate(client, session_id)["after"]["greeks"]["delta"]
    assert abs(before) > 10
    suggestion = suggest(client, session_id, target="delta_neutral", instrument=instrument)
    assert suggestion["metric"]["current"] == pytest.approx(before, rel=1e-12)
    symbols = {t["symbol"] for t in suggestion["trades"]}
    assert symbols == ({"SPY"} if instrument == "SPY" else {"AAPL", "MSFT", "JPM", "NVDA"})
    after = apply(client, session_id, suggestion)
    assert abs(after["greeks"]["delta"]) <= 1.0
    assert suggestion["after"]["greeks"]["delta"] == pytest.approx(
        after["greeks"]["delta"], abs=1e-9
    )


def test_beta_neutral_hedges_the_dollar_market_exposure_with_spy(user, session_id):
    client = client_for(user)
    suggestion = suggest(client, session_id, target="beta_neutral")
    assert [t["symbol"] for t in suggestion["trades"]] == ["SPY"]
    assert float(suggestion["trades"][0]["quantity"]) < 0  # the book is net long the market
    after = apply(client, session_id, suggestion)
    assert abs(after["factor_dollar_exposures"]["Market"]) <= close("SPY")
    assert abs(after["factor_betas"]["Market"]) < 0.01


def test_reduce_factor_hedges_one_factor_with_its_proxy(user, session_id):
    client = client_for(user)
    suggestion = suggest(client, session_id, target="reduce_factor", factor="growth")
    assert suggestion["factor"] == "Growth" and suggestion["instrument"] == "VUG"
    per_share = suggestion["metric"]["per_share"]
    after = apply(client, session_id, suggestion)
    assert abs(after["factor_dollar_exposures"]["Growth"]) <= abs(per_share)


def test_suggestions_need_a_known_target_and_a_tradable_factor(user, session_id):
    client = client_for(user)
    url = f"{SESSIONS}{session_id}/suggestions/"
    assert_envelope(client.get(url, {"target": "gamma_neutral"}), 400, "validation_error")
    error = assert_envelope(client.get(url, {"target": "reduce_factor"}), 400)
    assert "factor" in error["fields"]
    error = assert_envelope(client.get(url, {"target": "reduce_factor", "factor": "Rates"}), 400)
    assert "yield" in error["message"]
    assert_envelope(client.get(url, {"target": "reduce_factor", "factor": "Nope"}), 400)
    error = assert_envelope(
        client.get(url, {"target": "delta_neutral", "instrument": "QQQQ"}), 400, "unknown_symbol"
    )
    assert "QQQQ" in error["message"]


def test_a_neutral_book_needs_no_trade(user, portfolio):
    client = client_for(user)
    session_id = open_session(client, portfolio)
    first = suggest(client, session_id, target="delta_neutral")
    apply(client, session_id, first)
    again = suggest(client, session_id, target="delta_neutral")
    assert again["trades"] == []
    assert again["metric"]["after"] == pytest.approx(again["metric"]["current"], abs=1e-9)
    assert AS_OF.isoformat() == calculate(client, session_id)["as_of"]
