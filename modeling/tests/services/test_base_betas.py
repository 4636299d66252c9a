"""A session's frozen base when the factor job stored betas for some positions and not others
(a position added after the day's batch): the stored betas are kept, the others estimated by the
factor job's regressions, and the data quality says how many were estimated."""

from __future__ import annotations

import pytest

from analytics.models import PositionFactorExposure
from analytics.risk_services import factors_compute
from modeling.services import session_create
from modeling.tests.helpers import AS_OF, fetch
from portfolios.tests.factories import stock

pytestmark = pytest.mark.django_db


def test_a_position_without_stored_betas_is_estimated_beside_the_stored_ones(portfolio, user):
    factors_compute(as_of=AS_OF, portfolio_ids=[portfolio.pk])
    stored = dict(
        PositionFactorExposure.objects.filter(
            position__portfolio=portfolio, date=AS_OF, factor__name="Market"
        ).values_list("position__symbol", "beta")
    )
    assert stored, "the factor job stored betas"
    fetch(["KO"])
    stock(portfolio, "KO", "50")  # after the factor job: no stored betas

    session = session_create(owner=user, portfolio=portfolio, name="late position", as_of=AS_OF)

    assert session.base_context["data_quality"]["estimated_betas"] == 1
    betas = {row["symbol"]: row["betas"]["Market"] for row in session.base_positions}
    for symbol, beta in stored.items():
        assert betas[symbol] == pytest.approx(beta, rel=1e-12), symbol
    assert betas["KO"] != 0.0  # estimated from KO's own history, not left at zero
