"""Every list and result endpoint of the analytics API costs a fixed number of queries: the same
for a book of 2 positions as for one of 10 (read with the API cache off, so each request
computes; the session's prices, Greeks, betas and risk metrics stored first, as the batch leaves
them)."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal

import pytest
from django.test.utils import CaptureQueriesContext

from analytics.models import BatchJob
from analytics.risk_metrics import risk_metrics_compute
from analytics.risk_services import factors_compute, ir_betas_compute
from analytics.services import greeks_compute, positions_value
from analytics.tests.helpers import SERIES
from marketdata.calendar import sessions_back
from marketdata.providers.synthetic import SyntheticProvider
from marketdata.services import prices_fetch_and_cache
from portfolios.models import Portfolio
from portfolios.tests.factories import option, stock

pytestmark = pytest.mark.django_db

WRITE = re.compile(r"\b(INSERT|UPDATE|DELETE)\b")

API = "/api/v1"
AS_OF = date(2026, 11, 20)
EXPIRY = date(2027, 1, 15)
STOCKS = ["AAPL", "MSFT", "JPM", "XOM", "NVDA", "KO", "PG", "JNJ"]

# Endpoint (with `{p}` for the portfolio's id) -> queries, whatever the size of the book.
COUNTS: dict[str, int | dict[str, int]] = {
    "/portfolio/?as_of={a}": 8,
    "/portfolios/{p}/summary/?as_of={a}": 8,
    "/portfolios/{p}/exposures/": 3,
    "/portfolios/{p}/performance/": 3,
    "/risk/greeks/?as_of={a}": 5,
    "/risk/greeks/?portfolio={p}": 6,
    "/risk/factors/?as_of={a}": 10,
    "/risk/liquidity/?as_of={a}": 8,
    "/risk/contributions/?as_of={a}&by=tag": 6,
    "/risk/concentration/?as_of={a}": 8,
    "/risk/metrics/?as_of={a}": {"sqlite": 19, "postgresql": 14},
    "/risk/scenarios/market/?as_of={a}": {"sqlite": 10, "postgresql": 9},
    "/risk/scenarios/rates/?as_of={a}": {"sqlite": 10, "postgresql": 9},
    "/risk/scenarios/accuracy/?as_of={a}": {"sqlite": 15, "postgresql": 12},
    "/factors/exposures/?as_of={a}": 7,
    "/factors/exposures/?as_of={a}&level=position": 6,
    "/factors/definitions/": 3,
    "/factors/correlation/?as_of={a}": {"sqlite": 3, "postgresql": 2},
    "/factors/diagnostics/{position}/?as_of={a}": {"sqlite": 5, "postgresql": 3},
}


@pytest.fixture(params=[2, 10], ids=lambda n: f"{n}-positions")
def book(request: pytest.FixtureRequest, user, settings) -> Portfolio:
    """A book of `n` positions (stocks and options on the session's closes, Greeks, betas and
    risk metrics stored), read with the API cache off."""
    settings.SIGMASIGHT_API_CACHE_TTL_S = 0
    size = request.param
    portfolio = Portfolio.objects.create(owner=user, name="Book", cash=Decimal("100000"))
    options = [option(portfolio, "AAPL", EXPIRY, "C", "250", "-2")]
    if size > 2:
        options.append(option(portfolio, "MSFT", EXPIRY, "P", "400", "3"))
    stocks = [stock(portfolio, s, "100") for s in STOCKS[: size - len(options)]]
    prices_fetch_and_cache(
        symbols=[*STOCKS, *SERIES, *(o.symbol for o in options)],
        start=sessions_back(AS_OF, 280)[0],
        end=AS_OF,
        providers=[SyntheticProvider()],
    )
    for job in (positions_value, greeks_compute, factors_compute, ir_betas_compute):
        job(as_of=AS_OF, portfolio_ids=[portfolio.pk])
    risk_metrics_compute(as_of=AS_OF, portfolio_ids=[portfolio.pk])
    assert portfolio.positions.count() == len(options) + len(stocks) == size
    return portfolio


def _url(template: str, portfolio: Portfolio) -> str:
    first = portfolio.positions.order_by("id")[0]
    return API + template.format(p=portfolio.pk, a=AS_OF.isoformat(), position=first.pk)


def _expected(count: int | dict[str, int], vendor: str) -> int:
    """A count, or one per database where they differ: on PostgreSQL closes panels and stored
    factor exposures are read with COPY (sigmasight.db.fetch_frame), which Django's query
    capture does not see."""
    return count if isinstance(count, int) else count[vendor]


def _writes(captured: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in captured.captured_queries if WRITE.search(q["sql"])]


@pytest.mark.parametrize("template", list(COUNTS))
def test_analytics_endpoint_query_count_is_fixed(
    template: str, book: Portfolio, auth_client, django_assert_num_queries, vendor: str
) -> None:
    url = _url(template, book)
    with django_assert_num_queries(_expected(COUNTS[template], vendor)) as captured:
        response = auth_client.get(url)
    assert response.status_code == 200, response.content
    assert not _writes(captured), _writes(captured)  # a GET writes nothing


def test_batch_jobs_list_query_count_is_fixed(
    book: Portfolio, staff_client, django_assert_num_queries
) -> None:
    for day in sessions_back(AS_OF, book.positions.count()):
        BatchJob.objects.create(name="risk_metrics", run_date=day)
    with django_assert_num_queries(3):  # user, count, page
        response = staff_client.get(f"{API}/admin/batch/jobs/")
    assert response.status_code == 200 and response.json()["count"] == book.positions.count()


def test_analytics_results_of_another_user_are_404(book: Portfolio, other_client) -> None:
    for template in COUNTS:
        if "{p}" in template or "{position}" in template:
            assert other_client.get(_url(template, book)).status_code == 404, template
