"""Incremental risk in what-if: each trade's change of the base book's VaR and ES when it alone
is added, and the risk a hedge suggestion removes (issue "Where the risk comes from", item 2).

References: the same API's before/after states (the batch's own VaR computation): a trade's
increment must equal the VaR change of a session holding that trade alone, exactly (1e-9
relative: the same seeded draws and closes), and the increments of two trades are not additive
(diversification) while each is measured against the base."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from django.conf import settings

from marketdata.calendar import sessions_back
from marketdata.models import DailyPrice
from modeling.tests.helpers import AS_OF, SESSIONS, add, calculate, open_session
from sigmasight.tests.helpers import client_for

pytestmark = pytest.mark.django_db

MEASURES = ("var_historical", "var_parametric", "var_monte_carlo", "expected_shortfall")


def var_rows(state: dict) -> dict[float, dict]:
    return {row["confidence"]: row for row in state["var"]}


def alone(client, portfolio, **trade) -> dict:
    """The VaR change of a session holding this trade alone."""
    session_id = open_session(client, portfolio)
    add(client, session_id, **trade)
    impacts = calculate(client, session_id)
    before, after = var_rows(impacts["before"]), var_rows(impacts["after"])
    return {c: {m: after[c][m] - before[c][m] for m in MEASURES} for c in before}


def test_each_trade_reports_its_incremental_var_and_es_against_the_base(portfolio, user):
    client = client_for(user)
    nvda = {"symbol": "NVDA", "quantity": "200"}
    hedge = {"symbol": "AAPL", "quantity": "-300"}  # sells the base's AAPL
    session_id = open_session(client, portfolio)
    first, second = add(client, session_id, **nvda), add(client, session_id, **hedge)
    impacts = calculate(client, session_id)
    by_trade = {row["trade_id"]: row["incremental"] for row in impacts["trades"]}
    assert set(by_trade) == {first["id"], second["id"]}
    for trade, increment in ((nvda, by_trade[first["id"]]), (hedge, by_trade[second["id"]])):
        expected = alone(client, portfolio, **trade)
        for row in increment["by"]:
            for measure in MEASURES:
                want = expected[row["confidence"]][measure]
                assert row[measure] == pytest.approx(want, rel=1e-9, abs=1e-6), measure
        assert increment["var"] == pytest.approx(expected[0.95]["var_historical"], rel=1e-9)
        assert increment["es"] == pytest.approx(expected[0.95]["expected_shortfall"], rel=1e-9)
    assert by_trade[first["id"]]["var"] > 0  # a long NVDA on this book adds to its loss
    # Together they are not the sum of their increments (the after-book's VaR).
    together = (
        var_rows(impacts["after"])[0.95]["var_historical"]
        - var_rows(impacts["before"])[0.95]["var_historical"]
    )
    assert together != pytest.approx(by_trade[first["id"]]["var"] + by_trade[second["id"]]["var"])


def test_a_session_without_trades_has_no_increments(portfolio, user):
    client = client_for(user)
    session_id = open_session(client, portfolio)
    assert calculate(client, session_id)["trades"] == []


def test_a_hedge_suggestion_says_how_much_risk_it_removes(portfolio, user):
    client = client_for(user)
    session_id = open_session(client, portfolio)
    add(client, session_id, symbol="NVDA", quantity="300")
    now = var_rows(calculate(client, session_id)["after"])
    response = client.get(f"{SESSIONS}{session_id}/suggestions/", {"target": "beta_neutral"})
    assert response.status_code == 200, response.content
    body = response.json()
    hedged = var_rows(body["after"])
    removed = {row["confidence"]: row for row in body["risk_removed"]["by"]}
    for confidence, row in removed.items():
        for measure in MEASURES:
            want = now[confidence][measure] - hedged[confidence][measure]
            assert row[measure] == pytest.approx(want, rel=1e-9, abs=1e-6), measure
    assert body["risk_removed"]["var"] == removed[0.95]["var_historical"]
    assert removed[0.95]["var_parametric"] > 0  # taking the market out lowers the factor VaR


def test_each_trade_reports_its_euler_contribution_in_the_after_book(portfolio, user):
    """Checked by hand with pandas on the stored closes: the after-book's daily P&L (units x
    close changes), the VaR day (the k-th worst, k = ceil(n x 5%)) and the ES tail; the trade's
    components are minus its P&L on that day and minus its mean P&L over the tail."""
    client = client_for(user)
    session_id = open_session(client, portfolio)
    trade = add(client, session_id, symbol="NVDA", quantity="150")
    impacts = calculate(client, session_id)
    [row] = impacts["trades"]
    share = row["contribution"]
    units = {p.symbol: float(p.quantity) * p.multiplier for p in portfolio.positions.all()}
    units["NVDA"] = units.get("NVDA", 0.0) + 150.0
    window = settings.SIGMASIGHT_FACTOR_WINDOW
    days = sessions_back(AS_OF, window + 1)
    closes = (
        pd.DataFrame.from_records(
            DailyPrice.objects.filter(
                security__symbol__in=list(units), date__gte=days[0], date__lte=AS_OF
            ).values_list("date", "security__symbol", "close"),
            columns=["date", "symbol", "close"],
        )
        .pivot(index="date", columns="symbol", values="close")
        .astype(float)
        .dropna()
    )
    pnl = closes.diff().iloc[1:] * pd.Series(units)
    book = pnl.sum(axis=1)
    k = math.ceil(round(len(book) * 0.05, 9))
    cutoff = book.sort_values().iloc[k - 1]
    tail = book <= cutoff
    var_day = book[book == cutoff].index
    after_var = var_rows(impacts["after"])[0.95]["var_historical"]
    assert -cutoff == pytest.approx(after_var, rel=1e-9)
    nvda = pnl["NVDA"] * 150.0 / units["NVDA"]  # the trade's share of the NVDA line
    assert share["var"] == pytest.approx(-nvda[var_day].mean(), rel=1e-9, abs=1e-6)
    assert share["es"] == pytest.approx(-nvda[tail].mean(), rel=1e-9, abs=1e-6)
    assert share["share_of_var"] == pytest.approx(share["var"] / after_var, rel=1e-9)
    exposure = 150.0 * float(trade["price"])
    assert share["marginal_var"] == pytest.approx(share["var"] / exposure, rel=1e-9)
