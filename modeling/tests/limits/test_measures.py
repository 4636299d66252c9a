"""The limit measures against the rows the evening's jobs stored, on books of every shape: a long
and short book with options, options only, shorts only, empty, and a new listing with five
sessions of history; the day's jobs really run (synthetic closes preloaded, read with the `csv`
source so no provider is asked). Each value is checked against an independent computation from
the stored rows (or the API's own service reading them), hand-worked where it can be."""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

import pandas as pd
import pytest
from django.core.management import call_command
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from analytics import batch
from analytics.contribution_models import PortfolioRiskContribution
from analytics.liquidity import portfolio_concentration, portfolio_liquidity
from analytics.models import (
    PortfolioFactorExposure,
    PortfolioSnapshot,
    PositionFactorExposure,
    PositionGreeks,
    RiskMetricSnapshot,
)
from analytics.services import portfolio_summary
from analytics.snapshots import generate_historical_snapshots
from analytics.tests.helpers import SERIES
from marketdata.calendar import previous_trading_day, sessions_back
from marketdata.services import current_prices, securities_ensure
from marketdata.writes import prices_upsert
from modeling.limit_models import Breach, BreachEvent, Limit
from modeling.limits.measures import Measures, measures_read
from modeling.tests.helpers import AS_OF, EXPIRY, fetch
from portfolios.models import Portfolio
from portfolios.tests.factories import PortfolioFactory, option, stock
from sigmasight.accounts.tests.factories import UserFactory
from stress.models import StressScenario, StressTestResult
from stress.services import stress_run

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

# The jobs of the day up to the stress run: what the limits job reads.
BEFORE_LIMITS = [
    "corporate_actions",
    "market_data",
    "greeks",
    "factors",
    "attribution",
    "market_risk",
    "snapshots",
    "stress",
]
EVERY_MEASURE: list[tuple[str, dict[str, Any]]] = [
    ("gross_exposure", {}),
    ("net_exposure", {}),
    ("long_exposure", {}),
    ("short_exposure", {}),
    ("beta", {}),
    ("delta", {}),
    ("dollar_delta", {}),
    ("gamma", {}),
    ("vega", {}),
    ("var", {"method": "historical", "confidence": 0.99, "horizon_days": 4}),
    ("var", {"method": "parametric"}),
    ("var", {"method": "monte_carlo", "confidence": 0.95}),
    ("es", {"method": "historical", "confidence": 0.95, "horizon_days": 9}),
    ("stress_loss", {"scenario": "Market Down 10%"}),
    ("name_concentration", {}),
    ("name_concentration", {"name": "aapl"}),
    ("sector_concentration", {}),
    ("days_to_liquidate", {}),
    ("drawdown", {}),
]


@dataclass(frozen=True)
class World:
    alice: object
    bob: object
    core: Portfolio
    options: Portfolio
    shorts: Portfolio
    empty: Portfolio
    young: Portfolio
    theirs: Portfolio

    @property
    def ids(self) -> list[int]:
        return [p.pk for p in (self.core, self.options, self.shorts, self.empty, self.young)]


def _five_closes() -> None:
    """A new listing: five sessions of closes and volumes, nothing before."""
    days = sessions_back(AS_OF, 5)
    ids = securities_ensure(["NEWCO"])
    frame = pd.DataFrame(
        {
            "symbol": "NEWCO",
            "date": days,
            "close": [20.0, 20.5, 21.0, 20.8, 21.2],
            "volume": [1e6] * 5,
            "security_id": ids["NEWCO"],
        }
    )
    prices_upsert(frame, source="csv", fetched_at=timezone.now())


@pytest.fixture(scope="module")
def world(module_database) -> World:
    fetch(["AAPL", "MSFT", "JPM", "KO", *SERIES])
    call_command("load_stress_scenarios", stdout=io.StringIO())
    _five_closes()
    alice, bob = UserFactory(), UserFactory()
    core = PortfolioFactory(owner=alice, name="Core", cash=Decimal("250000"))
    stock(core, "AAPL", "300")
    stock(core, "MSFT", "-120")
    stock(core, "JPM", "400")
    calls = option(core, "AAPL", EXPIRY, "C", "250", "-2")
    options = PortfolioFactory(owner=alice, name="Options", cash=Decimal("20000"))
    long_calls = option(options, "AAPL", EXPIRY, "C", "500", "2")
    puts = option(options, "MSFT", EXPIRY, "P", "400", "-3")
    shorts = PortfolioFactory(owner=alice, name="Shorts", cash=Decimal("90000"))
    stock(shorts, "MSFT", "-100")
    stock(shorts, "JPM", "-50")
    empty = PortfolioFactory(owner=alice, name="Empty", cash=Decimal("1000"))
    young = PortfolioFactory(owner=alice, name="Young", cash=Decimal("5000"))
    stock(young, "NEWCO", "100")
    theirs = PortfolioFactory(owner=bob, name="Theirs", cash=Decimal("10000"))
    stock(theirs, "KO", "200")
    fetch([calls.symbol, long_calls.symbol, puts.symbol])
    with override_settings(SIGMASIGHT_MARKET_DATA_SOURCE="csv"):
        # Twenty sessions of history before the day, so the drawdown has a peak to fall from.
        generate_historical_snapshots(portfolio=core, days_back=20, end=previous_trading_day(AS_OF))
        for name in BEFORE_LIMITS:
            run = batch.job_run(name, AS_OF)
            assert run.status == "succeeded", (name, run.error, run.failed_portfolios)
    return World(alice, bob, core, options, shorts, empty, young, theirs)


@pytest.fixture(scope="module")
def measured(world) -> Measures:
    return measures_read(as_of=AS_OF, portfolio_ids=world.ids, requests=EVERY_MEASURE)


def _value(measured: Measures, portfolio: Portfolio, measure: str, **params) -> float:
    found = measured.value(portfolio.pk, measure, params)
    assert found.value is not None, found.reason
    return found.value


def _snapshot(portfolio: Portfolio) -> PortfolioSnapshot:
    return PortfolioSnapshot.objects.get(portfolio=portfolio, date=AS_OF)


def test_measures_exposures_and_equity_are_the_summary_s(world, measured):
    for book in (world.core, world.options, world.shorts, world.young):
        summary = portfolio_summary(portfolio=book, as_of=AS_OF)
        for measure, key in [
            ("gross_exposure", "gross"),
            ("net_exposure", "net"),
            ("long_exposure", "long"),
            ("short_exposure", "short"),
        ]:
            assert _value(measured, book, measure) == pytest.approx(
                float(summary["exposures"][key]), abs=0.005
            ), (book.name, measure)
        assert measured.equity(book.pk).value == pytest.approx(float(summary["equity"]), abs=0.01)


def test_measures_exposures_hand_worked_on_the_shorts_book(world, measured):
    closes = {s: float(q.price) for s, q in current_prices(["MSFT", "JPM"], as_of=AS_OF).items()}
    short = -100 * closes["MSFT"] - 50 * closes["JPM"]
    assert _value(measured, world.shorts, "short_exposure") == pytest.approx(short, abs=0.01)
    assert _value(measured, world.shorts, "long_exposure") == 0.0
    assert _value(measured, world.shorts, "net_exposure") == pytest.approx(short, abs=0.01)
    assert _value(measured, world.shorts, "gross_exposure") == pytest.approx(-short, abs=0.01)
    # share of equity: gross / (cash + net), hand-worked
    equity = 90000 + short
    share = measured.in_unit(world.shorts.pk, "gross_exposure", {}, "share_of_equity")
    assert share.value == pytest.approx(-short / equity, rel=1e-6)
    assert measured.equity(world.shorts.pk).value == pytest.approx(equity, abs=0.01)


def test_measures_greeks_sum_the_stored_position_greeks(world, measured):
    for book in (world.core, world.options):
        stored = list(
            PositionGreeks.objects.filter(position__portfolio=book, date=AS_OF).values_list(
                "position__underlying_symbol", "delta", "gamma", "vega"
            )
        )
        assert stored, book.name
        spot = {
            s: float(q.price)
            for s, q in current_prices(sorted({row[0] for row in stored}), as_of=AS_OF).items()
        }
        stocks = [
            (p.underlying_symbol, float(p.quantity))
            for p in book.positions.filter(option_type="", closed_at__isnull=True)
        ]
        closes = {
            s: float(q.price)
            for s, q in current_prices(sorted({s for s, _ in stocks}), as_of=AS_OF).items()
        }
        delta = sum(row[1] for row in stored) + sum(q for _, q in stocks)
        dollar = sum(row[1] * spot[row[0]] for row in stored) + sum(
            q * closes[s] for s, q in stocks
        )
        assert _value(measured, book, "delta") == pytest.approx(delta, rel=1e-9)
        assert _value(measured, book, "dollar_delta") == pytest.approx(dollar, rel=1e-9)
        assert _value(measured, book, "gamma") == pytest.approx(
            sum(row[2] for row in stored), rel=1e-9
        )
        assert _value(measured, book, "vega") == pytest.approx(
            sum(row[3] for row in stored), rel=1e-9
        )
    assert _value(measured, world.options, "gamma") != 0.0  # options only: real Greeks
    assert _value(measured, world.shorts, "delta") == -150.0  # stocks: delta is the quantity
    assert _value(measured, world.shorts, "vega") == 0.0


def test_measures_beta_is_the_stored_market_beta(world, measured):
    row = PortfolioFactorExposure.objects.get(
        portfolio=world.core, date=AS_OF, factor__name="Market"
    )
    assert _value(measured, world.core, "beta") == row.beta
    # DESIGN.md: portfolio beta = sum of the positions' dollar exposures / equity.
    dollars = sum(
        PositionFactorExposure.objects.filter(
            position__portfolio=world.core, date=AS_OF, factor__name="Market"
        ).values_list("dollar_exposure", flat=True)
    )
    assert row.normalized_by == "equity"
    assert row.beta == pytest.approx(dollars / measured.equity(world.core.pk).value, rel=1e-6)


def test_measures_var_and_es_scale_the_stored_one_day_totals_by_sqrt_horizon(world, measured):
    at99 = PortfolioRiskContribution.objects.get(
        portfolio=world.core, date=AS_OF, confidence=0.99, horizon_days=1
    )
    at95 = PortfolioRiskContribution.objects.get(
        portfolio=world.core, date=AS_OF, confidence=0.95, horizon_days=1
    )
    var = measured.value(
        world.core.pk, "var", {"method": "historical", "confidence": 0.99, "horizon_days": 4}
    )
    assert at99.historical_var is not None and at95.historical_es is not None
    assert var.value == pytest.approx(2.0 * at99.historical_var, rel=1e-12)  # sqrt(4) = 2
    es = measured.value(
        world.core.pk, "es", {"method": "historical", "confidence": 0.95, "horizon_days": 9}
    )
    assert es.value == pytest.approx(3.0 * at95.historical_es, rel=1e-12)  # sqrt(9) = 3
    # The defaults: 95%, one day; the same VaR the risk metrics store.
    metrics = RiskMetricSnapshot.objects.get(
        portfolio=world.core, date=AS_OF, confidence=0.95, horizon_days=1
    )
    assert _value(measured, world.core, "var") == pytest.approx(metrics.var_historical, rel=1e-9)
    assert _value(measured, world.core, "var", method="parametric") == pytest.approx(
        metrics.var_parametric, rel=1e-9
    )
    assert _value(measured, world.core, "var", method="monte_carlo") == pytest.approx(
        metrics.var_monte_carlo, rel=1e-9
    )
    assert var.value > 0  # a loss is positive


def test_measures_var_of_a_five_session_book_is_none_with_the_reason(world, measured):
    assert not PortfolioRiskContribution.objects.filter(portfolio=world.young).exists()
    found = measured.value(world.young.pk, "var", {})
    assert found.value is None
    assert "nothing stored" in found.reason and "market_risk" in found.reason
    # its exposures are there all the same
    assert _value(measured, world.young, "gross_exposure") == pytest.approx(2120.0)


def test_measures_stress_loss_is_minus_the_stored_correlated_pnl(world, measured):
    stored = StressTestResult.objects.get(
        portfolio=world.core, date=AS_OF, scenario__name="Market Down 10%", scenario__owner=None
    )
    assert _value(measured, world.core, "stress_loss", scenario="Market Down 10%") == (
        -stored.correlated_pnl
    )
    assert stored.correlated_pnl < 0  # a long book loses when the market falls: a positive loss
    missing = measured.value(world.core.pk, "stress_loss", {"scenario": "Nope"})
    assert missing.value is None and "no stored result" in missing.reason
    # The user's own scenario of the same name is the one their limits mean.
    own = StressScenario.objects.create(
        owner=world.alice, name="Market Down 10%", category="market", shocks={"Market": -0.5}
    )
    stress_run(as_of=AS_OF, portfolio_ids=[world.core.pk], scenarios=[own])
    again = measures_read(
        as_of=AS_OF,
        portfolio_ids=[world.core.pk],
        requests=[("stress_loss", {"scenario": "Market Down 10%"})],
    )
    theirs = StressTestResult.objects.get(portfolio=world.core, date=AS_OF, scenario=own)
    assert _value(again, world.core, "stress_loss", scenario="Market Down 10%") == (
        -theirs.correlated_pnl
    )
    assert theirs.correlated_pnl != stored.correlated_pnl


def test_measures_concentration_is_analytics_liquidity_s(world, measured):
    report = portfolio_concentration(portfolio_id=world.core.pk, as_of=AS_OF)
    assert _value(measured, world.core, "name_concentration") == pytest.approx(
        report.names[0].share, rel=1e-12
    )
    aapl = next(row.share for row in report.names if row.key == "AAPL")
    assert _value(measured, world.core, "name_concentration", name="aapl") == pytest.approx(
        aapl, rel=1e-12
    )
    assert _value(measured, world.core, "name_concentration", name="XOM") == 0.0  # not held
    assert _value(measured, world.core, "sector_concentration") == pytest.approx(
        report.sectors[0].share, rel=1e-12
    )
    for row in report.sectors:
        assert _value(
            measured, world.core, "sector_concentration", sector=row.key.upper()
        ) == pytest.approx(row.share, rel=1e-12)
    # hand-worked: the shorts book's names by |exposure| over its gross
    closes = {s: float(q.price) for s, q in current_prices(["MSFT", "JPM"], as_of=AS_OF).items()}
    msft, jpm = 100 * closes["MSFT"], 50 * closes["JPM"]
    assert _value(measured, world.shorts, "name_concentration") == pytest.approx(
        max(msft, jpm) / (msft + jpm), rel=1e-9
    )


def test_measures_days_to_liquidate_is_the_slowest_position(world, measured):
    for book in (world.core, world.options, world.shorts):
        report = portfolio_liquidity(portfolio_id=book.pk, as_of=AS_OF)
        days = [row.days_to_liquidate for row in report.positions if row.days_to_liquidate]
        assert len(days) == len(report.positions), book.name
        assert _value(measured, book, "days_to_liquidate") == pytest.approx(max(days), rel=1e-12)
    # Five sessions of volume: fewer than the ten the ADV needs.
    found = measured.value(world.young.pk, "days_to_liquidate", {})
    assert found.value is None and "NEWCO" in found.reason and "fewer than 10" in found.reason


def test_measures_drawdown_falls_from_the_highest_stored_equity(world, measured):
    equities = [
        float(e)
        for e in PortfolioSnapshot.objects.filter(
            portfolio=world.core, date__lte=AS_OF
        ).values_list("equity", flat=True)
    ]
    assert len(equities) == 21
    today = float(_snapshot(world.core).equity)
    assert _value(measured, world.core, "drawdown") == pytest.approx(max(equities) - today)
    assert _value(measured, world.core, "drawdown") >= 0
    # one snapshot only: its own peak, no fall
    assert _value(measured, world.shorts, "drawdown") == 0.0
    share = measured.in_unit(world.core.pk, "drawdown", {}, "share_of_equity")
    assert share.value == pytest.approx((max(equities) - today) / today, rel=1e-9)


def test_measures_of_an_empty_book(world, measured):
    # Sums over nothing are 0 (the snapshot's), equity is the cash ...
    assert _value(measured, world.empty, "gross_exposure") == 0.0
    assert _value(measured, world.empty, "delta") == 0.0
    assert measured.equity(world.empty.pk).value == 1000.0
    # ... but a book of nothing has no risk, concentration or liquidity to speak of.
    for measure, params in [
        ("var", {}),
        ("es", {"method": "parametric"}),
        ("stress_loss", {"scenario": "Market Down 10%"}),
        ("name_concentration", {}),
        ("sector_concentration", {"sector": "Technology"}),
        ("days_to_liquidate", {}),
    ]:
        found = measured.value(world.empty.pk, measure, params)
        assert found.value is None and "no positions" in found.reason, measure


def test_measures_of_a_session_without_stored_results_are_none(world):
    day = date(2026, 11, 27)  # a session the jobs never ran
    found = measures_read(as_of=day, portfolio_ids=[world.core.pk], requests=EVERY_MEASURE)
    for measure, params in EVERY_MEASURE:
        if measure in ("name_concentration", "sector_concentration", "days_to_liquidate"):
            continue  # the valued book: the last closes carried, as the liquidity API does
        result = found.value(world.core.pk, measure, params)
        assert result.value is None and result.reason, measure
    assert found.in_unit(world.core.pk, "var", {}, "share_of_equity").value is None


def test_measures_read_a_fixed_number_of_queries_whatever_the_books(world):
    def count(ids: list[int]) -> int:
        with CaptureQueriesContext(connection) as queries:
            measures_read(as_of=AS_OF, portfolio_ids=ids, requests=EVERY_MEASURE)
        return len(queries)

    one = count([world.core.pk])
    assert count(world.ids) == one
    assert one <= 16


def test_measures_units_and_signs(world, measured):
    assert _value(measured, world.core, "short_exposure") < 0
    assert _value(measured, world.core, "long_exposure") > 0
    gross = _value(measured, world.core, "gross_exposure")
    long, short = (
        _value(measured, world.core, "long_exposure"),
        _value(measured, world.core, "short_exposure"),
    )
    assert gross == pytest.approx(long - short, abs=0.01)
    assert 0 < _value(measured, world.core, "name_concentration") <= 1
    assert math.isfinite(_value(measured, world.core, "es", method="monte_carlo"))


def test_measures_the_limits_job_on_the_day_s_stored_results(world):
    """The limits job after the real chain: a VaR limit on all of alice's books breaches where
    the VaR is stored, and the young and empty books are reported, not breached."""
    var = Limit.objects.create(
        owner=world.alice, measure="var", unit="money", bound="max", hard=1.0, warning=None
    )
    share = Limit.objects.create(
        owner=world.alice,
        portfolio=world.core,
        measure="gross_exposure",
        unit="share_of_equity",
        bound="max",
        hard=0.01,
    )
    ids = [*world.ids, world.theirs.pk]
    job = batch.job_run("limits", AS_OF, portfolio_ids=ids)
    assert job.status == "succeeded", job.error
    breached = dict(Breach.objects.filter(limit=var).values_list("portfolio_id", "value"))
    assert set(breached) == {world.core.pk, world.options.pk, world.shorts.pk}
    metrics = RiskMetricSnapshot.objects.get(
        portfolio=world.core, date=AS_OF, confidence=0.95, horizon_days=1
    )
    assert breached[world.core.pk] == pytest.approx(metrics.var_historical, rel=1e-9)
    core = Breach.objects.get(limit=share)
    snapshot = _snapshot(world.core)
    assert core.value == pytest.approx(
        float(snapshot.gross_exposure) / float(snapshot.equity), rel=1e-9
    )
    assert "market_risk" in " ".join(job.warnings[str(world.young.pk)])
    assert "no positions" in " ".join(job.warnings[str(world.empty.pk)])
    assert str(world.theirs.pk) not in job.warnings
    assert (job.counts["opened"], job.counts["evaluated"]) == (4, 4)
    before = (
        list(Breach.objects.order_by("id").values()),
        list(BreachEvent.objects.order_by("id").values()),
    )
    assert batch.job_run("limits", AS_OF, portfolio_ids=ids).counts["opened"] == 0
    assert (
        list(Breach.objects.order_by("id").values()),
        list(BreachEvent.objects.order_by("id").values()),
    ) == before
