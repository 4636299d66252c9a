"""Calculate: the frozen base is the batch's book, trades move it by independently computed
amounts, and a trade added then removed leaves exactly the before state."""

from __future__ import annotations

import math
from datetime import date
from decimal import Decimal

import numpy as np
import pytest
from scipy.optimize import brentq
from scipy.stats import norm

from analytics import batch
from analytics.models import MarketRiskScenario, PortfolioFactorExposure, RiskMetricSnapshot
from analytics.selectors import ReadCache, closes_panel
from analytics.services import portfolio_summary
from marketdata.calculations import options as option_engine
from marketdata.services import current_prices
from modeling import book as engine
from modeling import services
from modeling.models import ModelingSession
from modeling.tests.helpers import AS_OF, EXPIRY, SESSIONS, add, calculate, close, open_session
from sigmasight.tests.helpers import client_for
from stress.models import StressScenario, StressTestResult

pytestmark = pytest.mark.django_db


def test_before_state_is_what_the_batch_stored(portfolio, user):
    runs = batch.run_daily_batch(AS_OF)
    assert all(r.status == "succeeded" for r in runs), [(r.name, r.error) for r in runs]
    client = client_for(user)
    # Without as_of the session takes the date the batch last computed for the book.
    session = ModelingSession.objects.get(pk=open_session(client, portfolio, as_of=None))
    assert session.as_of == AS_OF
    assert session.base_context["data_quality"]["estimated_betas"] == 0
    before = session.base_context["before"]

    summary = portfolio_summary(portfolio=portfolio, as_of=AS_OF)
    assert before["equity"] == f"{summary['equity']}"
    for key in ("gross", "net", "long", "short", "options", "notional"):
        assert before["exposures"][key] == f"{summary['exposures'][key]}"
    assert before["greeks"] == pytest.approx(summary["greeks"], rel=1e-12)
    stored_betas = dict(
        PortfolioFactorExposure.objects.filter(portfolio=portfolio, date=AS_OF).values_list(
            "factor__name", "beta"
        )
    )
    assert before["factor_betas"] == pytest.approx(stored_betas, rel=1e-9)
    stored_scenarios = {
        (kind, move): pnl
        for kind, move, pnl in MarketRiskScenario.objects.filter(
            portfolio=portfolio, date=AS_OF
        ).values_list("kind", "move", "predicted_pnl")
    }
    mine = {
        (kind, row["move"]): row["predicted_pnl"]
        for kind in ("market", "rates")
        for row in before["scenarios"][kind]
    }
    assert mine == pytest.approx(stored_scenarios, rel=1e-9)
    stored_stress = dict(
        StressTestResult.objects.filter(portfolio=portfolio, date=AS_OF).values_list(
            "scenario_id", "correlated_pnl"
        )
    )
    assert len(stored_stress) == StressScenario.objects.filter(is_active=True).count()
    assert {r["scenario_id"]: r["correlated_pnl"] for r in before["stress"]} == pytest.approx(
        stored_stress, rel=1e-9
    )
    for row in before["var"]:
        stored = RiskMetricSnapshot.objects.get(
            portfolio=portfolio, date=AS_OF, confidence=row["confidence"], horizon_days=1
        )
        for key in ("var_historical", "var_parametric", "var_monte_carlo", "expected_shortfall"):
            assert row[key] == pytest.approx(getattr(stored, key), rel=1e-9), key


def test_adding_and_removing_a_trade_returns_exactly_to_before(portfolio, user):
    client = client_for(user)
    session_id = open_session(client, portfolio)
    first = calculate(client, session_id)
    assert first["after"] == first["before"]
    trade = add(client, session_id, symbol="NVDA", quantity="250")
    option = add(
        client,
        session_id,
        symbol="JPM",
        quantity="-4",
        option_type="C",
        strike="200",
        expiration=EXPIRY.isoformat(),
    )
    moved = calculate(client, session_id)
    assert moved["after"] != moved["before"]
    assert moved["trade_count"] == 2
    for trade_id in (trade["id"], option["id"]):
        response = client.delete(f"{SESSIONS}{session_id}/trades/{trade_id}/")
        assert response.status_code == 204
    back = calculate(client, session_id)
    assert back["after"] == back["before"] == first["before"]
    assert back["change"] == first["change"]
    assert back["change"]["exposures"]["gross"] == "0.00"
    assert back["change"]["greeks"]["delta"] == 0.0
    assert all(row["correlated_pnl"] == 0.0 for row in back["change"]["stress"])
    assert all(row["var_monte_carlo"] == 0.0 for row in back["change"]["var"])


def test_a_stock_trade_moves_the_book_by_its_own_numbers(portfolio, user):
    client = client_for(user)
    session_id = open_session(client, portfolio)
    shares = 250
    trade = add(client, session_id, symbol="NVDA", quantity=str(shares))
    price = close("NVDA")
    assert Decimal(trade["price"]) == Decimal(f"{price:.6f}")
    impacts = calculate(client, session_id)
    change = impacts["change"]
    exposure = shares * float(trade["price"])
    # Each side is rounded to cents before subtracting: a cent either way.
    net = Decimal(change["exposures"]["net"])
    assert abs(net - Decimal(f"{exposure:.2f}")) <= Decimal("0.01")
    assert change["exposures"]["long_count"] == 1
    assert change["greeks"]["delta"] == pytest.approx(shares, abs=1e-9)
    assert change["greeks"]["dollar_delta"] == pytest.approx(exposure, rel=1e-12)
    # Independent market beta: with style factors residual to SPY, the multi-factor market beta
    # is the one-factor slope of NVDA's returns on SPY's over the same 252 sessions.
    closes = closes_panel(["NVDA", "SPY"], AS_OF, 253)
    returns = (closes / closes.shift(1) - 1).iloc[1:]
    beta = np.polyfit(returns["SPY"], returns["NVDA"], 1)[0]
    market_dollar = change["factor_dollar_exposures"]["Market"]
    assert market_dollar == pytest.approx(exposure * beta, rel=1e-8)
    # A market-only shock moves a stock by exposure x beta x shock (direct impact).
    down = StressScenario.objects.get(name="Market Down 10%", owner__isnull=True)
    assert down.shocks == {"Market": -0.10}
    row = next(r for r in change["stress"] if r["scenario_id"] == down.pk)
    assert row["direct_pnl"] == pytest.approx(exposure * beta * -0.10, rel=1e-8)
    market_up = next(r for r in change["scenarios"]["market"] if r["move"] == 0.01)
    assert market_up["predicted_pnl"] == pytest.approx(exposure * beta * 0.01, rel=1e-8)
    assert all("error" not in row for row in impacts["after"]["var"])


def _bs(spot: float, strike: float, years: float, rate: float, vol: float, call: bool):
    d1 = (math.log(spot / strike) + (rate + vol * vol / 2) * years) / (vol * math.sqrt(years))
    d2 = d1 - vol * math.sqrt(years)
    if call:
        return spot * norm.cdf(d1) - strike * math.exp(-rate * years) * norm.cdf(d2), norm.cdf(d1)
    put = strike * math.exp(-rate * years) * norm.cdf(-d2) - spot * norm.cdf(-d1)
    return put, norm.cdf(d1) - 1.0


def _jpm_put_change(portfolio, user, contracts: int, strike: float, premium: str) -> dict:
    """The change a session's one JPM put trade makes."""
    client = client_for(user)
    session_id = open_session(client, portfolio)
    add(
        client,
        session_id,
        symbol="JPM",
        quantity=str(contracts),
        option_type="P",
        strike=str(strike),
        expiration=EXPIRY.isoformat(),
        price=premium,
    )
    return calculate(client, session_id)["change"]


def test_an_option_trade_adds_its_black_scholes_delta(portfolio, user, settings):
    """A European contract (JPM made a European root by the setting) against a hand-written
    Black-Scholes; the American case is the next test."""
    settings.SIGMASIGHT_EUROPEAN_UNDERLYINGS = ["JPM"]
    contracts, strike, premium = -5, 190.0, "14.25"
    change = _jpm_put_change(portfolio, user, contracts, strike, premium)
    spot, rate = close("JPM"), close("US3M")
    years = (EXPIRY - AS_OF).days / 365.0
    vol = brentq(lambda v: _bs(spot, strike, years, rate, v, False)[0] - float(premium), 1e-3, 5)
    delta = _bs(spot, strike, years, rate, vol, False)[1] * contracts * 100
    assert change["greeks"]["delta"] == pytest.approx(delta, rel=1e-6)
    assert change["greeks"]["dollar_delta"] == pytest.approx(delta * spot, rel=1e-6)
    assert Decimal(change["exposures"]["options"]) == Decimal(f"{abs(contracts) * 100 * 14.25:.2f}")


def test_an_american_option_trade_adds_its_american_delta(portfolio, user):
    """JPM's contracts are American: the trade's vol is implied and its delta computed by
    Bjerksund-Stensland 2002 (the facade, checked against QuantLib in marketdata's tests) with
    JPM's stored yield (none here: 0), and an in-the-money put's differs from the European."""
    contracts, strike, premium = -5, 190.0, "14.25"
    change = _jpm_put_change(portfolio, user, contracts, strike, premium)
    market = (close("JPM"), strike, (EXPIRY - AS_OF).days / 365.0, close("US3M"))
    vol = option_engine.implied_volatility(float(premium), *market, False, 0.0, True).sigma
    delta = float(option_engine.greeks(*market, vol, False, 0.0, True).delta) * contracts * 100
    assert change["greeks"]["delta"] == pytest.approx(delta, rel=1e-9)
    european_vol = brentq(lambda v: _bs(*market, v, False)[0] - float(premium), 1e-3, 5)
    assert abs(delta - _bs(*market, european_vol, False)[1] * contracts * 100) > 1e-3


def test_an_option_trade_defaults_to_its_close(portfolio, user):
    client = client_for(user)
    session_id = open_session(client, portfolio)
    held = portfolio.positions.get(option_type="C")
    trade = add(client, session_id, symbol=held.symbol, quantity="1")
    assert Decimal(trade["price"]) == current_prices([held.symbol], as_of=AS_OF)[held.symbol].price
    assert trade["option_type"] == "C" and trade["multiplier"] == 100
    assert trade["side"] == "buy"


def test_an_unlisted_contract_is_priced_by_the_model_and_fetched(portfolio, user):
    client = client_for(user)
    session_id = open_session(client, portfolio)
    trade = add(client, session_id, symbol="MSFT270115C00450000", quantity="2")
    assert Decimal(trade["price"]) > 0
    impacts = calculate(client, session_id)
    assert impacts["change"]["greeks"]["vega"] > 0
    # Its history is fetched like a held contract's, so VaR still has its P&L history.
    assert all("error" not in row for row in impacts["after"]["var"])
    assert date.fromisoformat(impacts["as_of"]) == AS_OF


def test_frozen_inputs_change_no_number(portfolio, user):
    """The session's frozen closes and base Monte Carlo P&L are shortcuts only: the after state
    recomputed from the database with every row revalued is the same."""
    client = client_for(user)
    session_id = open_session(client, portfolio)
    add(client, session_id, symbol="NVDA", quantity="120")
    add(
        client,
        session_id,
        symbol="AAPL",
        quantity="2",
        option_type="P",
        strike="600",
        expiration=EXPIRY.isoformat(),
    )
    after = calculate(client, session_id)["after"]
    session = ModelingSession.objects.get(pk=session_id)
    ctx = engine.context_for(
        portfolio_id=portfolio.pk,
        owner_id=user.pk,
        as_of=AS_OF,
        cash=float(portfolio.cash),
        reads=ReadCache(),
    )
    assert ctx.revalued is None
    base = engine.book_from_json(session.base_positions, ctx.factors)
    trades = services.engine_trades(list(session.trades.order_by("id")))
    fresh = engine.state(base.plus(engine.trades_book(trades, base, ctx)), ctx)
    for mine, theirs in zip(after["var"], fresh["var"], strict=True):
        for key in ("var_historical", "var_parametric", "var_monte_carlo", "expected_shortfall"):
            assert mine[key] == pytest.approx(theirs[key], rel=1e-9), key
    assert [r["correlated_pnl"] for r in after["stress"]] == pytest.approx(
        [r["correlated_pnl"] for r in fresh["stress"]], rel=1e-9
    )
    assert after["factor_betas"] == pytest.approx(fresh["factor_betas"], rel=1e-9)
