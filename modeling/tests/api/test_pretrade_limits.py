"""Pre-trade limit checks in what-if (issue "Risk limits and alerts"): every active limit of the
session's portfolio before and after the trades, and the limits a hedge suggestion clears.

References: the same impacts' before/after states (the numbers a limit reads must be the numbers
the what-if shows), and by hand from the frozen book's rows, the stored volumes and snapshots."""

from __future__ import annotations

import math
from datetime import timedelta
from decimal import Decimal

import numpy as np
import pytest
from scipy.stats import norm

from analytics.models import PortfolioSnapshot
from marketdata.calendar import sessions_back
from marketdata.models import DailyPrice, Security
from modeling.limit_models import Limit
from modeling.models import ModelingSession
from modeling.tests.helpers import AS_OF, SESSIONS, add, calculate, close, fetch, open_session
from portfolios.tests.factories import PortfolioFactory, stock
from sigmasight.tests.helpers import client_for

pytestmark = pytest.mark.django_db


def limit(owner, portfolio=None, **fields) -> Limit:
    fields.setdefault("unit", "money")
    return Limit.objects.create(owner=owner, portfolio=portfolio, **fields)


def rows_of(body: dict) -> dict[int, dict]:
    return {row["limit"]: row for row in body["limits"]}


def money(state: dict, key: str) -> float:
    return float(state["exposures"][key])


def var_row(state: dict, confidence: float) -> dict:
    return next(r for r in state["var"] if r["confidence"] == confidence)


@pytest.fixture
def session(portfolio, user) -> ModelingSession:
    return ModelingSession.objects.get(pk=open_session(client_for(user), portfolio))


def test_pretrade_gross_limit_breached_by_a_trade_is_hard_after_and_pass_before(
    portfolio, user, session
):
    client = client_for(user)
    gross = money(session.base_context["before"], "gross")
    trade_value = 200 * close("NVDA")
    hard = limit(user, portfolio, measure="gross_exposure", hard=gross + trade_value / 2)
    warned = limit(
        user,
        portfolio,
        measure="gross_exposure",
        warning=gross + trade_value / 2,
        hard=gross + 2 * trade_value,
    )
    add(client, session.pk, symbol="NVDA", quantity="200")
    impacts = calculate(client, session.pk)
    rows = rows_of(impacts)
    assert list(rows) == [hard.pk, warned.pk]  # id order
    after_gross = money(impacts["after"], "gross")
    assert after_gross == pytest.approx(gross + trade_value, rel=1e-12)
    for row in rows.values():
        assert row["measure"] == "gross_exposure" and row["unit"] == "money"
        assert row["before"] == {"value": gross, "level": "pass", "reason": None}
        assert row["after"]["value"] == after_gross
    assert rows[hard.pk]["after"]["level"] == "hard"
    assert rows[warned.pk]["after"]["level"] == "warning"
    # The stored impacts carry them too.
    stored = client.get(f"{SESSIONS}{session.pk}/impacts/").json()
    assert stored["limits"] == impacts["limits"]


def test_pretrade_share_of_equity_is_the_money_measure_over_each_sides_equity(
    portfolio, user, session
):
    client = client_for(user)
    net = limit(
        user, portfolio, measure="net_exposure", unit="share_of_equity", bound="abs_max", hard=5
    )
    short = limit(
        user, portfolio, measure="short_exposure", unit="share_of_equity", bound="min", hard=-0.1
    )
    add(client, session.pk, symbol="XOM", quantity="-400")
    impacts = calculate(client, session.pk)
    rows = rows_of(impacts)
    for side in ("before", "after"):
        state = impacts[side]
        equity = float(state["equity"])
        assert rows[net.pk][side]["value"] == pytest.approx(money(state, "net") / equity, rel=1e-12)
        assert rows[short.pk][side]["value"] == pytest.approx(
            money(state, "short") / equity, rel=1e-12
        )
    assert rows[net.pk]["after"]["level"] == "pass"
    # Short exposure is negative: selling more XOM takes it further below the minimum.
    assert rows[short.pk]["after"]["value"] < rows[short.pk]["before"]["value"] < 0
    assert rows[short.pk]["after"]["level"] == "hard"


def test_pretrade_var_and_es_limits_read_the_impacts_numbers(portfolio, user, session):
    client = client_for(user)
    historical = limit(user, portfolio, measure="var", params={"confidence": 0.99}, hard=1e9)
    parametric = limit(
        user,
        portfolio,
        measure="var",
        params={"method": "parametric", "horizon_days": 10},
        hard=1e9,
    )
    es = limit(user, portfolio, measure="es", hard=1e9)
    es_parametric = limit(
        user, portfolio, measure="es", params={"method": "parametric", "confidence": 0.99}, hard=1
    )
    es_monte_carlo = limit(user, portfolio, measure="es", params={"method": "monte_carlo"}, hard=1)
    add(client, session.pk, symbol="NVDA", quantity="150")
    impacts = calculate(client, session.pk)
    rows = rows_of(impacts)
    assert rows[historical.pk]["params"] == {
        "method": "historical",
        "confidence": 0.99,
        "horizon_days": 1,
    }
    z = norm.ppf(0.99)
    for side in ("before", "after"):
        at95, at99 = var_row(impacts[side], 0.95), var_row(impacts[side], 0.99)
        assert rows[historical.pk][side]["value"] == at99["var_historical"]
        assert rows[historical.pk][side]["level"] == "pass"
        assert rows[parametric.pk][side]["value"] == pytest.approx(
            at95["var_parametric"] * math.sqrt(10), rel=1e-12
        )
        assert rows[es.pk][side]["value"] == at95["expected_shortfall"]
        # Normal ES of the same sigma: sigma = VaR / z, ES = sigma x phi(z) / (1 - c).
        sigma = at99["var_parametric"] / z
        assert rows[es_parametric.pk][side]["value"] == pytest.approx(
            sigma * norm.pdf(z) / 0.01, rel=1e-12
        )
        assert rows[es_parametric.pk][side]["level"] == "hard"
        # The tail mean of the draws the Monte Carlo VaR ranks: at least that VaR.
        assert rows[es_monte_carlo.pk][side]["value"] == at95["es_monte_carlo"]
        assert at95["es_monte_carlo"] >= at95["var_monte_carlo"] > 0
        assert rows[es_monte_carlo.pk][side]["level"] == "hard"
    assert rows[historical.pk]["before"]["value"] != rows[historical.pk]["after"]["value"]


def test_pretrade_stress_loss_is_minus_the_scenarios_correlated_pnl(portfolio, user, session):
    client = client_for(user)
    scenario = session.base_context["before"]["stress"][0]["scenario"]
    loss = limit(user, portfolio, measure="stress_loss", params={"scenario": scenario}, hard=1e9)
    unknown = limit(user, portfolio, measure="stress_loss", params={"scenario": "Nope"}, hard=1)
    add(client, session.pk, symbol="JPM", quantity="-400")
    impacts = calculate(client, session.pk)
    rows = rows_of(impacts)
    for side in ("before", "after"):
        [row] = [r for r in impacts[side]["stress"] if r["scenario"] == scenario]
        assert rows[loss.pk][side]["value"] == -row["correlated_pnl"]
        assert rows[unknown.pk][side] == {
            "value": None,
            "level": None,
            "reason": "no active stress scenario named 'Nope'",
        }


def test_pretrade_concentration_checked_by_hand_from_the_books_rows(portfolio, user, session):
    client = client_for(user)
    Security.objects.filter(symbol__in=["AAPL", "MSFT", "NVDA"]).update(sector="Technology")
    Security.objects.filter(symbol="JPM").update(sector="Financials")
    largest = limit(user, portfolio, measure="name_concentration", unit="number", hard=0.5)
    jpm = limit(
        user,
        portfolio,
        measure="name_concentration",
        unit="number",
        params={"name": "jpm"},
        hard=0.5,
    )
    tech = limit(
        user,
        portfolio,
        measure="sector_concentration",
        unit="number",
        params={"sector": "Technology"},
        warning=0.5,
        hard=0.9,
    )
    trade = add(client, session.pk, symbol="NVDA", quantity="400")
    rows = rows_of(calculate(client, session.pk))

    gross: dict[str, float] = {}
    for row in session.base_positions:
        name = row["underlying_symbol"]
        gross[name] = gross.get(name, 0.0) + abs(row["exposure"])
    sector = {"AAPL": "Technology", "MSFT": "Technology", "NVDA": "Technology"}
    for side, book in (
        ("before", gross),
        ("after", {**gross, "NVDA": 400 * float(trade["price"])}),
    ):
        total = sum(book.values())
        assert rows[largest.pk][side]["value"] == pytest.approx(max(book.values()) / total)
        assert rows[jpm.pk][side]["value"] == pytest.approx(book["JPM"] / total)
        technology = sum(v for k, v in book.items() if sector.get(k) == "Technology")
        assert rows[tech.pk][side]["value"] == pytest.approx(technology / total)
    assert rows[tech.pk]["after"]["value"] > rows[tech.pk]["before"]["value"]


def test_pretrade_days_to_liquidate_is_the_slowest_position_by_hand(
    portfolio, user, session, settings
):
    client = client_for(user)
    days = limit(user, portfolio, measure="days_to_liquidate", unit="days", hard=1e-6)
    add(client, session.pk, symbol="NVDA", quantity="1000")
    rows = rows_of(calculate(client, session.pk))
    window = sessions_back(AS_OF, 20)
    adv = {}
    for symbol in ("AAPL", "MSFT", "JPM", "NVDA"):
        volumes = DailyPrice.objects.filter(
            security__symbol=symbol, date__gte=window[0], date__lte=AS_OF, volume__isnull=False
        ).values_list("volume", flat=True)
        assert len(volumes) == 20
        adv[symbol] = float(np.mean(np.array(list(volumes), dtype=float)))
    participation = settings.SIGMASIGHT_LIQUIDITY_PARTICIPATION
    base = [
        abs(row["delta"]) / (participation * adv[row["underlying_symbol"]])
        for row in session.base_positions
    ]
    assert rows[days.pk]["before"]["value"] == pytest.approx(max(base), rel=1e-12)
    nvda = 1000 / (participation * adv["NVDA"])
    assert rows[days.pk]["after"]["value"] == pytest.approx(max(*base, nvda), rel=1e-12)
    assert rows[days.pk]["after"]["level"] == "hard"


def test_pretrade_drawdown_from_the_stored_snapshots_is_unmoved_by_trades(portfolio, user, session):
    client = client_for(user)
    money_limit = limit(user, portfolio, measure="drawdown", hard=10_000)
    share = limit(user, portfolio, measure="drawdown", unit="share_of_equity", hard=1)
    add(client, session.pk, symbol="NVDA", quantity="100")
    rows = rows_of(calculate(client, session.pk))
    assert rows[money_limit.pk]["before"]["value"] is None
    assert "snapshot" in rows[money_limit.pk]["before"]["reason"]

    zero = Decimal("0")
    for days_ago, equity in ((3, "900000"), (2, "1000000"), (1, "960000"), (0, "975000")):
        PortfolioSnapshot.objects.create(
            portfolio=portfolio,
            date=AS_OF - timedelta(days=days_ago),
            equity=Decimal(equity),
            market_value=zero,
            cash=zero,
            daily_pnl=zero,
            daily_return=0.0,
            cumulative_pnl=zero,
            gross_exposure=zero,
            net_exposure=zero,
            long_exposure=zero,
            short_exposure=zero,
            delta_adjusted_exposure=zero,
            position_count=0,
        )
    add(client, session.pk, symbol="JPM", quantity="10")
    impacts = calculate(client, session.pk)
    rows = rows_of(impacts)
    assert rows[money_limit.pk]["before"] == {"value": 25_000.0, "level": "hard", "reason": None}
    assert rows[money_limit.pk]["after"] == rows[money_limit.pk]["before"]
    # As a share: of the before side's equity, on both sides.
    want = 25_000.0 / float(impacts["before"]["equity"])
    assert rows[share.pk]["before"]["value"] == pytest.approx(want, rel=1e-12)
    assert rows[share.pk]["after"] == rows[share.pk]["before"]


def test_pretrade_lists_the_owners_active_limits_of_the_portfolio_only(
    portfolio, user, other_user, session
):
    client = client_for(user)
    everywhere = limit(user, measure="delta", unit="number", bound="abs_max", hard=1e9)
    mine = limit(user, portfolio, measure="gamma", unit="number", bound="abs_max", hard=1e9)
    limit(user, portfolio, measure="vega", unit="number", hard=1, is_active=False)
    elsewhere = PortfolioFactory(owner=user)
    limit(user, elsewhere, measure="beta", unit="number", hard=1)
    limit(other_user, measure="delta", unit="number", hard=1)
    limit(other_user, portfolio, measure="gross_exposure", hard=1)
    impacts = calculate(client, session.pk)
    rows = rows_of(impacts)
    assert list(rows) == [everywhere.pk, mine.pk]
    assert rows[everywhere.pk]["before"]["value"] == impacts["before"]["greeks"]["delta"]
    assert rows[mine.pk]["after"]["value"] == impacts["after"]["greeks"]["gamma"]
    # The other user sees neither the session nor its check.
    other = client_for(other_user)
    assert other.post(f"{SESSIONS}{session.pk}/calculate/").status_code == 404
    assert (
        other.get(f"{SESSIONS}{session.pk}/suggestions/", {"target": "delta_neutral"}).status_code
        == 404
    )


def test_a_delta_neutral_hedge_reports_the_delta_limit_it_clears(portfolio, user, session):
    client = client_for(user)
    add(client, session.pk, symbol="NVDA", quantity="75")
    delta = calculate(client, session.pk)["after"]["greeks"]["delta"]
    assert abs(delta) > 10
    cleared = limit(
        user, measure="delta", unit="number", bound="abs_max", warning=5, hard=abs(delta) / 2
    )
    kept = limit(user, portfolio, measure="gross_exposure", hard=1)  # breached either way
    response = client.get(f"{SESSIONS}{session.pk}/suggestions/", {"target": "delta_neutral"})
    assert response.status_code == 200, response.content
    body = response.json()
    rows = rows_of(body)
    assert body["limits_cleared"] == [cleared.pk]
    assert rows[cleared.pk]["before"] == {"value": delta, "level": "hard", "reason": None}
    assert rows[cleared.pk]["after"]["value"] == body["after"]["greeks"]["delta"]
    assert rows[cleared.pk]["after"]["level"] == "pass" and rows[cleared.pk]["cleared"] is True
    assert rows[kept.pk]["after"]["level"] == "hard" and rows[kept.pk]["cleared"] is False
    assert rows[kept.pk]["after"]["value"] == money(body["after"], "gross")


def test_pretrade_a_book_without_enough_history_gives_a_reason_not_an_error(user):
    fetch(["KO"], sessions=30)
    book = PortfolioFactory(owner=user, cash=Decimal("100000"))
    stock(book, "KO", "100")
    client = client_for(user)
    session_id = open_session(client, book)
    var = limit(user, book, measure="var", hard=1e9)
    gross = limit(user, book, measure="gross_exposure", hard=1e9)
    impacts = calculate(client, session_id)
    rows = rows_of(impacts)
    for side in ("before", "after"):
        error = var_row(impacts[side], 0.95)["error"]
        assert rows[var.pk][side] == {"value": None, "level": None, "reason": error}
        assert rows[gross.pk][side]["level"] == "pass"
