"""Every list and result endpoint of the what-if, export and report API costs a fixed number of
queries: the same for a session on a book of 2 positions (1 trade) as on one of 10 (5 trades)."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal

import pytest
from django.test.utils import CaptureQueriesContext

from marketdata.calendar import sessions_back
from marketdata.providers.synthetic import SyntheticProvider
from marketdata.services import prices_fetch_and_cache
from modeling.models import ModelingSession, Report
from portfolios.models import Portfolio
from portfolios.tests.factories import option, stock

pytestmark = pytest.mark.django_db

WRITE = re.compile(r"\b(INSERT|UPDATE|DELETE)\b")

API = "/api/v1"
AS_OF = date(2026, 11, 20)
EXPIRY = date(2027, 1, 15)
STOCKS = ["AAPL", "MSFT", "JPM", "XOM", "NVDA", "KO", "PG", "JNJ"]

# Endpoint (with `{s}` the session's id, `{r}` a report's) -> queries, whatever the size.
COUNTS = {
    "/modeling/sessions/": 3,  # user, count, page
    "/modeling/sessions/{s}/": 3,  # user, session, trades
    "/modeling/sessions/{s}/impacts/": 3,  # user, session, trades: the stored impacts
    # + 1: the risk the hedge removes measures the book before it (`risk_free_daily` reads the
    # rate again: it is not in the request's read cache).
    "/modeling/sessions/{s}/suggestions/?target=delta_neutral": 13,
    "/modeling/sessions/{s}/suggestions/?target=beta_neutral": 16,
    "/modeling/sessions/{s}/snapshots/": 4,
    "/export/history/": 3,
    "/reports/{r}/status/": 2,
}


@pytest.fixture(params=[2, 10], ids=lambda n: f"{n}-positions")
def session(
    request: pytest.FixtureRequest, user, market, auth_client, settings, tmp_path
) -> ModelingSession:
    """A calculated, saved and exported what-if session on a book of `n` positions with `n / 2`
    trades, and a queued report of the book."""
    settings.MEDIA_ROOT = tmp_path
    size = request.param
    book = Portfolio.objects.create(owner=user, name="Book", cash=Decimal("250000"))
    options = [option(book, "AAPL", EXPIRY, "C", "250", "-2")]
    if size > 2:
        options.append(option(book, "MSFT", EXPIRY, "P", "400", "3"))
    for symbol in STOCKS[: size - len(options)]:
        stock(book, symbol, "100")
    prices_fetch_and_cache(
        symbols=[*STOCKS, *(o.symbol for o in options)],
        start=sessions_back(AS_OF, 270)[0],
        end=AS_OF,
        providers=[SyntheticProvider()],
    )
    created = auth_client.post(
        f"{API}/modeling/sessions/",
        {"portfolio": book.pk, "name": "what if", "as_of": AS_OF.isoformat()},
        format="json",
    )
    assert created.status_code == 201, created.content
    pk = created.json()["id"]
    for symbol in STOCKS[: size // 2]:
        added = auth_client.post(
            f"{API}/modeling/sessions/{pk}/trades/", {"symbol": symbol, "quantity": "10"}
        )
        assert added.status_code == 201, added.content
    for step in ("calculate", "save"):
        assert auth_client.post(f"{API}/modeling/sessions/{pk}/{step}/").status_code < 300, step
    exported = auth_client.post(f"{API}/export/trades/", {"session": pk, "format": "csv"})
    assert exported.status_code == 200, exported.content
    Report.objects.create(owner=user, portfolio=book, kind="risk_summary", format="csv")
    assert book.positions.count() == size
    return ModelingSession.objects.get(pk=pk)


def _url(template: str, session: ModelingSession) -> str:
    report = Report.objects.get(portfolio_id=session.portfolio_id)
    return API + template.format(s=session.pk, r=report.pk)


def _writes(captured: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in captured.captured_queries if WRITE.search(q["sql"])]


@pytest.mark.parametrize("template", list(COUNTS))
def test_modeling_endpoint_query_count_is_fixed(
    template: str, session: ModelingSession, auth_client, django_assert_num_queries
) -> None:
    url = _url(template, session)
    with django_assert_num_queries(COUNTS[template]) as captured:
        response = auth_client.get(url)
    assert response.status_code == 200, response.content
    assert not _writes(captured), _writes(captured)  # a GET writes nothing


def test_modeling_results_of_another_user_are_404(session: ModelingSession, other_client) -> None:
    for template in COUNTS:
        if "{" in template:
            assert other_client.get(_url(template, session)).status_code == 404, template
