"""Every list and result endpoint of the book's API costs a fixed number of queries: the same for
a book of 2 positions as for one of 10 (tagged, with detected strategies; API cache off)."""

from __future__ import annotations

import re
from datetime import date

import pytest
from django.test.utils import CaptureQueriesContext

from portfolios.models import Portfolio, PositionTag, Tag
from portfolios.services import strategies_refresh
from portfolios.tests.factories import option, stock

pytestmark = pytest.mark.django_db

WRITE = re.compile(r"\b(INSERT|UPDATE|DELETE)\b")

API = "/api/v1"
EXPIRY = date(2027, 1, 15)
STOCKS = ["AAPL", "MSFT", "JPM", "XOM", "NVDA", "KO", "PG"]

# Endpoint (with `{p}` the portfolio's id, `{position}` its first position's) -> queries.
COUNTS = {
    "/portfolios/": 3,  # user, count, page
    "/portfolios/{p}/": 2,  # user, portfolio
    "/portfolios/{p}/export/?format=csv": 5,
    "/positions/": 5,  # user, count, page, tags, latest Greeks
    "/positions/?portfolio={p}": 5,
    "/positions/{position}/": 3,
    "/positions/grouped/?by=type": 5,
    "/positions/grouped/?portfolio={p}&by=underlying": 5,
    "/positions/grouped/?portfolio={p}&by=tag": 5,
    "/positions/grouped/?portfolio={p}&by=strategy": 5,
    "/positions/grouped/?portfolio={p}&by=sector": 6,  # and the sectors
    "/tags/": 3,
    "/strategies/": 4,  # user, count, page, positions
    "/strategies/?portfolio={p}": 4,
}


@pytest.fixture(params=[2, 10], ids=lambda n: f"{n}-positions")
def book(request: pytest.FixtureRequest, user, settings) -> Portfolio:
    """`n` positions: stocks and calls written on them (covered calls), each tagged."""
    settings.SIGMASIGHT_API_CACHE_TTL_S = 0
    size = request.param
    portfolio = Portfolio.objects.create(owner=user, name="Book")
    calls = 1 if size == 2 else 3
    stocks = [stock(portfolio, s, "300") for s in STOCKS[: size - calls]]
    options = [option(portfolio, s.symbol, EXPIRY, "C", "250", "-1") for s in stocks[:calls]]
    tags = [Tag.objects.create(owner=user, name=name) for name in ("growth", "hedge")]
    PositionTag.objects.bulk_create(
        PositionTag(position=position, tag=tags[i % 2])
        for i, position in enumerate([*stocks, *options])
    )
    strategies_refresh(portfolio=portfolio)
    assert portfolio.positions.count() == size and portfolio.strategies.count() >= calls
    return portfolio


def _url(template: str, portfolio: Portfolio) -> str:
    first = portfolio.positions.order_by("id")[0]
    return API + template.format(p=portfolio.pk, position=first.pk)


def _writes(captured: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in captured.captured_queries if WRITE.search(q["sql"])]


@pytest.mark.parametrize("template", list(COUNTS))
def test_book_endpoint_query_count_is_fixed(
    template: str, book: Portfolio, auth_client, django_assert_num_queries
) -> None:
    url = _url(template, book)
    with django_assert_num_queries(COUNTS[template]) as captured:
        response = auth_client.get(url)
    assert response.status_code == 200, response.content
    assert not _writes(captured), _writes(captured)  # a GET writes nothing


def test_book_endpoints_of_another_user_are_404(book: Portfolio, other_client) -> None:
    for template in COUNTS:
        if "{p}/" in template or "{position}" in template:
            assert other_client.get(_url(template, book)).status_code == 404, template
