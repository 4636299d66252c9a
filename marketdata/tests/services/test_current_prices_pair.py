"""`current_prices_pair`: a book's closes on the session and on the one before in one query, the
same answers as `current_prices` asked twice, for the shapes user-imported prices take: holes,
closes dated after the previous session on days without a session, a previous close older than
the weeks read, no close at all."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from marketdata.models import DailyPrice, Security
from marketdata.providers.synthetic import SyntheticProvider
from marketdata.services import current_prices, current_prices_pair, prices_fetch_and_cache

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 24, 22, 0, tzinfo=UTC)  # Tuesday, after the close
AS_OF = date(2026, 11, 23)  # a Monday
PREVIOUS = date(2026, 11, 20)  # the Friday before


def close(symbol: str, day: date, price: str) -> None:
    security, _ = Security.objects.get_or_create(symbol=symbol)
    DailyPrice.objects.update_or_create(
        security=security,
        date=day,
        defaults={"close": Decimal(price), "source": "import", "fetched_at": NOW},
    )


def test_the_pair_answers_as_current_prices_twice(django_assert_num_queries):
    prices_fetch_and_cache(
        symbols=["AAPL", "SPY"],
        start=date(2026, 9, 1),
        end=AS_OF,
        providers=[SyntheticProvider()],
        now=NOW,
    )
    close("HOLE", PREVIOUS - timedelta(days=3), "10")  # neither session: stale on both
    for day, price in ((date(2026, 11, 21), "11"), (date(2026, 11, 22), "12"), (AS_OF, "13")):
        close("WEEKEND", day, price)  # three closes after Friday (imported on the weekend)
    close("WEEKEND", PREVIOUS, "9")
    close("OLD", AS_OF, "20")  # the previous close five weeks earlier
    close("OLD", AS_OF - timedelta(days=35), "18")
    close("ANCIENT", date(2026, 1, 5), "5")  # nothing recent at all
    symbols = ["AAPL", "SPY", "HOLE", "WEEKEND", "OLD", "ANCIENT", "NONE"]
    today, before = current_prices_pair(symbols, as_of=AS_OF, previous=PREVIOUS, now=NOW)
    assert today == current_prices(symbols, as_of=AS_OF, now=NOW)
    assert before == current_prices(symbols, as_of=PREVIOUS, now=NOW)
    assert before["WEEKEND"].price == Decimal("9") and today["WEEKEND"].price == Decimal("13")
    assert before["OLD"].price == Decimal("18") and before["OLD"].stale
    assert today["HOLE"].stale and before["HOLE"].stale and "NONE" not in today
    with django_assert_num_queries(1):  # closes on every session: one query for both
        current_prices_pair(["AAPL", "SPY"], as_of=AS_OF, previous=PREVIOUS, now=NOW)
