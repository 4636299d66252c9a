"""The analytics admin: every computed result's changelist shows the rows the day's jobs wrote
(staff see every user's), a detail page its object, and a non-staff user is sent to log in."""

from __future__ import annotations

import pytest

from analytics import batch
from analytics.models import (
    BatchJob,
    MarketRiskScenario,
    PortfolioFactorExposure,
    PortfolioRiskContribution,
    PositionContributionSet,
    PositionFactorExposure,
    PositionGreeks,
    PositionInterestRateBeta,
    RiskMetricSnapshot,
)
from sigmasight.accounts.tests.factories import UserFactory

pytestmark = pytest.mark.django_db

JOBS = ["market_data", "greeks", "factors", "market_risk"]


@pytest.fixture
def computed(books, batch_session):
    for name in JOBS:
        assert batch.job_run(name, batch_session).status == "succeeded", name
    return books


@pytest.fixture
def staff(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def _page(client, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200, path
    return response.content.decode()


def test_computed_result_changelists_show_both_users_rows(computed, staff):
    first, second = computed
    pages = {
        "positiongreeks": (PositionGreeks, ["AAPL", "Delta", "Volatility source"]),
        "positionfactorexposure": (PositionFactorExposure, ["AAPL", "JPM", "KO", "Market"]),
        "portfoliofactorexposure": (PortfolioFactorExposure, [first.name, second.name]),
        "positioninterestratebeta": (PositionInterestRateBeta, ["JPM", "KO"]),
        "marketriskscenario": (MarketRiskScenario, [first.name, second.name]),
        "riskmetricsnapshot": (RiskMetricSnapshot, [first.name, second.name]),
        "portfolioriskcontribution": (PortfolioRiskContribution, [first.name, second.name]),
        "positioncontributionset": (
            PositionContributionSet,
            [first.name, "Largest historical VaR"],
        ),
    }
    for model, (cls, shown) in pages.items():
        html = _page(staff, f"/admin/analytics/{model}/")
        count = cls._default_manager.count()
        assert count > 0, model
        name = cls._meta.verbose_name if count == 1 else cls._meta.verbose_name_plural
        assert f"{count} {name}" in html, (model, count)
        for text in shown:
            assert text in html, (model, text)


def test_a_position_contribution_set_page_lists_every_position(computed, staff):
    """The vectors read back per position: each position's symbol and its components."""
    stored = PositionContributionSet.objects.select_related("portfolio").first()
    assert stored is not None
    html = _page(staff, f"/admin/analytics/positioncontributionset/{stored.pk}/change/")
    symbols = dict(stored.portfolio.positions.values_list("id", "symbol"))
    rows = stored.rows()
    assert len(rows) == len(symbols) > 0
    for row in rows:
        assert f"<td>{symbols[row.position_id]}</td>" in html
        assert f"<td>{row.historical_var:,.2f}</td>" in html
        assert f"<td>{row.exposure:,.2f}</td>" in html


def test_factor_definitions_and_batch_jobs_show_what_they_hold(computed, staff, batch_session):
    html = _page(staff, "/admin/analytics/factordefinition/")
    for text in ("Market", "SPY", "Momentum", "MTUM"):
        assert text in html, text
    html = _page(staff, "/admin/analytics/batchjob/")
    for name in JOBS:
        assert name in html, name
    job = BatchJob.objects.get(name="greeks", run_date=batch_session)
    detail = _page(staff, f"/admin/analytics/batchjob/{job.pk}/change/")
    assert "greeks" in detail and "succeeded" in detail
    greeks = PositionGreeks.objects.get()
    detail = _page(staff, f"/admin/analytics/positiongreeks/{greeks.pk}/change/")
    assert "AAPL" in detail


def test_analytics_admin_refuses_a_non_staff_user(computed, client, user):
    client.force_login(user)
    for model in ("positiongreeks", "riskmetricsnapshot", "batchjob", "factordefinition"):
        response = client.get(f"/admin/analytics/{model}/")
        assert response.status_code == 302 and "/admin/login/" in response["Location"], model
