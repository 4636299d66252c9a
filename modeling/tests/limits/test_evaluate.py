"""The breach lifecycle of the limits job on stored snapshots written by hand over a few sessions
(so every value is hand-worked): opened once, re-run changes nothing, worsening, acknowledged,
resolved, no going back, a limit on all of a user's portfolios, deactivated limits, missing
values; and the job itself through analytics.batch."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from django.utils import timezone

from analytics import batch
from analytics.models import PortfolioSnapshot
from marketdata.calendar import sessions_back
from modeling.limit_models import Breach, BreachEvent, Limit
from modeling.limits.evaluate import limits_evaluate
from modeling.tests.helpers import AS_OF
from portfolios.tests.factories import PortfolioFactory

pytestmark = pytest.mark.django_db

D1, D2, D3, D4, D5 = sessions_back(AS_OF, 5)


def snap(portfolio, day: date, *, gross: float, equity: float = 1000.0, short: float = 0.0):
    """A stored snapshot: long = gross + short (short negative), cash = equity - net."""
    long = gross + short
    net = long + short
    PortfolioSnapshot.objects.update_or_create(
        portfolio=portfolio,
        date=day,
        defaults={
            "equity": Decimal(str(equity)),
            "market_value": Decimal(str(gross)),
            "cash": Decimal(str(equity - net)),
            "daily_pnl": Decimal("0"),
            "daily_return": 0.0,
            "cumulative_pnl": Decimal("0"),
            "gross_exposure": Decimal(str(gross)),
            "net_exposure": Decimal(str(net)),
            "long_exposure": Decimal(str(long)),
            "short_exposure": Decimal(str(short)),
            "delta_adjusted_exposure": Decimal("0"),
            "greeks": {"delta": 0.0, "gamma": 0.0, "vega": 0.0, "dollar_delta": 0.0},
            "position_count": 2,
            "data_quality": {"unvalued": 0, "missing_greeks": 0},
        },
    )


def gross_limit(owner, portfolio=None, *, hard=100.0, warning=80.0, **extra) -> Limit:
    return Limit.objects.create(
        owner=owner,
        portfolio=portfolio,
        measure=extra.pop("measure", "gross_exposure"),
        unit=extra.pop("unit", "money"),
        bound=extra.pop("bound", "max"),
        hard=hard,
        warning=warning,
        **extra,
    )


def state() -> tuple[list, list]:
    """Every breach and event as stored, to compare before and after a re-run."""
    return (
        list(Breach.objects.order_by("id").values()),
        list(BreachEvent.objects.order_by("id").values()),
    )


def run(day: date, *portfolios) -> dict:
    return limits_evaluate(as_of=day, portfolio_ids=[p.pk for p in portfolios])


@pytest.fixture
def book(user):
    return PortfolioFactory(owner=user, cash=Decimal("1000"))


def test_evaluate_opens_a_breach_once_and_a_rerun_changes_nothing(user, book):
    limit = gross_limit(user, book)
    snap(book, D1, gross=120.0)
    counts = run(D1, book)
    assert counts == {
        "limits": 1,
        "evaluated": 1,
        "opened": 1,
        "worsened": 0,
        "resolved": 0,
        "retired": 0,
        "warnings": {},
    }
    breach = Breach.objects.get()
    assert (breach.limit, breach.portfolio, breach.session) == (limit, book, D1)
    assert (breach.value, breach.bound_value, breach.level, breach.status) == (
        120.0,
        100.0,
        "hard",
        "open",
    )
    assert (breach.first_seen, breach.last_seen, breach.notified_value) == (D1, D1, 120.0)
    event = BreachEvent.objects.get()
    assert (event.breach, event.session, event.kind, event.value, event.level) == (
        breach,
        D1,
        "opened",
        120.0,
        "hard",
    )
    before = state()
    again = run(D1, book)
    assert (again["opened"], again["worsened"], again["resolved"]) == (0, 0, 0)
    assert state() == before


def test_evaluate_follows_worsens_and_resolves(user, book):
    gross_limit(user, book)  # warning 80, hard 100; step 25% of the level crossed
    for day, gross in [(D1, 90.0), (D2, 104.0), (D3, 128.0), (D4, 130.0), (D5, 60.0)]:
        snap(book, day, gross=gross)
    run(D1, book)  # warning: 10 beyond 80
    breach = Breach.objects.get()
    assert (breach.level, breach.bound_value) == ("warning", 80.0)
    assert run(D2, book)["worsened"] == 1  # warning -> hard
    breach.refresh_from_db()
    assert (breach.level, breach.bound_value, breach.value, breach.notified_value) == (
        "hard",
        100.0,
        104.0,
        104.0,
    )
    # 28 beyond hard vs 4 when told: grown 24, not more than 25 (25% of 100): no event
    assert run(D3, book)["worsened"] == 0
    breach.refresh_from_db()
    assert (breach.value, breach.notified_value, breach.last_seen) == (128.0, 104.0, D3)
    # 30 beyond vs 4: grown 26 > 25: worsened
    assert run(D4, book)["worsened"] == 1
    breach.refresh_from_db()
    assert (breach.notified_value, breach.session, breach.first_seen) == (130.0, D4, D1)
    before = state()
    run(D4, book)  # the same session again
    assert state() == before
    assert run(D5, book)["resolved"] == 1
    breach.refresh_from_db()
    assert (breach.status, breach.resolved_on, breach.last_seen, breach.session) == (
        "resolved",
        D5,
        D4,
        D5,
    )
    kinds = list(BreachEvent.objects.order_by("id").values_list("session", "kind", "value"))
    assert kinds == [
        (D1, "opened", 90.0),
        (D2, "worsened", 104.0),
        (D4, "worsened", 130.0),
        (D5, "resolved", 60.0),
    ]
    before = state()
    for day in (D5, D3, D1):  # the same session, and going back: nothing
        assert run(day, book)["opened"] == 0
    assert state() == before


def test_evaluate_reopens_after_a_resolution(user, book):
    gross_limit(user, book)
    snap(book, D1, gross=120.0)
    snap(book, D2, gross=50.0)
    snap(book, D3, gross=85.0)
    run(D1, book)
    run(D2, book)
    assert run(D3, book)["opened"] == 1
    first, second = Breach.objects.order_by("id")
    assert (first.status, second.status, second.level, second.first_seen) == (
        "resolved",
        "open",
        "warning",
        D3,
    )


def test_evaluate_keeps_an_acknowledged_breach_until_its_level_rises(user, book):
    gross_limit(user, book)
    for day, gross in [(D1, 85.0), (D2, 99.0), (D3, 101.0)]:
        snap(book, day, gross=gross)
    run(D1, book)
    Breach.objects.update(status="acknowledged", acknowledged_at=timezone.now())
    # 19 beyond 80 vs 5 when told: grown 14 < 20 (25% of 80), same level: stays acknowledged
    assert run(D2, book)["worsened"] == 0
    breach = Breach.objects.get()
    assert (breach.status, breach.value, breach.last_seen) == ("acknowledged", 99.0, D2)
    assert run(D3, book)["worsened"] == 1  # hard now: open again
    breach.refresh_from_db()
    assert (breach.status, breach.level) == ("open", "hard")


def test_evaluate_an_acknowledged_breach_worsening_at_its_level_stays_acknowledged(user, book):
    gross_limit(user, book, warning=None)
    snap(book, D1, gross=110.0)
    snap(book, D2, gross=140.0)
    run(D1, book)
    Breach.objects.update(status="acknowledged")
    assert run(D2, book)["worsened"] == 1  # 40 beyond vs 10: the user is told again
    assert Breach.objects.get().status == "acknowledged"


def test_evaluate_a_limit_on_all_portfolios_applies_to_each_of_the_owner_s(user, other_user, book):
    second = PortfolioFactory(owner=user, cash=Decimal("1000"))
    theirs = PortfolioFactory(owner=other_user, cash=Decimal("1000"))
    limit = gross_limit(user, None)
    for portfolio, gross in [(book, 120.0), (second, 90.0), (theirs, 500.0)]:
        snap(portfolio, D1, gross=gross)
    counts = run(D1, book, second, theirs)
    assert (counts["limits"], counts["evaluated"], counts["opened"]) == (1, 2, 2)
    assert sorted(Breach.objects.values_list("portfolio_id", "level", "limit_id")) == sorted(
        [(book.pk, "hard", limit.pk), (second.pk, "warning", limit.pk)]
    )
    assert not Breach.objects.filter(portfolio=theirs).exists()
    # Their own limit on the same measure is theirs alone.
    gross_limit(other_user, None, hard=1000.0, warning=400.0)
    assert run(D1, book, second, theirs)["opened"] == 1
    assert Breach.objects.get(portfolio=theirs).limit.owner == other_user


def test_evaluate_never_applies_a_limit_to_another_user_s_portfolio(user, other_user, book):
    theirs = PortfolioFactory(owner=other_user, cash=Decimal("1000"))
    gross_limit(user, theirs)  # written around the API: it must not apply
    snap(theirs, D1, gross=500.0)
    assert run(D1, theirs)["opened"] == 0
    assert not Breach.objects.exists()


def test_evaluate_share_of_equity_min_and_abs_max(user, book):
    # gross 600 on equity 1,000 = 0.6 of equity; short exposure -300 (long 300)
    snap(book, D1, gross=600.0, short=-300.0)
    share = gross_limit(user, book, unit="share_of_equity", hard=0.5, warning=0.4)
    floor = gross_limit(user, book, bound="min", hard=700.0, warning=800.0)
    absolute = gross_limit(
        user, book, measure="short_exposure", bound="abs_max", hard=250.0, warning=200.0
    )
    within = gross_limit(
        user, book, measure="short_exposure", bound="min", hard=-400.0, warning=-350.0
    )
    run(D1, book)
    found = {b.limit_id: (b.value, b.level, b.bound_value) for b in Breach.objects.all()}
    assert found == {
        share.pk: (pytest.approx(0.6), "hard", 0.5),
        floor.pk: (600.0, "hard", 700.0),
        absolute.pk: (-300.0, "hard", 250.0),
    }
    assert within.pk not in found


def test_evaluate_a_missing_value_leaves_the_breach_and_warns(user, book):
    limit = gross_limit(user, book)
    var = gross_limit(user, book, measure="var", hard=10.0, warning=None)
    snap(book, D1, gross=120.0)
    run(D1, book)
    before = state()
    counts = run(D2, book)  # no snapshot on D2
    assert (counts["evaluated"], counts["resolved"]) == (0, 0)
    reasons = counts["warnings"][book.pk]
    assert len(reasons) == 2
    assert reasons[0].startswith(f"limit {limit.pk} (Gross exposure): no portfolio snapshot")
    assert reasons[1].startswith(f"limit {var.pk} (Value at risk): var (historical, 0.95)")
    assert state() == before


def test_evaluate_resolves_a_deactivated_limit_s_breach_without_an_event(user, book):
    limit = gross_limit(user, book)
    snap(book, D1, gross=120.0)
    snap(book, D2, gross=130.0)
    run(D1, book)
    Limit.objects.filter(pk=limit.pk).update(is_active=False)
    counts = run(D2, book)
    assert (counts["limits"], counts["retired"], counts["resolved"]) == (0, 1, 0)
    breach = Breach.objects.get()
    assert (breach.status, breach.resolved_on) == ("resolved", D2)
    assert list(BreachEvent.objects.values_list("kind", flat=True)) == ["opened"]


def test_evaluate_nothing_on_a_day_nyse_is_closed(user, book):
    gross_limit(user, book)
    snap(book, D1, gross=120.0)
    assert run(date(2026, 11, 26), book)["limits"] == 0  # Thanksgiving
    assert not Breach.objects.exists()


def test_evaluate_through_the_limits_job(user, other_user, book):
    theirs = PortfolioFactory(owner=other_user, cash=Decimal("1000"))
    gross_limit(user, None)
    gross_limit(other_user, None, measure="drawdown", hard=50.0, warning=None)
    snap(theirs, D4, gross=10.0, equity=1200.0)
    snap(theirs, D5, gross=10.0, equity=1000.0)  # 200 below its peak of 1,200
    snap(book, D5, gross=120.0)
    job = batch.job_run("limits", D5, portfolio_ids=[book.pk, theirs.pk])
    assert job.status == "succeeded", job.error
    assert job.counts["opened"] == 2
    assert job.counts["evaluated"] == 2
    assert sorted(Breach.objects.values_list("portfolio_id", "value")) == sorted(
        [(book.pk, 120.0), (theirs.pk, 200.0)]
    )
    again = batch.job_run("limits", D5, portfolio_ids=[book.pk, theirs.pk])
    assert again.counts["opened"] == 0 and Breach.objects.count() == 2


def test_evaluate_an_invalid_limit_is_reported_and_its_breach_kept(user, book):
    limit = gross_limit(user, book)
    snap(book, D1, gross=120.0)
    snap(book, D2, gross=10.0)
    run(D1, book)
    Limit.objects.filter(pk=limit.pk).update(params={"confidence": 0.9})  # not a gross param
    counts = run(D2, book)
    assert counts["warnings"][book.pk][0].startswith(f"limit {limit.pk} is invalid")
    assert (counts["resolved"], counts["retired"]) == (0, 0)
    assert Breach.objects.get().status == "open"
