"""Every list and result endpoint of the stress API costs a fixed number of queries: the same for
a book of 2 positions as for one of 10 (API cache off). A replay asked again writes nothing."""

from __future__ import annotations

import io
import re
from datetime import date
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.test.utils import CaptureQueriesContext

from analytics.risk_services import factors_compute, ir_betas_compute
from analytics.services import greeks_compute, positions_value
from analytics.tests.helpers import SERIES
from marketdata.calendar import sessions_back
from marketdata.providers.synthetic import SyntheticProvider
from marketdata.services import prices_fetch_and_cache
from portfolios.models import Portfolio
from portfolios.tests.factories import option, stock
from stress.models import StressScenario
from stress.services import stress_run

pytestmark = pytest.mark.django_db

WRITE = re.compile(r"\b(INSERT|UPDATE|DELETE)\b")

API = "/api/v1"
AS_OF = date(2026, 11, 20)
EXPIRY = date(2027, 1, 15)
STOCKS = ["AAPL", "MSFT", "JPM", "XOM", "NVDA", "KO", "PG", "JNJ"]

# Endpoint (with `{p}` the portfolio's id, `{s}` a library scenario's) -> queries.
COUNTS: dict[str, int | dict[str, int]] = {
    "/stress/scenarios/": 3,  # user, count, page
    "/stress/scenarios/{s}/": 2,
    "/stress/results/{p}/": 3,  # user, portfolio, results
    "/stress/results/{p}/?start={a}&end={a}": 3,
    "/stress/correlations/": 2,  # user, the stored matrix
    "/stress/correlations/?as_of={a}": 2,
    "/stress/historical/2008/": 2,  # user, scenario
    "/stress/historical/2008/?portfolio={p}": {
        "sqlite": 13,
        "postgresql": 11,
    },  # and the replay, computed afresh
}


@pytest.fixture(params=[2, 10], ids=lambda n: f"{n}-positions")
def book(request: pytest.FixtureRequest, user, settings) -> Portfolio:
    """A book of `n` positions with the session's Greeks, betas and every library scenario's
    stored result, read with the API cache off."""
    settings.SIGMASIGHT_API_CACHE_TTL_S = 0
    call_command("load_stress_scenarios", stdout=io.StringIO())
    size = request.param
    portfolio = Portfolio.objects.create(owner=user, name="Book", cash=Decimal("100000"))
    options = [option(portfolio, "AAPL", EXPIRY, "C", "250", "-2")]
    if size > 2:
        options.append(option(portfolio, "MSFT", EXPIRY, "P", "400", "3"))
    for symbol in STOCKS[: size - len(options)]:
        stock(portfolio, symbol, "100")
    prices_fetch_and_cache(
        symbols=[*STOCKS, *SERIES, *(o.symbol for o in options)],
        start=sessions_back(AS_OF, 280)[0],
        end=AS_OF,
        providers=[SyntheticProvider()],
    )
    for job in (positions_value, greeks_compute, factors_compute, ir_betas_compute, stress_run):
        job(as_of=AS_OF, portfolio_ids=[portfolio.pk])
    assert portfolio.positions.count() == size
    return portfolio


def _url(template: str, portfolio: Portfolio) -> str:
    scenario = StressScenario.objects.filter(owner__isnull=True).order_by("id")[0]
    return API + template.format(p=portfolio.pk, s=scenario.pk, a=AS_OF.isoformat())


def _expected(count: int | dict[str, int], vendor: str) -> int:
    """A count, or one per database where they differ: on PostgreSQL closes panels are read with
    COPY (sigmasight.db.fetch_frame), which Django's query capture does not see."""
    return count if isinstance(count, int) else count[vendor]


def _writes(captured: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in captured.captured_queries if WRITE.search(q["sql"])]


@pytest.mark.parametrize("template", list(COUNTS))
def test_stress_endpoint_query_count_is_fixed(
    template: str, book: Portfolio, auth_client, django_assert_num_queries, vendor: str
) -> None:
    url = _url(template, book)
    auth_client.get(url)  # a replay's first reading stores what it computed
    with django_assert_num_queries(_expected(COUNTS[template], vendor)) as captured:
        response = auth_client.get(url)
    assert response.status_code == 200, response.content
    assert not _writes(captured), _writes(captured)  # a GET asked again writes nothing


def test_stress_results_of_another_user_are_404(book: Portfolio, other_client) -> None:
    for template in COUNTS:
        if "{p}" in template:
            assert other_client.get(_url(template, book)).status_code == 404, template
