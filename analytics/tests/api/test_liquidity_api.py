"""GET /api/v1/risk/liquidity/ and /api/v1/risk/concentration/ on stored closes, volumes,
Greeks and classifications written by hand, so every number is worked out below.

The market (the 20 NYSE sessions to AS_OF; participation 20% unless said):
  AAA stock, close 50, Technology / Software: volumes 90,000 / 110,000 alternating -> ADV 100,000
  BBB stock, close 25, Energy / Oil & Gas: 15 volumes of 40,000, 5 bars without one -> ADV 40,000
  CCC stock, close 40, Technology / Semiconductors: the first 8 sessions have no bar, then 12
      volumes of 500 / 1,500 -> ADV 1,000
  DDD stock, close 10, no classification: 9 volumes of 1,000,000 -> fewer than 10: ADV unknown
  CCC call (x100), close 5.00, stored position delta 600 for 10 contracts
  CCC put (x100), close 2.00, stored position delta +200 for -5 contracts (short puts)
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator

from analytics.models import PositionGreeks
from analytics.tests.helpers import AS_OF
from marketdata.calendar import sessions_back
from marketdata.models import DailyPrice, Security
from marketdata.services import securities_ensure
from marketdata.symbols import build_occ
from portfolios.models import Portfolio, Position
from portfolios.tests.factories import PortfolioFactory, option, stock
from sigmasight.tests.helpers import assert_envelope

pytestmark = pytest.mark.django_db

API = "/api/v1/risk"
EXP = date(2027, 1, 15)
CALL = build_occ("CCC", EXP, "C", Decimal("40"))
PUT = build_occ("CCC", EXP, "P", Decimal("40"))
GROSS = 1_500_000 + 2_000_000 + 5_000


def bars(symbol: str, close: str, volumes: list[int | None], *, first: int = 0) -> None:
    """Bars of the last 20 sessions to AS_OF from session `first` on, with these volumes."""
    days = sessions_back(AS_OF, 20)[first:]
    assert len(volumes) == len(days)
    security = securities_ensure([symbol])[symbol]
    DailyPrice.objects.bulk_create(
        DailyPrice(
            security_id=security,
            date=day,
            close=Decimal(close),
            volume=volume,
            source="csv",
            fetched_at=timezone.now(),
        )
        for day, volume in zip(days, volumes, strict=True)
    )


@pytest.fixture
def market(db) -> None:
    bars("AAA", "50", [90_000, 110_000] * 10)
    bars("BBB", "25", [None] * 5 + [40_000] * 15)
    bars("CCC", "40", [500, 1_500] * 6, first=8)
    bars("DDD", "10", [None] * 11 + [1_000_000] * 9)
    bars(CALL, "5.00", [None] * 20)
    bars(PUT, "2.00", [None] * 20)
    for symbol, sector, industry in [
        ("AAA", "Technology", "Software"),
        ("BBB", "Energy", "Oil & Gas"),
        ("CCC", "Technology", "Semiconductors"),
    ]:
        Security.objects.filter(symbol=symbol).update(sector=sector, industry=industry)


def greeks(position: Position, delta: float) -> None:
    """Stored Greeks for the session: only the position delta matters here."""
    PositionGreeks.objects.create(
        position=position,
        date=AS_OF,
        delta=delta,
        gamma=0.0,
        theta=0.0,
        vega=0.0,
        rho=0.0,
        dollar_delta=delta * 40,
        volatility=0.3,
        volatility_source="implied",
        underlying_price=40.0,
        risk_free_rate=0.04,
        days_to_expiry=(EXP - AS_OF).days,
        computed_at=timezone.now(),
    )


def call(portfolio: Portfolio, contracts: str = "10", delta: float | None = 600.0) -> Position:
    position = option(portfolio, "CCC", EXP, "C", "40", contracts)
    if delta is not None:
        greeks(position, delta)
    return position


@pytest.fixture
def book(user, market) -> Portfolio:
    """The hand-worked book: long AAA, short BBB, long CCC calls."""
    portfolio = PortfolioFactory(owner=user, name="Hand-worked")
    stock(portfolio, "AAA", "30000")
    stock(portfolio, "BBB", "-80000")
    call(portfolio)
    return portfolio


def get(client, path: str, portfolio: Portfolio | None = None, **params) -> dict:
    query = {"as_of": AS_OF.isoformat(), **params}
    if portfolio is not None:
        query["portfolio"] = portfolio.pk
    response = client.get(f"{API}/{path}/", query)
    assert response.status_code == 200, response.content
    return response.json()


def by_symbol(body: dict) -> dict[str, dict]:
    return {row["symbol"]: row for row in body["positions"]}


# Liquidity ------------------------------------------------------------------------------------


def test_liquidity_hand_worked_book(auth_client, book):
    body = get(auth_client, "liquidity", book)
    assert body["as_of"] == AS_OF.isoformat() and body["portfolio"] == book.pk
    assert (body["participation"], body["flag_days"]) == (0.2, 5.0)
    assert (body["adv_sessions"], body["min_volume_sessions"]) == (20, 10)
    assert body["gross"] == "3505000.00"
    rows = by_symbol(body)
    assert [r["symbol"] for r in body["positions"]] == ["AAA", "BBB", CALL]  # by position id
    expected = {  # symbol: (shares, adv, volume sessions, days, flagged)
        "AAA": ("30000.0000", "100000.00", 20, 1.5, False),
        "BBB": ("80000.0000", "40000.00", 15, 10.0, True),
        CALL: ("600.0000", "1000.00", 12, 3.0, False),
    }
    for symbol, (shares, adv, sessions, days, flagged) in expected.items():
        row = rows[symbol]
        assert (row["shares"], row["adv"], row["volume_sessions"]) == (shares, adv, sessions)
        assert row["days_to_liquidate"] == pytest.approx(days, rel=1e-12)
        assert (row["flagged"], row["reason"]) == (flagged, None)
    assert rows[CALL]["underlying"] == "CCC" and rows[CALL]["is_option"] is True
    assert rows["BBB"]["exposure"] == "-2000000.00" and rows[CALL]["exposure"] == "5000.00"
    sold_1 = (1_500_000 / 1.5 + 2_000_000 / 10 + 5_000 / 3) / GROSS  # 0.342844
    sold_5 = (1_500_000 + 2_000_000 * 5 / 10 + 5_000) / GROSS  # 0.714693
    liquidatable = body["liquidatable"]
    assert liquidatable["1"] == pytest.approx(sold_1, rel=1e-12)
    assert liquidatable["5"] == pytest.approx(sold_5, rel=1e-12)
    assert liquidatable["10"] == pytest.approx(1.0, rel=1e-12)
    assert (round(sold_1, 6), round(sold_5, 6)) == (0.342844, 0.714693)
    assert body["unknown_share"] == 0.0 and body["flagged"] == 1
    assert body["data_quality"]["source"] == "csv"
    assert body["data_quality"]["missing_greeks"] == 0


def test_liquidity_participation_from_the_query_and_from_settings(auth_client, book, settings):
    rows = by_symbol(get(auth_client, "liquidity", book, participation="0.1"))
    assert [rows[s]["days_to_liquidate"] for s in ("AAA", "BBB", CALL)] == pytest.approx(
        [3.0, 20.0, 6.0], rel=1e-12
    )
    settings.SIGMASIGHT_LIQUIDITY_PARTICIPATION = 0.5
    settings.SIGMASIGHT_LIQUIDITY_FLAG_DAYS = 1.0
    body = get(auth_client, "liquidity", book)
    rows = by_symbol(body)
    assert body["participation"] == 0.5
    assert [rows[s]["days_to_liquidate"] for s in ("AAA", "BBB", CALL)] == pytest.approx(
        [0.6, 4.0, 1.2], rel=1e-12
    )
    assert [rows[s]["flagged"] for s in ("AAA", "BBB", CALL)] == [False, True, True]


def test_liquidity_of_an_empty_book(auth_client, market, user):
    empty = PortfolioFactory(owner=user, name="Empty")
    body = get(auth_client, "liquidity", empty)
    assert body["gross"] == "0.00" and body["positions"] == [] and body["flagged"] == 0
    assert body["liquidatable"] == {"1": None, "5": None, "10": None}
    assert body["unknown_share"] is None


def test_liquidity_of_a_book_of_options_only(auth_client, market, user):
    portfolio = PortfolioFactory(owner=user, name="Options")
    call(portfolio)
    greeks(option(portfolio, "CCC", EXP, "P", "40", "-5"), 200.0)  # short puts: long delta
    body = get(auth_client, "liquidity", portfolio)
    rows = by_symbol(body)
    # Each option through CCC's ADV of 1,000 at its |position delta|: 600 and 200 shares.
    assert rows[CALL]["days_to_liquidate"] == pytest.approx(600 / (0.2 * 1_000), rel=1e-12)
    assert rows[PUT]["days_to_liquidate"] == pytest.approx(200 / (0.2 * 1_000), rel=1e-12)
    assert rows[PUT]["shares"] == "200.0000" and rows[PUT]["exposure"] == "-1000.00"
    assert body["gross"] == "6000.00"  # 5,000 of calls + 1,000 of puts, at their premium
    assert body["liquidatable"]["1"] == pytest.approx((5_000 / 3 + 1_000) / 6_000, rel=1e-12)
    assert body["liquidatable"]["5"] == pytest.approx(1.0, rel=1e-12)


def test_liquidity_of_a_book_of_shorts_only(auth_client, market, user):
    portfolio = PortfolioFactory(owner=user, name="Shorts")
    stock(portfolio, "BBB", "-80000")
    stock(portfolio, "AAA", "-1000")
    body = get(auth_client, "liquidity", portfolio)
    rows = by_symbol(body)
    assert rows["BBB"]["days_to_liquidate"] == pytest.approx(10.0, rel=1e-12)
    assert rows["AAA"]["days_to_liquidate"] == pytest.approx(1_000 / 20_000, rel=1e-12)
    assert rows["AAA"]["shares"] == "1000.0000"  # absolute: buying back is as slow as selling
    assert body["gross"] == "2050000.00"
    liquidatable = body["liquidatable"]
    assert liquidatable["1"] == pytest.approx((200_000 + 50_000) / 2_050_000, rel=1e-12)
    assert liquidatable["5"] == pytest.approx((1_000_000 + 50_000) / 2_050_000, rel=1e-12)
    assert liquidatable["10"] == pytest.approx(1.0, rel=1e-12)


def test_liquidity_names_without_enough_volumes_or_greeks_are_unknown(auth_client, market, user):
    portfolio = PortfolioFactory(owner=user, name="Unknowns")
    stock(portfolio, "AAA", "1000")  # 50,000
    stock(portfolio, "DDD", "5000")  # 50,000; 9 volumes only
    stock(portfolio, "EEE", "100")  # no bar at all: unvalued, no volume
    call(portfolio, delta=None)  # 5,000; no stored Greeks
    body = get(auth_client, "liquidity", portfolio)
    rows = by_symbol(body)
    ddd = rows["DDD"]
    assert ddd["adv"] is None and ddd["volume_sessions"] == 9
    assert (ddd["days_to_liquidate"], ddd["flagged"]) == (None, False)
    assert ddd["reason"] == "insufficient_volume_history"
    assert rows["EEE"]["reason"] == "insufficient_volume_history"
    assert rows["EEE"]["exposure"] is None and rows["EEE"]["volume_sessions"] == 0
    assert rows[CALL]["reason"] == "missing_greeks" and rows[CALL]["shares"] is None
    assert body["gross"] == "105000.00"
    assert body["unknown_share"] == pytest.approx(55_000 / 105_000, rel=1e-12)
    # AAA sells in 1,000 / 20,000 sessions; the unknowns count as not sold.
    assert body["liquidatable"]["10"] == pytest.approx(50_000 / 105_000, rel=1e-12)
    assert body["data_quality"]["missing_greeks"] == 1


def test_liquidity_zero_volumes_are_no_traded_volume(auth_client, market, user):
    bars("ZZZ", "10", [0] * 20)
    portfolio = PortfolioFactory(owner=user, name="Untraded")
    stock(portfolio, "ZZZ", "10")
    row = get(auth_client, "liquidity", portfolio)["positions"][0]
    assert (row["adv"], row["days_to_liquidate"], row["reason"]) == (
        "0.00",
        None,
        "no_traded_volume",
    )


@pytest.mark.parametrize("value", ["0", "-0.1", "1.01", "abc", "", "nan", "inf"])
def test_liquidity_bad_participation_is_a_400_naming_it(auth_client, book, value):
    response = auth_client.get(f"{API}/liquidity/", {"portfolio": book.pk, "participation": value})
    error = assert_envelope(response, 400, "validation_error")
    assert list(error["fields"]) == ["participation"]


def test_liquidity_beyond_a_numbers_range_is_null_and_flagged(auth_client, book):
    # 30,000 / (1e-320 x 100,000) overflows a double: null with its reason, never Infinity.
    body = get(auth_client, "liquidity", book, participation="1e-320")
    row = by_symbol(body)["AAA"]
    assert (row["days_to_liquidate"], row["reason"], row["flagged"]) == (
        None,
        "beyond_range",
        True,
    )
    assert body["liquidatable"]["10"] == 0.0 and body["unknown_share"] == 0.0


def test_liquidity_participation_of_one_is_allowed(auth_client, book):
    body = get(auth_client, "liquidity", book, participation="1")
    assert by_symbol(body)["AAA"]["days_to_liquidate"] == pytest.approx(0.3, rel=1e-12)


# Concentration --------------------------------------------------------------------------------


def test_concentration_hand_worked_book(auth_client, book):
    body = get(auth_client, "concentration", book)
    assert body["as_of"] == AS_OF.isoformat() and body["gross"] == "3505000.00"
    assert body["names"] == [
        {"key": "BBB", "gross": "2000000.00", "share": pytest.approx(2 / 3.505, rel=1e-12)},
        {"key": "AAA", "gross": "1500000.00", "share": pytest.approx(1.5 / 3.505, rel=1e-12)},
        {"key": "CCC", "gross": "5000.00", "share": pytest.approx(0.005 / 3.505, rel=1e-12)},
    ]
    herfindahl = (1.5**2 + 2**2 + 0.005**2) / 3.505**2  # 6.250025 / 12.285025
    assert body["herfindahl"] == pytest.approx(herfindahl, rel=1e-12)
    assert round(herfindahl, 7) == 0.5087515
    assert body["effective_names"] == pytest.approx(1 / herfindahl, rel=1e-12)
    assert (body["top"], body["top_share"]) == (10, pytest.approx(1.0, rel=1e-12))
    assert body["top_shares"] == {"5": pytest.approx(1.0), "10": pytest.approx(1.0)}
    assert body["sectors"] == [
        {
            "key": "Energy",
            "gross": "2000000.00",
            "net": "-2000000.00",
            "long": "0.00",
            "short": "-2000000.00",
            "share": pytest.approx(2 / 3.505, rel=1e-12),
        },
        {
            "key": "Technology",
            "gross": "1505000.00",
            "net": "1505000.00",
            "long": "1505000.00",
            "short": "0.00",
            "share": pytest.approx(1.505 / 3.505, rel=1e-12),
        },
    ]
    assert [(g["key"], g["gross"]) for g in body["industries"]] == [
        ("Oil & Gas", "2000000.00"),
        ("Software", "1500000.00"),
        ("Semiconductors", "5000.00"),
    ]
    two = get(auth_client, "concentration", book, top=1)
    assert (two["top"], two["top_share"]) == (1, pytest.approx(2 / 3.505, rel=1e-12))


def test_concentration_gross_is_the_summarys(auth_client, book):
    summary = auth_client.get(f"/api/v1/portfolios/{book.pk}/summary/", {"as_of": AS_OF}).json()
    assert get(auth_client, "concentration", book)["gross"] == summary["exposures"]["gross"]


def test_concentration_of_an_empty_book(auth_client, market, user):
    body = get(auth_client, "concentration", PortfolioFactory(owner=user, name="Empty"))
    assert body["gross"] == "0.00" and body["names"] == body["sectors"] == []
    assert body["herfindahl"] is body["effective_names"] is body["top_share"] is None
    assert body["top_shares"] == {"5": None, "10": None}


def test_concentration_options_only_and_shorts_only(auth_client, market, user):
    options = PortfolioFactory(owner=user, name="Options")
    call(options)
    greeks(option(options, "CCC", EXP, "P", "40", "-5"), 200.0)
    body = get(auth_client, "concentration", options)
    assert body["names"] == [{"key": "CCC", "gross": "6000.00", "share": 1.0}]
    assert (body["herfindahl"], body["effective_names"]) == (1.0, 1.0)
    assert body["sectors"][0] | {"share": None} == {
        "key": "Technology",
        "gross": "6000.00",
        "net": "4000.00",
        "long": "5000.00",
        "short": "-1000.00",
        "share": None,
    }
    shorts = PortfolioFactory(owner=user, name="Shorts")
    stock(shorts, "BBB", "-80000")
    stock(shorts, "DDD", "-5000")  # no classification stored
    body = get(auth_client, "concentration", shorts)
    assert body["herfindahl"] == pytest.approx((2**2 + 0.05**2) / 2.05**2, rel=1e-12)
    assert [(g["key"], g["net"], g["long"]) for g in body["sectors"]] == [
        ("Energy", "-2000000.00", "0.00"),
        ("Unclassified", "-50000.00", "0.00"),
    ]
    assert [g["key"] for g in body["industries"]] == ["Oil & Gas", "Unclassified"]


@pytest.mark.parametrize("value", ["0", "101", "x", ""])
def test_concentration_bad_top_is_a_400_naming_it(auth_client, book, value):
    response = auth_client.get(f"{API}/concentration/", {"portfolio": book.pk, "top": value})
    assert list(assert_envelope(response, 400, "validation_error")["fields"]) == ["top"]


# Both -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["liquidity", "concentration"])
def test_another_users_portfolio_is_a_404(other_client, auth_client, book, path):
    # Cached for the owner first: the cache must not answer another user.
    get(auth_client, path, book)
    response = other_client.get(f"{API}/{path}/", {"portfolio": book.pk, "as_of": AS_OF})
    assert_envelope(response, 404, "not_found")


@pytest.mark.parametrize("path", ["liquidity", "concentration"])
def test_the_default_portfolio_is_the_users_first(auth_client, book, path):
    assert get(auth_client, path)["portfolio"] == book.pk


def _queries(client, path: str, portfolio: Portfolio) -> int:
    with CaptureQueriesContext(connection) as captured:
        get(client, path, portfolio)
    return len(captured.captured_queries)


# user, portfolio; the book (positions, closes of the session and the one before in one query,
# Greeks); the volumes (liquidity) or the classifications (concentration); data_quality's
# sources (the factor proxies, their closes, and a second read for the proxies and rates never
# stored here).
@pytest.mark.parametrize(("path", "count"), [("liquidity", 9), ("concentration", 9)])
def test_query_count_does_not_grow_with_the_book(
    auth_client, market, user, path, count, settings, django_assert_num_queries
):
    settings.SIGMASIGHT_API_CACHE_TTL_S = 0
    small = PortfolioFactory(owner=user, name="Small")
    stock(small, "AAA", "100")
    call(small)
    large = PortfolioFactory(owner=user, name="Large")
    for symbol in ("AAA", "BBB", "CCC", "DDD"):
        stock(large, symbol, "100")
        stock(large, symbol, "-50", entry_date=date(2024, 6, 3))  # a second lot
    call(large)
    greeks(option(large, "CCC", EXP, "P", "40", "-5"), 200.0)
    assert _queries(auth_client, path, small) == _queries(auth_client, path, large)
    with django_assert_num_queries(count):
        get(auth_client, path, large)


def test_schema_documents_the_query_and_every_field():
    openapi = SchemaGenerator().get_schema(public=True)
    operation = openapi["paths"]["/api/v1/risk/liquidity/"]["get"]
    participation = next(p for p in operation["parameters"] if p["name"] == "participation")
    assert participation["schema"] | {"description": ""} == {
        "type": "number",
        "format": "double",
        "minimum": 0,
        "exclusiveMinimum": True,
        "maximum": 1,
        "description": "",
    }
    schemas = openapi["components"]["schemas"]
    for name in (
        "Liquidity",
        "Liquidatable",
        "LiquidityPosition",
        "Concentration",
        "TopShares",
        "NameShare",
        "GroupExposure",
    ):
        for field, spec in schemas[name]["properties"].items():
            assert spec.get("description") or field == "data_quality", (name, field)
