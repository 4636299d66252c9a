"""The Greeks job prices each contract by its exercise style with its underlying's dividend yield
(issue 19): AAPL options are American (Bjerksund-Stensland 2002), SPX options European
(Black-Scholes-Merton), each with the yield stored for the session; the stored volatility
reprices the option's own close under that model, the Greeks are the facade's x units, and the
early exercise premium is stored per share and shown per position by GET /risk/greeks/.

References: the facade (`marketdata.calculations.options`, itself checked against QuantLib in
marketdata/tests/calculations) on the same inputs: 1e-6 on the close (the solver's tolerance is
1e-8 in volatility; a close is a few dollars), 1e-10 relative on the Greeks."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest

from analytics.calculations.revaluation import OptionLegs, revalue
from analytics.jobs import JOBS
from analytics.models import PositionGreeks
from analytics.selectors import book_frame
from analytics.services import greeks_compute
from analytics.tests.helpers import AS_OF, EXP
from marketdata.calculations import options as engine
from marketdata.calendar import sessions_back
from marketdata.models import DailyPrice
from marketdata.providers import universe
from marketdata.providers.synthetic import SyntheticProvider
from marketdata.services import dividend_yields_fetch_and_cache, prices_fetch_and_cache
from portfolios.tests.factories import PortfolioFactory, option, stock
from sigmasight.tests.helpers import assert_envelope, client_for

pytestmark = pytest.mark.django_db

YEARS = (EXP - AS_OF).days / 365


@pytest.fixture
def styled(user):
    """AAPL stock, an ITM AAPL put and an OTM AAPL call, and an SPX put, on synthetic closes."""
    portfolio = PortfolioFactory(owner=user, cash=Decimal("50000.00"))
    positions = {
        "stock": stock(portfolio, "AAPL", "100"),
        "put": option(portfolio, "AAPL", EXP, "P", "600", "3"),
        "call": option(portfolio, "AAPL", EXP, "C", "550", "-2"),
        "index": option(portfolio, "SPX", EXP, "P", "5000", "1"),
    }
    symbols = sorted({p.symbol for p in positions.values()} | {"AAPL", "SPX", "US3M"})
    start = sessions_back(AS_OF, 80)[0]
    prices_fetch_and_cache(symbols=symbols, start=start, end=AS_OF, providers=[SyntheticProvider()])
    return {"portfolio": portfolio, **positions}


def close(symbol: str) -> float:
    return float(DailyPrice.objects.get(security__symbol=symbol, date=AS_OF).close)


def test_each_contract_is_priced_by_its_style_with_its_yield(styled):
    dividend_yields_fetch_and_cache(
        symbols=["AAPL", "SPX"], as_of=AS_OF, providers=[SyntheticProvider()]
    )
    report = greeks_compute(as_of=AS_OF, portfolio_ids=[styled["portfolio"].pk])
    assert report.written == 3 and report.without_yield == []
    rate = close("US3M")
    for key, root, strike, is_call, american in (
        ("put", "AAPL", 600.0, False, True),
        ("call", "AAPL", 550.0, True, True),
        ("index", "SPX", 5000.0, False, False),
    ):
        position = styled[key]
        row = PositionGreeks.objects.get(position=position, date=AS_OF)
        q = SyntheticProvider().dividend_yields([root], AS_OF)[root]
        assert row.dividend_yield == q
        assert row.exercise_style == ("american" if american else "european")
        spot = close(root)
        market = (spot, strike, YEARS, rate)
        if row.volatility_source == "implied":
            repriced = engine.price(*market, row.volatility, is_call, q, american)
            assert float(repriced) == pytest.approx(close(position.symbol), abs=1e-6)
        expected = engine.greeks(*market, row.volatility, is_call, q, american)
        units = float(position.quantity) * position.multiplier
        assert row.delta == pytest.approx(float(expected.delta) * units, rel=1e-10)
        assert row.vega == pytest.approx(float(expected.vega) * units, rel=1e-10)
        premium = engine.early_exercise_premium(*market, row.volatility, is_call, q, american)
        assert row.early_exercise_premium == pytest.approx(float(premium), abs=1e-12)
        assert row.model_price == pytest.approx(float(expected.price), rel=1e-12)
    # The in-the-money American put is worth more than its European twin; the index put is
    # European, so it has no premium.
    put = PositionGreeks.objects.get(position=styled["put"], date=AS_OF)
    assert put.early_exercise_premium is not None and put.early_exercise_premium > 1e-3
    assert PositionGreeks.objects.get(position=styled["index"]).early_exercise_premium == 0.0
    assert universe.DIVIDEND_YIELDS["AAPL"] > 0  # so the AAPL rows above used a real yield


def test_an_american_contract_without_a_stored_yield_uses_0_and_the_job_says_so(styled):
    """No yield stored for AAPL: its contracts are priced with 0 (exact for a call: no early
    exercise without dividends) and the Greeks job's result names it."""
    portfolio_id = styled["portfolio"].pk
    result = JOBS["greeks"].run(AS_OF, [portfolio_id], None)
    assert result["without_dividend_yield"] == 1  # AAPL; SPX's contracts are European
    assert result["warnings"] == {
        portfolio_id: ["no dividend yield for AAPL: its American options priced with 0"]
    }
    call = PositionGreeks.objects.get(position=styled["call"], date=AS_OF)
    assert (call.dividend_yield, call.exercise_style) == (0.0, "american")
    assert call.early_exercise_premium == 0.0  # an American call without dividends is European


def test_risk_greeks_shows_style_yield_and_early_exercise_premium(styled, user, other_user):
    dividend_yields_fetch_and_cache(symbols=["AAPL"], as_of=AS_OF, providers=[SyntheticProvider()])
    greeks_compute(as_of=AS_OF, portfolio_ids=[styled["portfolio"].pk])
    url = f"/api/v1/risk/greeks/?portfolio={styled['portfolio'].pk}&as_of={AS_OF}"
    body = client_for(user).get(url).json()
    rows = {row["position"]: row for row in body["positions"]}
    stock_row = rows[styled["stock"].pk]
    assert [stock_row[k] for k in ("style", "dividend_yield", "early_exercise_premium")] == [
        None
    ] * 3
    for key in ("put", "call", "index"):
        stored = PositionGreeks.objects.get(position=styled[key], date=AS_OF)
        row = rows[styled[key].pk]
        assert row["style"] == stored.exercise_style
        assert row["dividend_yield"] == stored.dividend_yield
        assert row["early_exercise_premium"] == stored.early_exercise_premium
        units = float(styled[key].quantity) * styled[key].multiplier
        assert row["early_exercise_value"] == pytest.approx(
            stored.early_exercise_premium * units, rel=1e-12
        )
    assert_envelope(client_for(other_user).get(url), 404)
    # The positions list carries the same in each position's latest Greeks.
    listed = client_for(user).get(f"/api/v1/positions/?portfolio={styled['portfolio'].pk}")
    greeks = {p["id"]: p["greeks"] for p in listed.json()["results"]}
    for key in ("put", "call", "index"):
        row = rows[styled[key].pk]
        assert greeks[styled[key].pk]["style"] == row["style"]
        assert greeks[styled[key].pk]["dividend_yield"] == row["dividend_yield"]
        assert greeks[styled[key].pk]["early_exercise_premium"] == row["early_exercise_premium"]
    assert greeks[styled["stock"].pk]["style"] is None


def test_the_book_frame_hands_each_leg_its_style_and_yield_to_the_one_revaluation(styled):
    """What scenarios, stress, Monte Carlo and what-if revalue: the stored style and yield of
    each leg, so a 10% fall of AAPL moves the American put by the American model's change."""
    dividend_yields_fetch_and_cache(symbols=["AAPL"], as_of=AS_OF, providers=[SyntheticProvider()])
    greeks_compute(as_of=AS_OF, portfolio_ids=[styled["portfolio"].pk])
    frame, _ = book_frame([styled["portfolio"].pk], AS_OF)
    legs = OptionLegs.from_frame(frame)
    by_id = dict(zip(frame["id"].to_numpy()[legs.rows], range(len(legs.rows)), strict=True))
    q = SyntheticProvider().dividend_yields(["AAPL"], AS_OF)["AAPL"]
    put = by_id[styled["put"].pk]
    assert legs.american[put] and legs.dividend_yield[put] == q
    assert not legs.american[by_id[styled["index"].pk]]
    pnl = revalue(legs, np.full(len(legs.rows), -0.10), by_leg=True)[0]
    row = PositionGreeks.objects.get(position=styled["put"], date=AS_OF)
    market = (close("US3M"),)
    spot = close("AAPL")

    def value(s: float) -> float:
        return float(engine.price(s, 600.0, YEARS, *market, row.volatility, False, q, True))

    assert pnl[put] == pytest.approx((value(spot * 0.9) - value(spot)) * 300, rel=1e-12)
