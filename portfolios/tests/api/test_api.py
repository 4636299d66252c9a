from __future__ import annotations

from datetime import date

import pytest
from django.test import override_settings

from portfolios.models import Portfolio, Position, PositionTag, Strategy, Tag
from portfolios.services import strategies_refresh
from portfolios.tests.factories import PortfolioFactory, TagFactory, option, stock
from sigmasight.tests.helpers import assert_envelope

pytestmark = pytest.mark.django_db

API = "/api/v1"
EXP = date(2027, 1, 15)


@pytest.fixture
def book(user):
    portfolio = PortfolioFactory(owner=user, name="Core")
    growth = TagFactory(owner=user, name="growth")
    hedge = TagFactory(owner=user, name="hedge")
    aapl = stock(portfolio, "AAPL", "300")
    call = option(portfolio, "AAPL", EXP, "C", "250", "-2")
    msft = stock(portfolio, "MSFT", "100")
    spy_put = option(portfolio, "SPY", EXP, "P", "400", "5")
    short = stock(portfolio, "TSLA", "-50")
    PositionTag.objects.bulk_create(
        [
            PositionTag(position=aapl, tag=growth),
            PositionTag(position=msft, tag=growth),
            PositionTag(position=msft, tag=hedge),
            PositionTag(position=spy_put, tag=hedge),
        ]
    )
    strategies_refresh(portfolio=portfolio)
    return {
        "portfolio": portfolio,
        "aapl": aapl,
        "call": call,
        "msft": msft,
        "spy_put": spy_put,
        "short": short,
        "growth": growth,
        "hedge": hedge,
    }


# Portfolios --------------------------------------------------------------------------------


def test_portfolio_crud(auth_client, user):
    created = auth_client.post(
        f"{API}/portfolios/", {"name": "New", "cash": "2500.50", "base_currency": "EUR"}
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert set(body) == {"id", "name", "description", "base_currency", "cash", "created_at"}
    assert body["cash"] == "2500.50"
    assert Portfolio.objects.get(pk=body["id"]).owner == user
    assert (
        auth_client.patch(f"{API}/portfolios/{body['id']}/", {"description": "d"}).json()[
            "description"
        ]
        == "d"
    )
    listed = auth_client.get(f"{API}/portfolios/").json()
    assert [p["id"] for p in listed["results"]] == [body["id"]]
    assert auth_client.delete(f"{API}/portfolios/{body['id']}/").status_code == 204
    assert not Portfolio.objects.filter(pk=body["id"]).exists()


def test_portfolio_validation(auth_client, user):
    PortfolioFactory(owner=user, name="Taken")
    error = assert_envelope(
        auth_client.post(f"{API}/portfolios/", {"name": "Taken"}), 400, "validation_error"
    )
    assert "name" in error["fields"]
    error = assert_envelope(
        auth_client.post(f"{API}/portfolios/", {"name": "X", "base_currency": "usd"}), 400
    )
    assert "base_currency" in error["fields"]
    error = assert_envelope(
        auth_client.post(f"{API}/portfolios/", {"name": "Y", "cash": "abc"}), 400
    )
    assert "cash" in error["fields"]


def test_portfolio_owner_cannot_be_assigned(auth_client, user, other_user):
    body = auth_client.post(f"{API}/portfolios/", {"name": "Mine", "owner": other_user.pk}).json()
    assert Portfolio.objects.get(pk=body["id"]).owner == user


def test_portfolio_list_query_count_is_fixed(auth_client, user, django_assert_max_num_queries):
    PortfolioFactory.create_batch(30, owner=user)
    with django_assert_max_num_queries(3):
        assert auth_client.get(f"{API}/portfolios/").json()["count"] == 30


# Positions ---------------------------------------------------------------------------------


def test_positions_list_fields(auth_client, book):
    body = auth_client.get(f"{API}/positions/", {"portfolio": book["portfolio"].pk}).json()
    assert body["count"] == 5
    first = body["results"][0]
    assert set(first) >= {
        "id",
        "portfolio",
        "symbol",
        "underlying_symbol",
        "position_type",
        "quantity",
        "entry_price",
        "entry_date",
        "strike",
        "expiration",
        "option_type",
        "multiplier",
        "last_price",
        "market_value",
        "exposure",
        "unrealized_pnl",
        "daily_pnl",
        "tags",
        "greeks",
    }
    assert first["quantity"] == "300.000000"
    assert first["tags"] == [{"id": book["growth"].pk, "name": "growth", "color": "#4A90D9"}]


def test_positions_list_query_count_does_not_grow(auth_client, book, django_assert_max_num_queries):
    with django_assert_max_num_queries(5):  # user, count, page, tags, latest Greeks
        auth_client.get(f"{API}/positions/")
    for n in range(40):
        stock(book["portfolio"], f"S{n:02d}", "10")
    with django_assert_max_num_queries(5):
        assert auth_client.get(f"{API}/positions/", {"page_size": 100}).json()["count"] == 45


@pytest.mark.parametrize(
    ("query", "symbols"),
    [
        ({"symbol": "aapl"}, {"AAPL"}),
        ({"underlying": "AAPL"}, {"AAPL", "AAPL270115C00250000"}),
        ({"position_type": "SC"}, {"AAPL270115C00250000"}),
        ({"position_type": ["LONG", "SHORT"]}, {"AAPL", "MSFT", "TSLA"}),
        ({"tag": "growth"}, {"AAPL", "MSFT"}),
        ({"tag": ["growth", "hedge"]}, {"AAPL", "MSFT", "SPY270115P00400000"}),
        ({"tag": ["growth", "hedge"], "tag_mode": "all"}, {"MSFT"}),
        ({"tag": "growth,hedge", "tag_mode": "all"}, {"MSFT"}),
        ({"expiring_before": "2027-06-01"}, {"AAPL270115C00250000", "SPY270115P00400000"}),
        ({"search": "spy"}, {"SPY270115P00400000"}),
    ],
)
def test_positions_filters(auth_client, book, query, symbols):
    rows = auth_client.get(f"{API}/positions/", query).json()["results"]
    assert {r["symbol"] for r in rows} == symbols


def test_positions_tag_filter_by_id(auth_client, book):
    rows = auth_client.get(f"{API}/positions/", {"tag": book["hedge"].pk}).json()["results"]
    assert {r["symbol"] for r in rows} == {"MSFT", "SPY270115P00400000"}


def test_positions_ordering(auth_client, book):
    rows = auth_client.get(f"{API}/positions/", {"ordering": "-quantity"}).json()["results"]
    quantities = [float(r["quantity"]) for r in rows]
    assert quantities == sorted(quantities, reverse=True)
    assert_envelope(auth_client.get(f"{API}/positions/", {"tag_mode": "some"}), 400)


def test_position_create_stock_and_option(auth_client, book):
    portfolio = book["portfolio"].pk
    body = {
        "portfolio": portfolio,
        "symbol": "nvda",
        "quantity": "-10",
        "entry_price": "400.25",
        "entry_date": "2024-03-01",
        "tag_ids": [book["growth"].pk],
    }
    created = auth_client.post(f"{API}/positions/", body)
    assert created.status_code == 201, created.content
    nvda = created.json()
    assert (nvda["symbol"], nvda["position_type"], nvda["multiplier"]) == ("NVDA", "SHORT", 1)
    assert [t["name"] for t in nvda["tags"]] == ["growth"]
    by_columns = auth_client.post(
        f"{API}/positions/",
        {
            "portfolio": portfolio,
            "symbol": "NVDA",
            "quantity": 3,
            "entry_price": 12,
            "entry_date": "2024-03-01",
            "option_type": "P",
            "strike": "380",
            "expiration": "2027-01-15",
        },
    ).json()
    assert (by_columns["symbol"], by_columns["position_type"], by_columns["multiplier"]) == (
        "NVDA270115P00380000",
        "LP",
        100,
    )


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"quantity": "0"}, "quantity"),
        ({"quantity": "NaN"}, "quantity"),
        ({"entry_price": "-1"}, "entry_price"),
        ({"entry_date": "2999-01-01"}, "entry_date"),
        ({"symbol": "AAPL250230C00100000"}, "symbol"),
        ({"symbol": "AAPL", "strike": "100"}, "option_type"),
    ],
)
def test_position_create_validation_matches_csv_rules(auth_client, book, change, field):
    before = Position.objects.count()
    body = {
        "portfolio": book["portfolio"].pk,
        "symbol": "KO",
        "quantity": "10",
        "entry_price": "60",
        "entry_date": "2024-03-01",
        **change,
    }
    error = assert_envelope(auth_client.post(f"{API}/positions/", body), 400, "validation_error")
    assert field in error["fields"]
    assert Position.objects.count() == before


def test_position_create_duplicate_lot_is_409(auth_client, book):
    body = {
        "portfolio": book["portfolio"].pk,
        "symbol": "AAPL",
        "quantity": "1",
        "entry_price": "1",
        "entry_date": "2024-01-02",
    }
    assert_envelope(auth_client.post(f"{API}/positions/", body), 409, "duplicate_lot")


def test_position_update_and_delete_refresh_strategies(auth_client, book):
    aapl = book["aapl"]
    assert Strategy.objects.filter(kind="covered_call").exists()
    changed = auth_client.patch(f"{API}/positions/{aapl.pk}/", {"quantity": "150"})
    assert changed.status_code == 200, changed.content
    assert changed.json()["quantity"] == "150.000000"
    assert not Strategy.objects.filter(
        kind="covered_call"
    ).exists()  # 150 shares cannot cover 2 calls
    flipped = auth_client.patch(f"{API}/positions/{aapl.pk}/", {"quantity": "-10"}).json()
    assert flipped["position_type"] == "SHORT"
    error = assert_envelope(
        auth_client.patch(f"{API}/positions/{aapl.pk}/", {"symbol": "MSFT"}), 400
    )
    assert "symbol" in error["fields"]
    assert auth_client.delete(f"{API}/positions/{book['call'].pk}/").status_code == 204
    assert not Position.objects.filter(pk=book["call"].pk).exists()


def test_put_position_tags_replaces_them(auth_client, book):
    url = f"{API}/positions/{book['aapl'].pk}/tags/"
    body = auth_client.put(url, {"tag_ids": [book["hedge"].pk]}).json()
    assert [t["name"] for t in body["tags"]] == ["hedge"]
    assert auth_client.put(url, {"tag_ids": []}).json()["tags"] == []


def test_grouped_by_each_dimension(auth_client, book):
    def groups(by: str) -> dict[str, set[str]]:
        response = auth_client.get(
            f"{API}/positions/grouped/", {"portfolio": book["portfolio"].pk, "by": by}
        )
        assert response.status_code == 200, response.content
        return {g["key"]: {p["symbol"] for p in g["positions"]} for g in response.json()}

    assert groups("type")["LONG"] == {"AAPL", "MSFT"}
    assert groups("underlying")["AAPL"] == {"AAPL", "AAPL270115C00250000"}
    by_tag = groups("tag")
    assert by_tag["growth"] == {"AAPL", "MSFT"} and by_tag["untagged"] == {
        "AAPL270115C00250000",
        "TSLA",
    }
    by_strategy = groups("strategy")
    assert {"AAPL", "AAPL270115C00250000"} in by_strategy.values()
    assert "Unclassified" in groups("sector")
    assert_envelope(auth_client.get(f"{API}/positions/grouped/", {"by": "colour"}), 400)


def test_grouped_totals_from_stored_valuations(auth_client, book):
    Position.objects.filter(pk=book["aapl"].pk).update(market_value="60000.00", exposure="60000.00")
    Position.objects.filter(pk=book["short"].pk).update(
        market_value="10000.00", exposure="-10000.00", last_price="200"
    )
    rows = auth_client.get(f"{API}/positions/grouped/", {"by": "type"}).json()
    totals = {g["key"]: g["totals"] for g in rows}
    assert totals["LONG"]["market_value"] == "60000.00"
    assert totals["SHORT"]["exposure"] == "-10000.00"
    assert totals["SHORT"]["delta_adjusted_exposure"] == "-10000.00"
    assert totals["SC"]["market_value"] is None  # not valued yet


# Tags --------------------------------------------------------------------------------------


def test_tag_crud_and_counts(auth_client, book):
    listed = {t["name"]: t for t in auth_client.get(f"{API}/tags/").json()["results"]}
    assert listed["growth"]["position_count"] == 2
    created = auth_client.post(f"{API}/tags/", {"name": "Income", "color": "#112233"})
    assert created.status_code == 201, created.content
    tag_id = created.json()["id"]
    assert (
        auth_client.patch(f"{API}/tags/{tag_id}/", {"description": "yield"}).json()["description"]
        == "yield"
    )
    assert auth_client.delete(f"{API}/tags/{tag_id}/").status_code == 204


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "GROWTH"}, "name"),
        ({"name": ""}, "name"),
        ({"name": "x" * 51}, "name"),
        ({"name": "ok", "color": "red"}, "color"),
    ],
)
def test_tag_validation(auth_client, book, body, field):
    error = assert_envelope(auth_client.post(f"{API}/tags/", body), 400)
    assert field in error["fields"]


@override_settings(SIGMASIGHT_MAX_TAGS_PER_USER=2)
def test_tag_limit_per_user(auth_client, book):
    error = assert_envelope(auth_client.post(f"{API}/tags/", {"name": "third"}), 400)
    assert "At most 2 tags" in error["fields"]["name"][0]


@override_settings(SIGMASIGHT_MAX_TAGS_PER_POSITION=1)
def test_tag_limit_per_position(auth_client, book):
    url = f"{API}/positions/{book['aapl'].pk}/tags/"
    assert_envelope(auth_client.put(url, {"tag_ids": [book["growth"].pk, book["hedge"].pk]}), 400)


# Strategies --------------------------------------------------------------------------------


def test_strategies_detected_and_user_defined(auth_client, book):
    rows = auth_client.get(f"{API}/strategies/", {"portfolio": book["portfolio"].pk}).json()[
        "results"
    ]
    kinds = {r["kind"] for r in rows}
    assert {"covered_call", "single"} <= kinds
    covered = next(r for r in rows if r["kind"] == "covered_call")
    assert set(covered["positions"]) == {book["aapl"].pk, book["call"].pk}
    assert set(covered["totals"]) == {
        "market_value",
        "exposure",
        "delta_adjusted_exposure",
        "greeks",
    }
    pairs = auth_client.post(
        f"{API}/strategies/",
        {
            "portfolio": book["portfolio"].pk,
            "name": "MSFT/TSLA",
            "kind": "pairs",
            "position_ids": [book["msft"].pk, book["short"].pk],
        },
    )
    assert pairs.status_code == 201, pairs.content
    assert pairs.json()["is_detected"] is False
    assert auth_client.delete(f"{API}/strategies/{pairs.json()['id']}/").status_code == 204
    assert_envelope(
        auth_client.delete(f"{API}/strategies/{covered['id']}/"), 400, "strategy_detected"
    )


def test_pairs_need_one_long_and_one_short(auth_client, book):
    body = {
        "portfolio": book["portfolio"].pk,
        "name": "x",
        "kind": "pairs",
        "position_ids": [book["aapl"].pk, book["msft"].pk],
    }
    assert_envelope(auth_client.post(f"{API}/strategies/", body), 400)


def test_strategies_list_query_count(auth_client, book, django_assert_max_num_queries):
    with django_assert_max_num_queries(4):
        auth_client.get(f"{API}/strategies/")


# The second user ---------------------------------------------------------------------------


def test_second_user_sees_none_of_the_first_users_book(other_client, book):
    p = book["portfolio"].pk
    for url in [
        f"{API}/portfolios/{p}/",
        f"{API}/portfolios/{p}/export/",
        f"{API}/positions/{book['aapl'].pk}/",
        f"{API}/tags/{book['growth'].pk}/",
        f"{API}/strategies/{Strategy.objects.filter(portfolio_id=p).earliest('pk').pk}/",
    ]:
        assert_envelope(other_client.get(url), 404, "not_found")
    for url in [
        f"{API}/portfolios/{p}/",
        f"{API}/positions/{book['aapl'].pk}/",
        f"{API}/tags/{book['growth'].pk}/",
    ]:
        assert_envelope(other_client.patch(url, {"name": "x", "quantity": "1"}), 404)
        assert_envelope(other_client.delete(url), 404)
    assert_envelope(
        other_client.put(f"{API}/positions/{book['aapl'].pk}/tags/", {"tag_ids": []}), 404
    )
    for url in ["portfolios", "positions", "tags", "strategies"]:
        assert other_client.get(f"{API}/{url}/").json()["count"] == 0
    assert other_client.get(f"{API}/positions/grouped/", {"by": "type"}).json() == []
    assert other_client.get(f"{API}/positions/", {"portfolio": p}).json()["count"] == 0
    assert Position.objects.filter(portfolio_id=p).count() == 5


def test_second_user_cannot_write_into_first_users_portfolio(other_client, other_user, book):
    p = book["portfolio"].pk
    body = {
        "portfolio": p,
        "symbol": "KO",
        "quantity": "1",
        "entry_price": "1",
        "entry_date": "2024-01-02",
    }
    error = assert_envelope(other_client.post(f"{API}/positions/", body), 400)
    assert "portfolio" in error["fields"]
    strategy = {"portfolio": p, "name": "x", "kind": "custom", "position_ids": [book["aapl"].pk]}
    assert (
        "portfolio"
        in assert_envelope(other_client.post(f"{API}/strategies/", strategy), 400)["fields"]
    )
    assert Position.objects.filter(portfolio_id=p).count() == 5


def test_cannot_attach_another_users_tag(other_client, other_user, book):
    theirs = PortfolioFactory(owner=other_user)
    position = stock(theirs, "KO", "10")
    error = assert_envelope(
        other_client.put(f"{API}/positions/{position.pk}/tags/", {"tag_ids": [book["growth"].pk]}),
        400,
    )
    assert error["fields"]["tag_ids"] == [f"No tag with id {book['growth'].pk}."]
    create = {
        "portfolio": theirs.pk,
        "symbol": "PEP",
        "quantity": "1",
        "entry_price": "1",
        "entry_date": "2024-01-02",
        "tag_ids": [book["hedge"].pk],
    }
    assert_envelope(other_client.post(f"{API}/positions/", create), 400)
    assert not Position.objects.filter(symbol="PEP").exists()
    strategy = {
        "portfolio": theirs.pk,
        "name": "x",
        "kind": "custom",
        "position_ids": [book["aapl"].pk],
    }
    assert (
        "position_ids"
        in assert_envelope(other_client.post(f"{API}/strategies/", strategy), 400)["fields"]
    )
    assert Tag.objects.get(pk=book["growth"].pk).positions.count() == 2
