"""Session and trade endpoints: shapes, validation (400, nothing changed), ownership (404)."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest

from marketdata.providers import registry
from marketdata.providers.polygon import PolygonProvider
from marketdata.tests.replay import HANG, ReplayServer, Reply, recording
from modeling.models import ModelingSession, ModelingSessionSnapshot, ProFormaTrade
from modeling.tests.helpers import AS_OF, EXPIRY, SESSIONS, add, calculate, open_session
from portfolios.tests.factories import PortfolioFactory
from sigmasight.tests.helpers import assert_envelope, client_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def session_id(portfolio, user) -> int:
    return open_session(client_for(user), portfolio)


def test_create_freezes_the_book(portfolio, user, session_id):
    client = client_for(user)
    body = client.get(f"{SESSIONS}{session_id}/").json()
    assert body["portfolio"] == portfolio.pk and body["name"] == "what if"
    assert body["status"] == "active" and body["as_of"] == AS_OF.isoformat()
    assert body["base_position_count"] == 5 and body["cash"] == "250000.00"
    assert body["trades"] == [] and body["last_impacts"] is None
    # The base is frozen: a position closed after creation stays in the session's book.
    portfolio.positions.filter(symbol="JPM").delete()
    before = calculate(client, session_id)["before"]
    assert before["exposures"]["long_count"] == 3  # AAPL, JPM, the MSFT puts


def test_session_detail_lists_trades_with_sides_and_last_impacts(user, session_id):
    client = client_for(user)
    add(client, session_id, symbol="MSFT", quantity="-30")  # short 120 already: short sale
    add(client, session_id, symbol="AAPL", quantity="-100", price="650")  # long 300: a sale
    add(client, session_id, symbol="AAPL", quantity="-250")  # 200 left: crosses below zero
    calculate(client, session_id)
    body = client.get(f"{SESSIONS}{session_id}/").json()
    assert [t["side"] for t in body["trades"]] == ["sell_short", "sell", "sell_short"]
    assert body["trades"][1]["price"] == "650.000000"
    assert body["status"] == "calculated"
    assert body["last_impacts"]["trade_count"] == 3
    impacts = client.get(f"{SESSIONS}{session_id}/impacts/").json()
    assert impacts == body["last_impacts"]
    assert set(impacts["after"]) == {
        "equity",
        "exposures",
        "greeks",
        "normalized_by",
        "factor_betas",
        "factor_dollar_exposures",
        "scenarios",
        "stress",
        "stress_error",
        "var",
    }


def test_impacts_are_recalculated_after_the_trades_change(user, session_id):
    client = client_for(user)
    calculate(client, session_id)
    add(client, session_id, symbol="JPM", quantity="10")
    assert ModelingSession.objects.get(pk=session_id).last_impacts is None
    impacts = client.get(f"{SESSIONS}{session_id}/impacts/").json()
    assert impacts["trade_count"] == 1
    assert impacts["change"]["greeks"]["delta"] == pytest.approx(10.0)


CALL = {
    "symbol": "AAPL",
    "quantity": "1",
    "option_type": "C",
    "strike": "600",
    "expiration": EXPIRY.isoformat(),
}
BAD_TRADES = [
    ({"symbol": "AAPL", "quantity": "0"}, "quantity"),
    ({"symbol": "AAPL", "quantity": "ten"}, "quantity"),
    ({"symbol": "AAPL", "quantity": "10", "price": "-5"}, "price"),
    ({"symbol": "AAPL", "quantity": "10", "price": "0"}, "price"),
    ({"symbol": "$$$", "quantity": "10"}, "symbol"),
    ({"quantity": "10"}, "symbol"),
    ({**CALL, "quantity": "1.5"}, "quantity"),
    ({**CALL, "option_type": "X"}, "option_type"),
    ({**CALL, "strike": "-600"}, "strike"),
    ({**CALL, "expiration": ""}, "expiration"),
    ({**CALL, "expiration": "2026-11-20"}, "expiration"),
    ({"symbol": "AAPL270115C00600000", "quantity": "1", "strike": "650"}, "strike"),
]


def test_bad_trades_are_400_and_change_nothing(user, session_id):
    client = client_for(user)
    calculate(client, session_id)
    for trade, field in BAD_TRADES:
        response = client.post(f"{SESSIONS}{session_id}/trades/", trade, format="json")
        error = assert_envelope(response, 400)
        assert field in error["fields"], (trade, error)
    session = ModelingSession.objects.get(pk=session_id)
    assert session.trades.count() == 0
    assert session.last_impacts is not None and session.status == "calculated"


def test_a_symbol_no_provider_knows_is_unknown(user, session_id, monkeypatch):
    with ReplayServer() as server:
        server.route(
            "/v2/aggs/ticker/ZZZZ/*", Reply(body=recording("polygon", "aggs_ZZZZ_no_results.json"))
        )
        provider = PolygonProvider("test-key", tier="advanced", base_url=server.url)
        monkeypatch.setattr(registry, "chain", lambda: [provider])
        response = client_for(user).post(
            f"{SESSIONS}{session_id}/trades/", {"symbol": "zzzz", "quantity": "10"}, format="json"
        )
        assert server.requests, "the provider was asked for the symbol"
    error = assert_envelope(response, 400, "unknown_symbol")
    assert "ZZZZ" in error["message"] and "symbol" in error["fields"]
    assert not ProFormaTrade.objects.exists()


def test_another_users_sessions_and_trades_are_404(user, other_user, portfolio, session_id):
    mine = client_for(user)
    trade = add(mine, session_id, symbol="JPM", quantity="10")
    theirs = client_for(other_user)
    base = f"{SESSIONS}{session_id}/"
    for method, url in [
        ("get", base),
        ("patch", base),
        ("delete", base),
        ("post", f"{base}trades/"),
        ("delete", f"{base}trades/{trade['id']}/"),
        ("post", f"{base}calculate/"),
        ("get", f"{base}impacts/"),
        ("get", f"{base}suggestions/?target=delta_neutral"),
        ("post", f"{base}save/"),
        ("get", f"{base}snapshots/"),
    ]:
        assert_envelope(getattr(theirs, method)(url, {}, format="json"), 404, "not_found")
    assert theirs.get(SESSIONS).json()["count"] == 0
    # Their own session cannot remove my trade either.
    their_session = open_session(theirs, PortfolioFactory(owner=other_user))
    response = theirs.delete(f"{SESSIONS}{their_session}/trades/{trade['id']}/")
    assert_envelope(response, 404, "not_found")
    assert ProFormaTrade.objects.filter(pk=trade["id"]).exists()
    # Nor open a session on my portfolio (unknown to them, exactly like a missing id).
    error = assert_envelope(
        theirs.post(SESSIONS, {"portfolio": portfolio.pk, "name": "x"}, format="json"), 400
    )
    assert "portfolio" in error["fields"]
    future = {"portfolio": portfolio.pk, "name": "x", "as_of": "2999-01-04"}
    error = assert_envelope(mine.post(SESSIONS, future, format="json"), 400, "validation_error")
    assert "as_of" in error["fields"]


def test_list_rename_and_delete(user, portfolio, session_id, django_assert_num_queries):
    client = client_for(user)
    second = open_session(client, portfolio)
    add(client, second, symbol="JPM", quantity="10")
    with django_assert_num_queries(3):  # user, count, page
        body = client.get(SESSIONS).json()
    assert [row["id"] for row in body["results"]] == [second, session_id]
    assert body["results"][0]["trade_count"] == 1
    response = client.patch(f"{SESSIONS}{second}/", {"name": "hedged"}, format="json")
    assert response.status_code == 200 and response.json()["name"] == "hedged"
    assert client.delete(f"{SESSIONS}{second}/").status_code == 204
    assert not ProFormaTrade.objects.exists()


def test_save_freezes_a_snapshot(user, session_id):
    client = client_for(user)
    add(client, session_id, symbol="JPM", quantity="10")
    response = client.post(f"{SESSIONS}{session_id}/save/")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["trade_count"] == 1 and body["trades"][0]["symbol"] == "JPM"
    assert body["impacts"]["change"]["greeks"]["delta"] == pytest.approx(10.0)
    assert ModelingSession.objects.get(pk=session_id).status == "saved"
    # Later trades leave the snapshot as it was.
    add(client, session_id, symbol="JPM", quantity="5")
    snapshot = ModelingSessionSnapshot.objects.get(pk=body["id"])
    assert len(snapshot.trades) == 1 and snapshot.impacts == body["impacts"]
    listed = client.get(f"{SESSIONS}{session_id}/snapshots/").json()
    assert [s["id"] for s in listed] == [body["id"]]


def test_an_empty_portfolio_opens_a_session_with_zero_var(user, market):
    """Cash alone carries no risk: the before state's VaR is zero, not an error; a trade adds
    its own."""
    client = client_for(user)
    session_id = open_session(client, PortfolioFactory(owner=user, cash=Decimal("1000")))
    impacts = calculate(client, session_id)
    assert impacts["before"]["equity"] == "1000.00"
    assert [
        (row["var_historical"], row["expected_shortfall"]) for row in impacts["before"]["var"]
    ] == [(0.0, 0.0)] * len(impacts["before"]["var"])
    add(client, session_id, symbol="SPY", quantity="2")
    after = calculate(client, session_id)["after"]
    assert after["greeks"]["delta"] == 2.0
    assert all(row["var_historical"] > 0 for row in after["var"])


def test_a_hanging_provider_makes_the_trade_503_within_the_deadline(
    portfolio, user, monkeypatch, settings
):
    settings.SIGMASIGHT_WEB_PROVIDER_DEADLINE_S = 0.5
    client = client_for(user)
    session_id = open_session(client, portfolio)
    with ReplayServer() as server:
        server.route("/v2/aggs/ticker/ZZZZ/*", HANG)
        provider = PolygonProvider(
            "test-key", tier="advanced", base_url=server.url, read_timeout=2, max_retries=0
        )
        monkeypatch.setattr(registry, "chain", lambda: [provider])
        started = time.monotonic()
        response = client.post(
            f"{SESSIONS}{session_id}/trades/", {"symbol": "ZZZZ", "quantity": "10"}, format="json"
        )
        waited = time.monotonic() - started
        assert server.requests, "the provider was asked"
    error = assert_envelope(response, 503, "market_data_pending")
    assert error["fields"] == {"symbols": ["ZZZZ"]}
    assert "ZZZZ" in error["message"]
    assert response["Retry-After"] == "5"
    # The deadline, plus the request's own work; far from the client's 2 s read timeout.
    assert waited < 0.5 + 1.0
    assert not ProFormaTrade.objects.exists()
