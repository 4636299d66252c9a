from __future__ import annotations

from datetime import date
from decimal import Decimal

import numpy as np
import pytest

from analytics.models import PositionGreeks
from analytics.services import greeks_compute, portfolio_summary, positions_value
from analytics.tests.helpers import AS_OF, EXP
from marketdata.calculations import black_scholes as bs
from marketdata.models import DailyPrice
from portfolios.models import Position
from portfolios.tests.factories import option

pytestmark = pytest.mark.django_db


def test_positions_value_matches_the_design_formulas(book):
    report = positions_value(as_of=AS_OF, portfolio_ids=[book["portfolio"].pk])
    assert report.written == 5 and report.missing_prices == []
    call = Position.objects.get(pk=book["call"].pk)
    close = float(DailyPrice.objects.get(security__symbol=call.symbol, date=AS_OF).close)
    previous = float(
        DailyPrice.objects.get(security__symbol=call.symbol, date=date(2026, 11, 19)).close
    )
    assert call.valued_as_of == AS_OF
    assert call.market_value == Decimal(f"{2 * 100 * close:.2f}")
    assert call.exposure == Decimal(f"{-2 * 100 * close:.2f}")
    assert call.unrealized_pnl == Decimal(f"{(close - 20) * -200:.2f}")
    assert call.daily_pnl == Decimal(f"{(close - previous) * -200:.2f}")
    short = Position.objects.get(pk=book["short"].pk)
    assert short.market_value is not None and short.exposure is not None
    assert short.market_value > 0 > short.exposure


def test_greeks_use_implied_vol_from_the_options_own_close(book):
    report = greeks_compute(as_of=AS_OF, portfolio_ids=[book["portfolio"].pk])
    assert report.written == 3
    row = PositionGreeks.objects.get(position=book["call"], date=AS_OF)
    assert row.volatility_source == "implied"
    spot = float(DailyPrice.objects.get(security__symbol="AAPL", date=AS_OF).close)
    rate = float(DailyPrice.objects.get(security__symbol="US3M", date=AS_OF).close)
    close = float(DailyPrice.objects.get(security__symbol=book["call"].symbol, date=AS_OF).close)
    years = (EXP - AS_OF).days / 365
    # The stored vol reprices the option's own close, and the Greeks are the engine's x qty x 100.
    assert float(bs.price(spot, 550, years, rate, row.volatility, True)) == pytest.approx(
        close, abs=1e-6
    )
    expected = bs.greeks(spot, 550, years, rate, row.volatility, True)
    assert row.delta == pytest.approx(float(expected.delta) * -200, rel=1e-12)
    assert row.vega == pytest.approx(float(expected.vega) * -200, rel=1e-12)
    assert row.dollar_delta == pytest.approx(row.delta * spot, rel=1e-12)
    assert row.underlying_price == pytest.approx(spot)


def test_expired_option_has_zero_greeks(book):
    greeks_compute(as_of=AS_OF, portfolio_ids=[book["portfolio"].pk])
    row = PositionGreeks.objects.get(position=book["expired"], date=AS_OF)
    assert (row.delta, row.gamma, row.theta, row.vega, row.rho) == (0, 0, 0, 0, 0)
    assert row.days_to_expiry == 0


def test_realized_then_default_then_mock_when_inputs_are_missing(book):
    DailyPrice.objects.filter(security__symbol=book["put"].symbol).delete()
    greeks_compute(as_of=AS_OF, portfolio_ids=[book["portfolio"].pk])
    assert (
        PositionGreeks.objects.get(position=book["put"], date=AS_OF).volatility_source == "realized"
    )
    # No history: only today's underlying close is left.
    DailyPrice.objects.filter(security__symbol="AAPL", date__lt=AS_OF).delete()
    greeks_compute(as_of=AS_OF, portfolio_ids=[book["portfolio"].pk])
    row = PositionGreeks.objects.get(position=book["put"], date=AS_OF)
    assert row.volatility_source == "default" and row.volatility == pytest.approx(0.30)
    DailyPrice.objects.filter(security__symbol="AAPL").delete()
    greeks_compute(as_of=AS_OF, portfolio_ids=[book["portfolio"].pk])
    row = PositionGreeks.objects.get(position=book["put"], date=AS_OF)
    assert row.volatility_source == "mock"
    assert row.delta == pytest.approx(-0.5 * 300)


def test_greeks_rerun_is_idempotent(book):
    greeks_compute(as_of=AS_OF, portfolio_ids=[book["portfolio"].pk])
    first = list(
        PositionGreeks.objects.order_by("position_id").values_list("position_id", "delta", "vega")
    )
    greeks_compute(as_of=AS_OF, portfolio_ids=[book["portfolio"].pk])
    assert (
        list(
            PositionGreeks.objects.order_by("position_id").values_list(
                "position_id", "delta", "vega"
            )
        )
        == first
    )


def test_greeks_compute_query_count_does_not_grow_with_the_book(
    book, django_assert_max_num_queries
):
    greeks_compute(as_of=AS_OF, portfolio_ids=[book["portfolio"].pk])
    with django_assert_max_num_queries(10) as small:
        greeks_compute(as_of=AS_OF, portfolio_ids=[book["portfolio"].pk])
    for strike in range(300, 700, 10):
        option(book["portfolio"], "AAPL", EXP, "C", str(strike), "1", entry_date=date(2024, 2, 1))
    # +1: current_prices looks further back, in one more query, for the new contracts that
    # have no recent close (a constant, whatever the number of such symbols).
    with django_assert_max_num_queries(len(small.captured_queries) + 1):
        greeks_compute(as_of=AS_OF, portfolio_ids=[book["portfolio"].pk])


def test_summary_is_consistent(book):
    positions_value(as_of=AS_OF, portfolio_ids=[book["portfolio"].pk])
    greeks_compute(as_of=AS_OF, portfolio_ids=[book["portfolio"].pk])
    summary = portfolio_summary(portfolio=book["portfolio"], as_of=AS_OF)
    e = summary["exposures"]
    assert e["gross"] == e["long"] + abs(e["short"])
    assert e["net"] == e["long"] - abs(e["short"])
    assert summary["equity"] == summary["cash"] + e["net"]
    stored = list(
        Position.objects.filter(portfolio=book["portfolio"]).values_list("exposure", flat=True)
    )
    assert all(s is not None for s in stored)
    assert e["net"] == sum(s for s in stored if s is not None)
    stored_delta = sum(PositionGreeks.objects.filter(date=AS_OF).values_list("delta", flat=True))
    assert summary["greeks"]["delta"] == pytest.approx(stored_delta + 300 - 100, rel=1e-12)
    assert summary["data_quality"]["missing_greeks"] == 0
    assert np.isfinite(summary["greeks"]["dollar_delta"])
