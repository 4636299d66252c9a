"""The market_risk job's risk contributions (analytics.contributions): stored beside the risk
metrics from the same P&L and draws, their totals the stored metrics, their components adding
up to the totals, for the batch tests' books and for books of one kind (one position, options
only, shorts only, empty, too little history, no factor covariance)."""

from __future__ import annotations

import math
from datetime import date
from decimal import Decimal

import numpy as np
import pytest
from django.utils import timezone

from analytics import risk_metrics as rm
from analytics.calculations import revaluation, risk
from analytics.contribution_models import PositionComponents
from analytics.contribution_selectors import risk_contributions
from analytics.contributions import historical_position_pnl
from analytics.models import (
    PortfolioRiskContribution,
    PositionContributionSet,
    RiskMetricSnapshot,
)
from analytics.risk_services import factors_compute
from analytics.services import greeks_compute, positions_value
from analytics.tests.helpers import SERIES
from marketdata.calendar import sessions_back
from marketdata.providers.synthetic import SyntheticProvider
from marketdata.services import prices_fetch_and_cache
from portfolios.models import Portfolio, Position
from portfolios.tests.factories import PortfolioFactory, option, stock

pytestmark = pytest.mark.django_db

AS_OF = date(2026, 11, 20)
EXP = date(2027, 1, 15)
METHODS = ("parametric", "historical", "monte_carlo")
COLUMNS = [f"{m}_{x}" for m in METHODS for x in ("volatility", "var", "es")]
# The stored metric each total is (the same number, not a recomputation).
STORED = {
    "historical_var": "var_historical",
    "historical_es": "expected_shortfall",
    "parametric_var": "var_parametric",
    "monte_carlo_var": "var_monte_carlo",
}


def prices(symbols: list[str], sessions: int = 270) -> None:
    prices_fetch_and_cache(
        symbols=symbols,
        start=sessions_back(AS_OF, sessions)[0],
        end=AS_OF,
        providers=[SyntheticProvider()],
    )


def measure(*portfolios: Portfolio) -> dict:
    """The batch's chain up to market_risk for these portfolios: valuation, Greeks, betas."""
    ids = [p.pk for p in portfolios]
    for job in (positions_value, greeks_compute, factors_compute):
        job(as_of=AS_OF, portfolio_ids=ids)
    return rm.risk_metrics_compute(as_of=AS_OF, portfolio_ids=ids)


def positions_of(row: PortfolioRiskContribution) -> list[PositionComponents]:
    """The stored components of the row's positions (one set of vectors per book)."""
    return PositionContributionSet.objects.get(
        portfolio_id=row.portfolio_id,
        date=row.date,
        confidence=row.confidence,
        horizon_days=row.horizon_days,
    ).rows()


def every_position() -> list[PositionComponents]:
    return [p for s in PositionContributionSet.objects.all() for p in s.rows()]


def assert_components_sum_to_totals(row: PortfolioRiskContribution) -> None:
    positions = positions_of(row)
    for column in COLUMNS:
        total = getattr(row, column)
        if total is None:
            assert all(getattr(p, column) is None for p in positions), column
            continue
        summed = math.fsum(getattr(p, column) for p in positions)
        assert summed == pytest.approx(total, rel=1e-9, abs=1e-9), column
    if row.parametric_volatility is not None:
        assert row.specific is not None
        assert math.fsum(row.by_factor.values()) + row.specific == pytest.approx(
            row.parametric_volatility, rel=1e-9
        )
        for p in positions:
            assert p.parametric_systematic is not None and p.parametric_specific is not None
            assert p.parametric_systematic + p.parametric_specific == pytest.approx(
                p.parametric_volatility, rel=1e-9, abs=1e-9
            )


@pytest.fixture
def measured(books):
    first, second = books
    prices([p.symbol for p in first.positions.filter(option_type__in=["C", "P"])])
    report = measure(first, second)
    assert report["skipped"] == {}
    return first, second, report


def test_contribution_totals_are_the_stored_risk_metrics(measured):
    *_, report = measured
    snapshots = RiskMetricSnapshot.objects.filter(date=AS_OF)
    assert snapshots.count() == 4 and PortfolioRiskContribution.objects.count() == 4
    # Two positions per book at two confidences, one set of vectors per book and confidence.
    assert report["contribution_rows"] == 4 * 2 == len(every_position())
    assert PositionContributionSet.objects.count() == 4
    for snapshot in snapshots:
        row = PortfolioRiskContribution.objects.get(
            portfolio=snapshot.portfolio_id,
            date=AS_OF,
            confidence=snapshot.confidence,
            horizon_days=snapshot.horizon_days,
        )
        for column, metric in STORED.items():
            assert getattr(row, column) is not None
            assert getattr(row, column) == getattr(snapshot, metric), column
        assert row.unavailable == {}
        assert row.observations == {"historical": snapshot.observations, "monte_carlo": 10_000}


def test_contribution_components_sum_to_the_totals(measured):
    for row in PortfolioRiskContribution.objects.all():
        assert_components_sum_to_totals(row)
        assert set(row.by_factor) == set(row.factor_exposures) and "Market" in row.by_factor


def test_contribution_exposure_is_the_positions_signed_exposure(measured):
    held = {p.pk: p for p in Position.objects.all()}
    for p in every_position():
        assert p.exposure == pytest.approx(float(held[p.position_id].exposure or 0), abs=0.01)
    (jpm,) = [pk for pk, p in held.items() if p.symbol == "JPM"]
    assert all(p.exposure < 0 for p in every_position() if p.position_id == jpm)


def test_historical_position_pnl_adds_up_to_the_book_path(measured):
    first, _, _ = measured
    inputs = rm.risk_inputs([first.pk], AS_OF)
    book = rm.book_risk(inputs, first.pk, 1)
    assert book is not None
    pnl = historical_position_pnl(book.frame, inputs.closes, book.path.sessions)
    assert pnl.shape == (len(book.path.pnl), 2)
    np.testing.assert_allclose(pnl.sum(axis=1), book.path.pnl, rtol=0, atol=1e-8)
    # An option enters by its own closes: units x the change of the contract's close.
    leg = int(np.flatnonzero(book.frame["is_option"].to_numpy())[0])
    closes = inputs.closes[book.frame["symbol"][leg]].reindex(book.path.sessions).to_numpy()
    units = book.frame["quantity"][leg] * book.frame["multiplier"][leg]
    np.testing.assert_allclose(pnl[:, leg], units * np.diff(closes), rtol=1e-12)


def test_monte_carlo_revalues_the_draws_once_per_book(measured, monkeypatch):
    first, second, _ = measured
    calls = []
    real = revaluation.revalue

    def counted(*args, **kwargs):
        calls.append(len(args[1]))
        return real(*args, **kwargs)

    monkeypatch.setattr(revaluation, "revalue", counted)
    rm.risk_metrics_compute(as_of=AS_OF, portfolio_ids=[first.pk, second.pk])
    # The book with an option x one set of draws (not one per confidence, none for the
    # contributions); the second book holds only stocks, revalued linearly.
    assert calls == [10_000]


def test_rerunning_a_session_replaces_the_rows(measured):
    first, second, _ = measured
    before = sorted(every_position())
    rm.risk_metrics_compute(as_of=AS_OF, portfolio_ids=[first.pk, second.pk])
    after = sorted(every_position())
    assert after == before and PortfolioRiskContribution.objects.count() == 4
    assert PositionContributionSet.objects.count() == 4
    # A position closed since loses its rows; the others still add up to the new totals.
    closed = second.positions.get(symbol="KO")
    closed.closed_at = timezone.now()
    closed.save()
    rm.risk_metrics_compute(as_of=AS_OF, portfolio_ids=[first.pk, second.pk])
    assert closed.pk not in {p.position_id for p in every_position()}
    for row in PortfolioRiskContribution.objects.filter(portfolio=second):
        assert_components_sum_to_totals(row)


def test_a_deleted_position_drops_out_and_a_deleted_portfolio_takes_its_sets(measured):
    """A book's components are one row of vectors: a position deleted since the session is
    dropped by the reader (the positions it joins to), a deleted portfolio's sets go with it."""
    first, second, _ = measured
    listed = risk_contributions(portfolio=second, as_of=AS_OF, by="position")
    assert listed is not None and {r.key for r in listed.contributions} == {"JPM", "KO"}
    gone = second.positions.get(symbol="KO")
    gone.delete()
    listed = risk_contributions(portfolio=second, as_of=AS_OF, by="position")
    assert listed is not None and [r.key for r in listed.contributions] == ["JPM"]
    first.delete()
    assert not PositionContributionSet.objects.filter(portfolio_id=first.pk).exists()
    assert PositionContributionSet.objects.filter(portfolio=second).count() == 2


def test_a_one_position_book_holds_all_the_risk(user):
    portfolio = PortfolioFactory(owner=user, cash=Decimal("10000"))
    stock(portfolio, "AAPL", "100")
    prices(["AAPL", *SERIES])
    measure(portfolio)
    for row in PortfolioRiskContribution.objects.filter(portfolio=portfolio):
        (position,) = positions_of(row)
        for column in COLUMNS:
            assert getattr(position, column) == pytest.approx(getattr(row, column), rel=1e-12)


def test_an_options_only_book_is_allocated_by_every_method(user):
    portfolio = PortfolioFactory(owner=user, cash=Decimal("50000"))
    legs = [
        option(portfolio, "AAPL", EXP, "C", "450", "2"),
        option(portfolio, "AAPL", EXP, "P", "400", "-3"),
    ]
    prices(["AAPL", *SERIES, *(leg.symbol for leg in legs)])
    measure(portfolio)
    for row in PortfolioRiskContribution.objects.filter(portfolio=portfolio):
        snapshot = RiskMetricSnapshot.objects.get(portfolio=portfolio, confidence=row.confidence)
        assert all(getattr(row, c) == getattr(snapshot, m) for c, m in STORED.items())
        assert_components_sum_to_totals(row)
        for position in positions_of(row):  # both legs move the book by every method
            assert all(getattr(position, c) != 0.0 for c in COLUMNS)


def test_a_short_book_is_allocated_by_every_method(user):
    portfolio = PortfolioFactory(owner=user, cash=Decimal("50000"))
    stock(portfolio, "JPM", "-50")
    stock(portfolio, "KO", "-200")
    prices(["JPM", "KO", *SERIES])
    measure(portfolio)
    for row in PortfolioRiskContribution.objects.filter(portfolio=portfolio):
        assert all(getattr(row, c) is not None and getattr(row, c) > 0 for c in COLUMNS)
        assert_components_sum_to_totals(row)
        assert all(p.exposure < 0 for p in positions_of(row))


def test_an_empty_book_has_zero_risk(user):
    portfolio = PortfolioFactory(owner=user, cash=Decimal("1000"))
    prices(SERIES)
    report = measure(portfolio)
    assert report["skipped"] == {} and report["contribution_rows"] == 0
    rows = PortfolioRiskContribution.objects.filter(portfolio=portfolio)
    assert sorted(rows.values_list("confidence", flat=True)) == [0.95, 0.99]
    for row in rows:
        assert [getattr(row, c) for c in COLUMNS] == [0.0] * 9
        assert row.specific == 0.0 and row.by_factor == {} and row.unavailable == {}


def test_a_book_with_too_little_history_stores_nothing(user):
    portfolio = PortfolioFactory(owner=user)
    stock(portfolio, "AAPL", "10")
    stock(portfolio, "NEWCO", "10")
    prices(["AAPL", *SERIES])
    prices(["NEWCO"], sessions=30)
    report = measure(portfolio)
    assert "NEWCO has 30" in report["skipped"][portfolio.pk]
    assert not PortfolioRiskContribution.objects.exists()
    assert not PositionContributionSet.objects.exists()


def test_without_a_factor_covariance_parametric_and_monte_carlo_are_null(measured, monkeypatch):
    first, second, _ = measured

    def singular(*args, **kwargs):
        raise ValueError("returns contain NaN or infinite values")

    monkeypatch.setattr(risk, "ewma_covariance", singular)
    rm.risk_metrics_compute(as_of=AS_OF, portfolio_ids=[first.pk, second.pk])
    for row in PortfolioRiskContribution.objects.all():
        assert set(row.unavailable) == {"parametric", "monte_carlo"}
        assert row.unavailable["parametric"].startswith("factor covariance:")
        assert row.specific is None and row.by_factor == {}
        assert [getattr(row, c) is None for c in COLUMNS] == [True] * 3 + [False] * 3 + [True] * 3
        assert (
            row.historical_var
            == RiskMetricSnapshot.objects.get(
                portfolio=row.portfolio_id, confidence=row.confidence
            ).var_historical
        )
        assert_components_sum_to_totals(row)


def test_monte_carlo_shares_the_residual_noise_by_specific_variance(measured):
    """A position's Monte Carlo ES component is its own revalued P&L's tail mean plus the share
    s_i / sum s of the aggregate noise's tail mean, over the stored VaR's draws and tail."""
    first, _, _ = measured
    inputs = rm.risk_inputs([first.pk], AS_OF)
    book = rm.book_risk(inputs, first.pk, 1, by_position=True)
    assert book is not None and book.revalue is not None and book.specific is not None
    rm.book_metrics(inputs, book, [0.99], 1)
    draws = book.revalue.draws
    assert draws is not None and draws.positions is not None
    revalued, noise, pnl = draws.positions.dense(), draws.noise, draws.pnl
    np.testing.assert_allclose(revalued.sum(axis=1) + noise, pnl, rtol=1e-12, atol=1e-9)
    tail = pnl <= -risk.historical_var(pnl, 0.99)
    share = book.specific / book.specific.sum()
    expected = -(revalued[tail].mean(axis=0) + share * noise[tail].mean())
    stored = sorted(
        PositionContributionSet.objects.get(portfolio=first, date=AS_OF, confidence=0.99).rows()
    )
    ids = book.frame["id"].tolist()
    assert [p.position_id for p in stored] == sorted(ids)
    by_id = dict(zip(ids, expected, strict=True))
    for p in stored:
        assert p.monte_carlo_es == pytest.approx(by_id[p.position_id], rel=1e-9)
    assert share.min() > 0  # both positions carry specific risk
