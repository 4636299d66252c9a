"""The attribution job and the history rebuild (analytics.attribution): a hand-worked book, the
batch's books (mixed, options only, shorts only, a position new today, an empty book), re-runs,
and the rebuilt history against the rebuilt snapshots."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from django.utils import timezone

from analytics import batch
from analytics.attribution import attribution_compute, generate_historical_attribution
from analytics.calculations.attribution import GREEK_PARTS
from analytics.models import (
    FactorDefinition,
    PortfolioAttribution,
    PortfolioSnapshot,
    PositionAttribution,
    PositionFactorExposure,
    PositionGreeks,
)
from analytics.selectors import book_frame
from analytics.services import greeks_compute
from analytics.snapshots import generate_historical_snapshots
from analytics.tests.helpers import SERIES
from marketdata.calendar import previous_trading_day, sessions_back
from marketdata.models import DailyPrice
from marketdata.providers.synthetic import SyntheticProvider
from marketdata.services import prices_fetch_and_cache, securities_ensure
from portfolios.tests.factories import PortfolioFactory, option, stock
from sigmasight.accounts.tests.factories import UserFactory

pytestmark = pytest.mark.django_db

FRIDAY, MONDAY = date(2026, 11, 20), date(2026, 11, 23)
EXP = date(2027, 1, 15)
CHAIN = ["market_data", "greeks", "factors"]
GREEK_FIELDS = [f"{name}_pnl" for name in GREEK_PARTS]
VALUES = [
    "date",
    "total_pnl",
    "factor_pnl",
    "specific_pnl",
    "by_factor",
    *GREEK_FIELDS,
]


def close(symbol: str, day: date, value: str) -> None:
    DailyPrice.objects.create(
        security_id=securities_ensure([symbol])[symbol],
        date=day,
        close=Decimal(value),
        source="polygon",
        fetched_at=datetime(2026, 11, 24, tzinfo=UTC),
    )


def greeks_row(position, day: date, **values: float) -> None:
    PositionGreeks.objects.create(
        position=position,
        date=day,
        dollar_delta=values["delta"] * values["underlying_price"],
        volatility_source="implied",
        days_to_expiry=(EXP - day).days,
        computed_at=timezone.now(),
        **values,
    )


def test_hand_worked_stock_and_option_over_a_weekend(user):
    """A stock with a stored Market beta of 1.2 and a call with known Greeks; SPY +1% from
    Friday to Monday (three calendar days of theta)."""
    portfolio = PortfolioFactory(owner=user)
    share = stock(portfolio, "XYZ", "100")
    call = option(portfolio, "XYZ", EXP, "C", "100", "1")
    for symbol, friday, monday in [
        ("SPY", "500", "505"),
        ("XYZ", "100", "102"),
        (call.symbol, "5.00", "6.30"),
    ]:
        close(symbol, FRIDAY, friday)
        close(symbol, MONDAY, monday)
    market = FactorDefinition.objects.get(name="Market")
    for position, dollar in [(share, 12_000.0), (call, 7_200.0)]:  # 1.2 x 10,000 and x 6,000
        PositionFactorExposure.objects.create(
            position=position,
            factor=market,
            date=FRIDAY,
            beta=1.2,
            raw_beta=1.2,
            std_error=0.1,
            dollar_exposure=dollar,
            r_squared=0.5,
            observations=252,
        )
    greeks_row(
        call,
        FRIDAY,
        delta=60.0,
        gamma=4.0,
        vega=15.0,
        theta=-5.0,
        rho=3.0,
        volatility=0.30,
        risk_free_rate=0.04,
        underlying_price=100.0,
    )
    on_monday = {"delta": 70.0, "gamma": 4.0, "vega": 14.0, "theta": -5.5, "rho": 3.1}
    greeks_row(
        call, MONDAY, volatility=0.31, risk_free_rate=0.0405, underlying_price=102.0, **on_monday
    )

    report = attribution_compute(as_of=MONDAY, portfolio_ids=[portfolio.pk])

    assert (report.positions, report.without_yesterday, report.options_explained) == (2, 0, 1)
    rows = {r.position_id: r for r in PositionAttribution.objects.filter(date=MONDAY)}
    # The stock: 2 x 100 = 200; factor 12,000 x 1% = 120.
    assert (rows[share.pk].total_pnl, rows[share.pk].factor_pnl) == pytest.approx((200, 120))
    assert rows[share.pk].specific_pnl == pytest.approx(80)
    assert rows[share.pk].by_factor == pytest.approx({"Market": 120})
    assert all(getattr(rows[share.pk], f) is None for f in GREEK_FIELDS)
    # The call: 1.30 x 100 = 130; factor 7,200 x 1% = 72. Explain: delta 60 x 2, gamma
    # 1/2 x 4 x 2^2, vega 15 x 1 point, theta -5 x 3 days, rho 3 x 0.05 points.
    c = rows[call.pk]
    assert (c.total_pnl, c.factor_pnl, c.specific_pnl) == pytest.approx((130, 72, 58))
    explained = {"delta": 120, "gamma": 8, "vega": 15, "theta": -15, "rho": 0.15}
    assert {k: getattr(c, f"{k}_pnl") for k in explained} == pytest.approx(explained)
    assert c.residual_pnl == pytest.approx(130 - 128.15)
    whole = PortfolioAttribution.objects.get(portfolio=portfolio, date=MONDAY)
    assert (whole.total_pnl, whole.factor_pnl, whole.specific_pnl) == pytest.approx((330, 192, 138))
    assert whole.by_factor == pytest.approx({"Market": 192})
    assert whole.greeks == pytest.approx({**explained, "residual": 1.85})
    assert whole.basis == "stored"


# --- the batch's books ------------------------------------------------------------------------


@pytest.fixture
def attributed(books, batch_session, user, other_user):
    """The batch's two books and three more: options only, shorts only, empty; the chain run
    for the session before and the session, a stock and an option bought in between."""
    first, second = books
    options = PortfolioFactory(owner=user, name="Options", cash=Decimal("20000"))
    option(options, "AAPL", EXP, "C", "500", "2")
    option(options, "AAPL", EXP, "P", "450", "-3")
    shorts = PortfolioFactory(owner=other_user, name="Shorts", cash=Decimal("90000"))
    stock(shorts, "KO", "-300")
    option(shorts, "AAPL", EXP, "C", "600", "-1")
    empty = PortfolioFactory(owner=user, name="Empty")
    previous = previous_trading_day(batch_session)
    for name in CHAIN:
        assert batch.job_run(name, previous).status == "succeeded", name
    new = [stock(first, "JPM", "40"), option(first, "AAPL", EXP, "P", "480", "1")]
    runs = {
        name: batch.job_run(name, batch_session) for name in [*CHAIN, "attribution", "snapshots"]
    }
    assert {r.status for r in runs.values()} == {"succeeded"}
    return {
        "job": runs["attribution"],
        "first": first,
        "second": second,
        "options": options,
        "shorts": shorts,
        "empty": empty,
        "new": new,
    }


def position_rows(day: date) -> pd.DataFrame:
    rows = PositionAttribution.objects.filter(date=day).values(
        "position_id", "position__portfolio_id", "position__option_type", *VALUES[1:]
    )
    return pd.DataFrame.from_records(list(rows)).set_index("position_id")


def test_parts_sum_to_the_days_pnl_for_every_book(attributed, batch_session):
    rows = position_rows(batch_session)
    np.testing.assert_allclose(rows.factor_pnl + rows.specific_pnl, rows.total_pnl, atol=1e-9)
    by_factor = np.array([sum(d.values()) for d in rows.by_factor])
    np.testing.assert_allclose(by_factor, rows.factor_pnl, atol=1e-9)
    options = rows[rows["position__option_type"] != ""]
    explained = options.dropna(subset=GREEK_FIELDS)
    assert len(explained) == len(options) - 1  # the put bought today has no Friday Greeks
    np.testing.assert_allclose(explained[GREEK_FIELDS].sum(axis=1), explained.total_pnl, atol=1e-9)
    assert rows[rows["position__option_type"] == ""][GREEK_FIELDS].isna().all().all()
    books = ["first", "second", "options", "shorts", "empty"]
    frame, _ = book_frame([attributed[b].pk for b in books], batch_session)
    np.testing.assert_allclose(
        rows.total_pnl.reindex(frame["id"]).to_numpy(), frame["daily_pnl"].to_numpy(), atol=1e-9
    )
    for whole in PortfolioAttribution.objects.filter(date=batch_session):
        mine = rows[rows["position__portfolio_id"] == whole.portfolio_id]
        assert whole.total_pnl == pytest.approx(mine.total_pnl.sum(), abs=1e-9)
        assert whole.factor_pnl + whole.specific_pnl == pytest.approx(whole.total_pnl, abs=1e-9)
        assert sum(whole.by_factor.values()) == pytest.approx(whole.factor_pnl, abs=1e-9)
        snapshot = PortfolioSnapshot.objects.get(
            portfolio_id=whole.portfolio_id, date=batch_session
        )
        assert abs(Decimal(f"{whole.total_pnl:.2f}") - snapshot.daily_pnl) <= Decimal("0.01")


def test_factor_pnl_is_yesterdays_dollar_exposure_times_todays_move(attributed, batch_session):
    previous = previous_trading_day(batch_session)
    spy = dict(
        DailyPrice.objects.filter(
            security__symbol="SPY", date__in=[previous, batch_session]
        ).values_list("date", "close")
    )
    move = float(spy[batch_session] / spy[previous] - 1)
    dollar = dict(
        PositionFactorExposure.objects.filter(date=previous, factor__name="Market").values_list(
            "position_id", "dollar_exposure"
        )
    )
    rows = position_rows(batch_session)
    for position_id, exposure in dollar.items():
        assert rows.by_factor[position_id]["Market"] == pytest.approx(exposure * move, rel=1e-12)
    shorts = rows[rows["position__portfolio_id"] == attributed["shorts"].pk]
    assert (shorts.by_factor.map(lambda d: d["Market"]) * np.sign(move) < 0).all()


def test_options_only_and_shorts_only_books(attributed, batch_session):
    for name in ("options", "shorts"):
        whole = PortfolioAttribution.objects.get(portfolio=attributed[name], date=batch_session)
        rows = position_rows(batch_session)
        mine = rows[rows["position__portfolio_id"] == attributed[name].pk]
        options = mine[mine["position__option_type"] != ""]
        assert whole.greeks == pytest.approx(
            {k: options[f"{k}_pnl"].sum() for k in GREEK_PARTS}, abs=1e-9
        )
        assert whole.total_pnl == pytest.approx(mine.total_pnl.sum(), abs=1e-9)
    options_only = PortfolioAttribution.objects.get(
        portfolio=attributed["options"], date=batch_session
    )
    assert sum(options_only.greeks.values()) == pytest.approx(options_only.total_pnl, abs=1e-9)


def test_positions_new_today_are_all_specific(attributed, batch_session):
    job = attributed["job"]
    assert job.counts["positions_without_yesterday"] == 2
    assert job.counts["options_without_greeks"] == 1
    for position in attributed["new"]:
        row = PositionAttribution.objects.get(position=position, date=batch_session)
        assert row.by_factor == {} and row.factor_pnl == 0
        assert row.specific_pnl == row.total_pnl != 0
        assert all(getattr(row, f) is None for f in GREEK_FIELDS)


def test_an_empty_book_has_no_rows_and_does_not_fail(attributed, batch_session):
    assert not PortfolioAttribution.objects.filter(portfolio=attributed["empty"]).exists()
    job = attributed["job"]
    assert job.status == "succeeded" and not job.failed_portfolios
    alone = attribution_compute(as_of=batch_session, portfolio_ids=[attributed["empty"].pk])
    assert (alone.positions, alone.written) == (0, 0)


def test_running_the_job_again_writes_the_same_rows(attributed, batch_session):
    def stored() -> tuple[list, list]:
        return (
            sorted(PositionAttribution.objects.values_list("position_id", *VALUES)),
            sorted(
                PortfolioAttribution.objects.values_list(
                    "portfolio_id", *VALUES[:5], "greeks", "basis"
                )
            ),
        )

    before = stored()
    again = batch.job_run("attribution", batch_session)
    assert again.status == "succeeded"
    assert stored() == before
    # A position closed since: its row for the session goes with the re-run.
    gone = attributed["new"][0]
    gone.closed_at = timezone.now()
    gone.save(update_fields=["closed_at"])
    # And a row older than the snapshots' retention goes too.
    PortfolioAttribution.objects.create(
        portfolio=attributed["first"],
        date=date(2025, 11, 3),
        total_pnl=1.0,
        factor_pnl=0.0,
        specific_pnl=1.0,
        computed_at=timezone.now(),
    )
    batch.job_run("attribution", batch_session)
    assert not PositionAttribution.objects.filter(position=gone).exists()
    assert not PortfolioAttribution.objects.filter(date__lt=batch_session).exists()


# --- the history ------------------------------------------------------------------------------


def test_history_adds_up_to_the_rebuilt_snapshots_over_90_sessions(user, batch_session):
    """A small book rebuilt over 90 sessions: each day's attribution is the rebuilt snapshot's
    P&L (to the cent it is rounded to), so the cumulative attribution is the snapshots'
    cumulative P&L; the factor part uses today's exposures with each day's moves."""
    portfolio = PortfolioFactory(owner=user, cash=Decimal("40000"))
    stock(portfolio, "AAPL", "50")
    stock(portfolio, "KO", "-120")
    option(portfolio, "AAPL", EXP, "C", "520", "2")
    start = sessions_back(batch_session, 350)[0]
    symbols = ["AAPL", "KO", *SERIES]
    prices_fetch_and_cache(
        symbols=symbols, start=start, end=batch_session, providers=[SyntheticProvider()]
    )
    greeks_compute(as_of=batch_session, portfolio_ids=[portfolio.pk])
    assert batch.job_run("factors", batch_session).status == "succeeded"

    assert generate_historical_snapshots(portfolio=portfolio, days_back=90, end=batch_session)
    written = generate_historical_attribution(portfolio=portfolio, days_back=90, end=batch_session)
    assert written == 90 * 4  # three positions and the portfolio, each session

    days = list(
        PortfolioAttribution.objects.filter(portfolio=portfolio)
        .order_by("date")
        .values_list("date", "total_pnl", "factor_pnl", "specific_pnl", "basis")
    )
    snapshots = list(
        PortfolioSnapshot.objects.filter(portfolio=portfolio)
        .order_by("date")
        .values_list("date", "daily_pnl", "cumulative_pnl")
    )
    assert [d[0] for d in days] == [s[0] for s in snapshots] == sessions_back(batch_session, 90)
    assert {d[4] for d in days} == {"pro_forma"}
    cents = [Decimal(f"{total:.2f}") for _, total, *_ in days]
    assert cents == [pnl for _, pnl, _ in snapshots]
    assert sum(cents) == snapshots[-1][2]
    assert sum(t for _, t, *_ in days) == pytest.approx(float(snapshots[-1][2]), abs=90 * 0.005)
    for _, total, factor, specific, _ in days:
        assert factor + specific == pytest.approx(total, abs=1e-9)

    # Today's Market exposure x each day's SPY return.
    spy = (
        pd.Series(
            dict(DailyPrice.objects.filter(security__symbol="SPY").values_list("date", "close"))
        )
        .sort_index()
        .astype(float)
    )
    returns = (spy / spy.shift(1) - 1).reindex(sessions_back(batch_session, 90))
    market = sum(
        PositionFactorExposure.objects.filter(
            position__portfolio=portfolio, date=batch_session, factor__name="Market"
        ).values_list("dollar_exposure", flat=True)
    )
    by_factor = PortfolioAttribution.objects.filter(portfolio=portfolio).order_by("date")
    np.testing.assert_allclose(
        [row.by_factor["Market"] for row in by_factor], market * returns.to_numpy(), rtol=1e-12
    )
    # Rebuilding again writes the same rows.
    before = sorted(PortfolioAttribution.objects.values_list("date", "total_pnl", "factor_pnl"))
    generate_historical_attribution(portfolio=portfolio, days_back=90, end=batch_session)
    assert sorted(PortfolioAttribution.objects.values_list("date", "total_pnl", "factor_pnl")) == (
        before
    )


def test_admin_lists_the_rows_read_only(attributed, client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    for model, count in [
        ("portfolioattribution", PortfolioAttribution.objects.count()),
        ("positionattribution", PositionAttribution.objects.count()),
    ]:
        page = client.get(f"/admin/analytics/{model}/")
        assert page.status_code == 200
        assert f"{count} " in page.content.decode()
        assert client.get(f"/admin/analytics/{model}/add/").status_code == 403
