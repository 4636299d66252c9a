"""Every list and result endpoint of the market-data API costs a fixed number of queries: the same
for 2 symbols (sessions, contracts) as for 10."""

from __future__ import annotations

import re
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.test.utils import CaptureQueriesContext

from marketdata.calendar import sessions_back
from marketdata.providers.base import MarketDataProvider
from marketdata.providers.synthetic import SyntheticProvider
from marketdata.services import prices_fetch_and_cache, sectors_fetch_and_cache
from marketdata.symbols import build_occ

pytestmark = pytest.mark.django_db

WRITE = re.compile(r"\b(INSERT|UPDATE|DELETE)\b")

BASE = "/api/v1/market-data"
AS_OF = date(2026, 11, 20)
EXPIRY = date(2027, 1, 15)
SYMBOLS = ["AAPL", "MSFT", "JPM", "XOM", "NVDA", "KO", "PG", "JNJ", "WMT", "CVX"]

# Endpoint (with `{symbols}`: the loaded symbols, comma-separated) -> queries, whatever the size.
COUNTS = {
    "/prices/AAPL/": 4,  # user, security, count, page
    "/prices/AAPL/?start={start}&end={end}": 4,
    "/prices/current/?symbols={symbols}": 2,  # user, the latest closes
    "/prices/current/?symbols={symbols}&as_of={end}": 2,
    "/sectors/?symbols={symbols}": 2,  # user, securities
    "/options/AAPL/": 3,  # user, count, page
    "/options/AAPL/?expiration={expiry}&as_of={end}": 3,
}


@pytest.fixture(params=[2, 10], ids=lambda n: f"{n}-symbols")
def loaded(request: pytest.FixtureRequest) -> dict[str, str]:
    """`n` symbols with `5 n` sessions of closes and their sectors, and `n` AAPL contracts."""
    size = request.param
    symbols = SYMBOLS[:size]
    contracts = [build_occ("AAPL", EXPIRY, "C", Decimal(200 + 10 * i)) for i in range(size)]
    sessions = sessions_back(AS_OF, 5 * size)
    synthetic: list[MarketDataProvider] = [SyntheticProvider()]
    prices_fetch_and_cache(symbols=symbols, start=sessions[0], end=AS_OF, providers=synthetic)
    prices_fetch_and_cache(
        symbols=contracts, start=AS_OF - timedelta(days=7), end=AS_OF, providers=synthetic
    )
    sectors_fetch_and_cache(symbols=symbols, providers=synthetic)
    return {
        "symbols": ",".join(symbols),
        "start": sessions[0].isoformat(),
        "end": AS_OF.isoformat(),
        "expiry": EXPIRY.isoformat(),
        "size": str(size),
    }


def _writes(captured: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in captured.captured_queries if WRITE.search(q["sql"])]


@pytest.mark.parametrize("template", list(COUNTS))
def test_market_data_endpoint_query_count_is_fixed(
    template: str, loaded: dict[str, str], auth_client, django_assert_num_queries
) -> None:
    with django_assert_num_queries(COUNTS[template]) as captured:
        response = auth_client.get(BASE + template.format(**loaded))
    assert response.status_code == 200, response.content
    assert not _writes(captured), _writes(captured)  # a GET writes nothing
    body = response.json()
    rows = body.get("results", body)
    if template.startswith(("/prices/AAPL", "/options/")):
        assert len(rows) == (int(loaded["size"]) * (5 if "prices" in template else 1))
    else:
        assert len(rows) == int(loaded["size"])


def test_market_data_reads_are_the_same_for_a_second_user(
    loaded: dict[str, str], auth_client, other_client
) -> None:
    # Reference data, not user data: a second user has nothing to be refused.
    for template in COUNTS:
        url = BASE + template.format(**loaded)
        assert auth_client.get(url).json() == other_client.get(url).json(), template
