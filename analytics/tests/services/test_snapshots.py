from __future__ import annotations

import math
from datetime import date, timedelta
from decimal import Decimal

import numpy as np
import pytest
from django.conf import settings
from django.test import override_settings

from analytics.calculations import risk
from analytics.calculations.greeks import realized_volatility
from analytics.models import FactorDefinition, PortfolioFactorExposure, PortfolioSnapshot
from analytics.services import greeks_compute, portfolio_summary
from analytics.snapshots import generate_historical_snapshots, snapshots_take
from marketdata.calculations import black_scholes as bs
from marketdata.calculations import options as option_engine
from marketdata.calendar import sessions_back, trading_days
from marketdata.models import DailyPrice
from marketdata.providers.synthetic import SyntheticProvider
from marketdata.services import dividend_yields_fetch_and_cache, prices_fetch_and_cache
from portfolios.tests.factories import PortfolioFactory, option, stock
from sigmasight.tests.helpers import assert_envelope

pytestmark = pytest.mark.django_db

API = "/api/v1"
AS_OF = date(2026, 11, 20)
EXP = date(2027, 1, 15)
FLOATS = ["daily_return"]
MONEY = [
    "equity",
    "market_value",
    "cash",
    "daily_pnl",
    "cumulative_pnl",
    "gross_exposure",
    "net_exposure",
    "long_exposure",
    "short_exposure",
    "delta_adjusted_exposure",
]
FIELDS = ["date", *MONEY, *FLOATS, "greeks", "factor_betas", "position_count", "data_quality"]


def load_prices(symbols: list[str], sessions: int = 160) -> None:
    prices_fetch_and_cache(
        symbols=sorted({*symbols, "US3M"}),
        start=sessions_back(AS_OF, sessions)[0],
        end=AS_OF,
        providers=[SyntheticProvider()],
    )


def close(symbol: str, day: date) -> float:
    return float(DailyPrice.objects.get(security__symbol=symbol, date=day).close)


def stored(portfolio) -> list[tuple]:
    return list(
        PortfolioSnapshot.objects.filter(portfolio=portfolio).order_by("date").values_list(*FIELDS)
    )


@pytest.fixture
def book(user):
    portfolio = PortfolioFactory(owner=user, cash=Decimal("50000.00"), name="Mixed")
    stock(portfolio, "AAPL", "300", entry_price="400")
    stock(portfolio, "MSFT", "-100", entry_price="500")
    call = option(portfolio, "AAPL", EXP, "C", "550", "-2", entry_price="20")
    put = option(portfolio, "AAPL", EXP, "P", "500", "3", entry_price="15")
    load_prices(["AAPL", "MSFT", call.symbol, put.symbol])
    return portfolio


@pytest.fixture
def call_only(user):
    portfolio = PortfolioFactory(owner=user, cash=Decimal("0.00"), name="Call")
    call = option(portfolio, "AAPL", EXP, "C", "500", "1", entry_price="40")
    load_prices(["AAPL"])
    return portfolio, call


def test_history_holds_exactly_the_sessions_of_the_range(book):
    assert generate_historical_snapshots(portfolio=book, days_back=90, end=AS_OF) == 90
    rows = PortfolioSnapshot.objects.filter(portfolio=book).order_by("date")
    expected = trading_days(sessions_back(AS_OF, 90)[0], AS_OF)
    assert [r.date for r in rows] == expected and len(expected) == 90
    running = Decimal("0.00")
    for row in rows:
        running += row.daily_pnl
        assert row.cumulative_pnl == running
        assert row.equity == row.cash + row.net_exposure == Decimal("50000.00") + row.net_exposure
        assert row.gross_exposure == row.long_exposure - row.short_exposure
        assert row.position_count == 4
        assert row.data_quality["valuation"] == "historical"
        assert row.data_quality["unvalued"] == 0 and row.data_quality["fallbacks"] == 0
    first, second = rows[0], rows[1]
    assert first.daily_return == pytest.approx(
        float(first.daily_pnl) / float(first.equity - first.daily_pnl), rel=1e-12
    )
    assert second.daily_return == pytest.approx(
        float(second.daily_pnl) / float(first.equity), rel=1e-12
    )


def test_history_ends_at_the_session_on_or_before_end(book):
    generate_historical_snapshots(portfolio=book, days_back=3, end=date(2026, 11, 22))
    assert list(
        PortfolioSnapshot.objects.filter(portfolio=book).values_list("date", flat=True)
    ) == [date(2026, 11, 18), date(2026, 11, 19), AS_OF]


def test_history_of_a_stock_book_matches_the_sessions_snapshot(user):
    portfolio = PortfolioFactory(owner=user, cash=Decimal("1000.00"))
    stock(portfolio, "AAPL", "10")
    stock(portfolio, "MSFT", "-20")
    load_prices(["AAPL", "MSFT"], sessions=80)
    generate_historical_snapshots(portfolio=portfolio, days_back=5, end=AS_OF)
    row = PortfolioSnapshot.objects.filter(portfolio=portfolio, date=AS_OF)
    history = row.values(*FIELDS).get()
    snapshots_take(as_of=AS_OF, portfolio_ids=[portfolio.pk])
    taken = row.values(*FIELDS).get()
    assert taken["data_quality"]["valuation"] == "stored"
    assert taken["greeks"] == pytest.approx(history["greeks"], rel=1e-12)
    same = [f for f in FIELDS if f not in ("greeks", "data_quality")]
    assert {f: taken[f] for f in same} == {f: history[f] for f in same}
    expected = 10 * close("AAPL", AS_OF) - 20 * close("MSFT", AS_OF)
    assert float(taken["net_exposure"]) == pytest.approx(expected, abs=0.005)


def test_options_are_revalued_at_the_underlyings_close(call_only):
    portfolio, call = call_only
    # No option closes at all: the history must not need them.
    DailyPrice.objects.filter(security__symbol=call.symbol).delete()
    generate_historical_snapshots(portfolio=portfolio, days_back=30, end=AS_OF)
    rows = list(PortfolioSnapshot.objects.filter(portfolio=portfolio).order_by("date"))
    assert len(rows) == 30
    window = settings.SIGMASIGHT_REALIZED_VOL_WINDOW
    spots = []
    for row in rows:
        spot = close("AAPL", row.date)
        spots.append(spot)
        history = [close("AAPL", d) for d in sessions_back(row.date, window + 1)]
        vol = float(realized_volatility(np.array(history)[:, None], window)[0])
        rate = close("US3M", row.date)
        years = (EXP - row.date).days / 365
        expected = bs.greeks(spot, 500, years, rate, vol, True)
        assert float(row.net_exposure) == pytest.approx(float(expected.price) * 100, abs=0.006)
        assert row.greeks["delta"] == pytest.approx(float(expected.delta) * 100, rel=1e-7)
        assert row.greeks["vega"] == pytest.approx(float(expected.vega) * 100, rel=1e-7)
        assert row.greeks["dollar_delta"] == pytest.approx(row.greeks["delta"] * spot, rel=1e-12)
        assert row.data_quality["fallbacks"] == 0
    values = [float(r.net_exposure) for r in rows]
    assert len(set(values)) == len(values)
    assert np.corrcoef(values, spots)[0, 1] > 0.9
    pnl = [float(r.daily_pnl) for r in rows[1:]]
    assert pnl == pytest.approx(np.diff(values).tolist(), abs=0.011)


def test_options_in_history_are_priced_by_their_style_with_the_yield(user):
    """An American AAPL put in the money, AAPL paying a stored yield: each session's value and
    Greeks are Bjerksund-Stensland 2002's with that yield (the facade's), not Black-Scholes'."""
    portfolio = PortfolioFactory(owner=user, cash=Decimal("0.00"), name="Put")
    option(portfolio, "AAPL", EXP, "P", "650", "1", entry_price="40")
    load_prices(["AAPL"])
    dividend_yields_fetch_and_cache(symbols=["AAPL"], as_of=AS_OF, providers=[SyntheticProvider()])
    q = SyntheticProvider().dividend_yields(["AAPL"], AS_OF)["AAPL"]
    generate_historical_snapshots(portfolio=portfolio, days_back=10, end=AS_OF)
    window = settings.SIGMASIGHT_REALIZED_VOL_WINDOW
    for row in PortfolioSnapshot.objects.filter(portfolio=portfolio):
        history = [close("AAPL", d) for d in sessions_back(row.date, window + 1)]
        vol = float(realized_volatility(np.array(history)[:, None], window)[0])
        market = (
            close("AAPL", row.date),
            650,
            (EXP - row.date).days / 365,
            close("US3M", row.date),
        )
        expected = option_engine.greeks(*market, vol, False, q, True)
        assert float(row.net_exposure) == pytest.approx(float(expected.price) * 100, abs=0.006)
        assert row.greeks["delta"] == pytest.approx(float(expected.delta) * 100, rel=1e-9)
        european = bs.price(*market, vol, False, q)
        assert float(expected.price) > float(european)  # the early exercise premium counts


def test_missing_prices_never_put_nan_in_the_database(book):
    sessions = sessions_back(AS_OF, 30)
    gap = sessions[10:13]
    DailyPrice.objects.filter(security__symbol="AAPL", date__in=gap).delete()
    DailyPrice.objects.filter(security__symbol="MSFT", date__lte=sessions[4]).delete()
    DailyPrice.objects.filter(security__symbol="US3M").delete()
    generate_historical_snapshots(portfolio=book, days_back=30, end=AS_OF)
    rows = list(PortfolioSnapshot.objects.filter(portfolio=book).order_by("date"))
    for row in rows:
        assert math.isfinite(row.daily_return)
        for name in MONEY:
            assert getattr(row, name).is_finite()
        assert all(math.isfinite(v) for v in row.greeks.values())
    # MSFT's history starts on the sixth session of the range: nothing to carry forward.
    assert [r.data_quality["unvalued"] for r in rows[:7]] == [1, 1, 1, 1, 1, 0, 0]
    assert [r.data_quality["stale"] for r in rows[10:13]] == [True, True, True]
    assert not rows[13].data_quality["stale"]
    # The gap's closes are carried forward: no P&L on AAPL stock while it lasts.
    snapshots_take(as_of=gap[0], portfolio_ids=[book.pk])
    taken = PortfolioSnapshot.objects.get(portfolio=book, date=gap[0])
    assert math.isfinite(taken.daily_return) and taken.data_quality["stale"]


def test_snapshots_take_matches_the_summary_and_chains(book):
    previous, as_of = sessions_back(AS_OF, 2)
    for day in (previous, as_of):
        greeks_compute(as_of=day, portfolio_ids=[book.pk])
        assert snapshots_take(as_of=day, portfolio_ids=[book.pk]) == 1
    first, second = PortfolioSnapshot.objects.filter(portfolio=book).order_by("date")
    summary = portfolio_summary(portfolio=book, as_of=as_of)
    # Gross and net come from the rounded legs here, so they may differ from the summary's by
    # a cent; equity = cash + net holds exactly.
    assert second.equity == second.cash + second.net_exposure
    assert abs(second.equity - summary["equity"]) <= Decimal("0.01")
    assert abs(second.gross_exposure - summary["exposures"]["gross"]) <= Decimal("0.01")
    assert second.long_exposure == summary["exposures"]["long"]
    assert second.short_exposure == summary["exposures"]["short"]
    assert second.daily_pnl == summary["daily_pnl"]
    assert second.market_value == summary["market_value"]
    assert second.delta_adjusted_exposure == summary["delta_adjusted_exposure"]
    assert second.greeks == pytest.approx(summary["greeks"], rel=1e-12)
    assert second.data_quality["missing_greeks"] == 0 and second.data_quality["stale"] is False
    assert second.position_count == 4
    assert first.daily_return == pytest.approx(
        float(first.daily_pnl) / float(first.equity - first.daily_pnl), rel=1e-12
    )
    assert second.daily_return == pytest.approx(
        float(second.daily_pnl) / float(first.equity), rel=1e-12
    )
    assert second.cumulative_pnl == first.cumulative_pnl + second.daily_pnl


def test_snapshots_carry_the_sessions_factor_betas(book):
    factors = {f.name: f for f in FactorDefinition.objects.filter(name__in=["Market", "Value"])}
    for name, beta in (("Value", -0.2), ("Market", 1.1)):
        PortfolioFactorExposure.objects.create(
            portfolio=book, factor=factors[name], date=AS_OF, beta=beta, dollar_exposure=0.0
        )
    generate_historical_snapshots(portfolio=book, days_back=2, end=AS_OF)
    first, last = PortfolioSnapshot.objects.filter(portfolio=book).order_by("date")
    assert first.factor_betas == {}
    assert last.factor_betas == {"Market": 1.1, "Value": -0.2}
    snapshots_take(as_of=AS_OF, portfolio_ids=[book.pk])
    last.refresh_from_db()
    assert last.factor_betas == {"Market": 1.1, "Value": -0.2}


def test_snapshots_take_skips_days_without_a_session(book):
    assert snapshots_take(as_of=date(2026, 11, 21), portfolio_ids=[book.pk]) == 0
    assert snapshots_take(as_of=date(2026, 11, 26), portfolio_ids=[book.pk]) == 0  # Thanksgiving
    assert not PortfolioSnapshot.objects.exists()


def test_reruns_leave_the_same_rows(book, django_assert_max_num_queries):
    generate_historical_snapshots(portfolio=book, days_back=20, end=AS_OF)
    history = stored(book)
    generate_historical_snapshots(portfolio=book, days_back=20, end=AS_OF)
    assert stored(book) == history
    greeks_compute(as_of=AS_OF, portfolio_ids=[book.pk])
    snapshots_take(as_of=AS_OF, portfolio_ids=[book.pk])
    taken = stored(book)
    # A fixed number whatever the book's size; 3 of them read data_quality's sources (the
    # factor definitions and the latest closes of the proxies, rates and the book's series).
    with django_assert_max_num_queries(15):
        snapshots_take(as_of=AS_OF, portfolio_ids=[book.pk])
    assert stored(book) == taken and len(taken) == 20


def test_retention_removes_rows_older_than_the_setting(book, user):
    other = PortfolioFactory(owner=user, cash=Decimal("10.00"))
    generate_historical_snapshots(portfolio=book, days_back=60, end=AS_OF)
    generate_historical_snapshots(portfolio=other, days_back=60, end=AS_OF)
    cutoff = AS_OF - timedelta(days=30)
    with override_settings(SIGMASIGHT_SNAPSHOT_RETENTION_DAYS=30):
        snapshots_take(as_of=AS_OF, portfolio_ids=[book.pk])
    kept = list(PortfolioSnapshot.objects.filter(portfolio=book).values_list("date", flat=True))
    assert kept == trading_days(cutoff, AS_OF)
    # Only the portfolios the run was for are trimmed.
    assert PortfolioSnapshot.objects.filter(portfolio=other).count() == 60


@pytest.fixture
def history(book):
    generate_historical_snapshots(portfolio=book, days_back=20, end=AS_OF)
    return book


def test_exposures_endpoint_lists_the_snapshots_in_order(
    auth_client, history, django_assert_num_queries
):
    with django_assert_num_queries(3):
        body = auth_client.get(f"{API}/portfolios/{history.pk}/exposures/").json()
    rows = list(PortfolioSnapshot.objects.filter(portfolio=history).order_by("date"))
    assert [r["date"] for r in body] == [r.date.isoformat() for r in rows]
    assert set(body[0]) == {"date", "gross", "net", "long", "short", "delta_adjusted"}
    assert body[-1] == {
        "date": rows[-1].date.isoformat(),
        "gross": str(rows[-1].gross_exposure),
        "net": str(rows[-1].net_exposure),
        "long": str(rows[-1].long_exposure),
        "short": str(rows[-1].short_exposure),
        "delta_adjusted": str(rows[-1].delta_adjusted_exposure),
    }
    start, end = rows[5].date, rows[9].date
    body = auth_client.get(
        f"{API}/portfolios/{history.pk}/exposures/",
        {"start": start.isoformat(), "end": end.isoformat()},
    ).json()
    assert [r["date"] for r in body] == [d.isoformat() for d in trading_days(start, end)]
    body = auth_client.get(
        f"{API}/portfolios/{history.pk}/exposures/", {"start": end.isoformat()}
    ).json()
    assert body[0]["date"] == end.isoformat() and body[-1]["date"] == AS_OF.isoformat()


def test_performance_endpoint_compounds_returns_and_reports_statistics(
    auth_client, history, django_assert_num_queries
):
    with django_assert_num_queries(4):
        body = auth_client.get(f"{API}/portfolios/{history.pk}/performance/").json()
    rows = list(PortfolioSnapshot.objects.filter(portfolio=history).order_by("date"))
    returns = np.array([r.daily_return for r in rows])
    wealth = np.cumprod(1 + returns)
    assert set(body) == {
        "series",
        "total_return",
        "annualized_return",
        "volatility",
        "sharpe",
        "sortino",
        "max_drawdown",
    }
    assert [p["date"] for p in body["series"]] == [r.date.isoformat() for r in rows]
    point = body["series"][3]
    assert point == {
        "date": rows[3].date.isoformat(),
        "equity": str(rows[3].equity),
        "daily_pnl": str(rows[3].daily_pnl),
        "daily_return": pytest.approx(rows[3].daily_return, rel=1e-15),
        "cumulative_return": pytest.approx(wealth[3] - 1, rel=1e-12),
    }
    rate = close("US3M", AS_OF) / 252
    assert body["total_return"] == pytest.approx(wealth[-1] - 1, rel=1e-12)
    assert body["annualized_return"] == pytest.approx(wealth[-1] ** (252 / 20) - 1, rel=1e-12)
    assert body["volatility"] == pytest.approx(np.std(returns, ddof=1) * math.sqrt(252))
    assert body["sharpe"] == pytest.approx(risk.sharpe(returns, rate), rel=1e-12)
    assert body["sortino"] == pytest.approx(risk.sortino(returns, rate), rel=1e-12)
    assert body["max_drawdown"] == pytest.approx(risk.max_drawdown(returns), rel=1e-12)


def test_performance_statistics_are_null_with_too_few_points(auth_client, history):
    url = f"{API}/portfolios/{history.pk}/performance/"
    one = auth_client.get(url, {"start": AS_OF.isoformat(), "end": AS_OF.isoformat()}).json()
    assert len(one["series"]) == 1
    assert one["total_return"] == pytest.approx(one["series"][0]["daily_return"])
    assert one["annualized_return"] is None and one["volatility"] is None
    assert one["sharpe"] is None and one["sortino"] is None
    assert one["max_drawdown"] == pytest.approx(min(one["total_return"], 0.0))
    none = auth_client.get(url, {"end": "2026-01-02"}).json()
    assert none == {
        "series": [],
        "total_return": None,
        "annualized_return": None,
        "volatility": None,
        "sharpe": None,
        "sortino": None,
        "max_drawdown": None,
    }


def test_performance_statistics_are_null_not_nan_without_dispersion(auth_client, user):
    portfolio = PortfolioFactory(owner=user, cash=Decimal("100.00"))
    generate_historical_snapshots(portfolio=portfolio, days_back=5, end=AS_OF)
    body = auth_client.get(f"{API}/portfolios/{portfolio.pk}/performance/").json()
    assert [p["daily_return"] for p in body["series"]] == [0.0] * 5
    assert body["volatility"] == 0.0 and body["max_drawdown"] == 0.0
    # Every excess return equals minus the risk-free rate: no dispersion, so no Sharpe ratio.
    assert body["sharpe"] is None
    assert body["sortino"] == pytest.approx(-math.sqrt(252))


@pytest.mark.parametrize("endpoint", ["exposures", "performance"])
def test_another_users_portfolio_is_a_404(other_client, history, endpoint):
    assert_envelope(
        other_client.get(f"{API}/portfolios/{history.pk}/{endpoint}/"), 404, "not_found"
    )


@pytest.mark.parametrize("endpoint", ["exposures", "performance"])
@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"start": "2026-13-01"}, "start"),
        ({"end": "yesterday"}, "end"),
        ({"start": "2026-11-20", "end": "2026-11-19"}, "start"),
    ],
)
def test_bad_dates_are_a_400(auth_client, history, endpoint, params, field):
    error = assert_envelope(
        auth_client.get(f"{API}/portfolios/{history.pk}/{endpoint}/", params),
        400,
        "validation_error",
    )
    assert field in error["fields"]
