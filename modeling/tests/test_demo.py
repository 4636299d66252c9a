"""The demo (issue 9): `seed_demo` twice, then every demo user through the real API.

The demo is seeded once for the module, inside a transaction rolled back when the module is
done; each test runs in a savepoint of it. The market is the synthetic one (forced, so a
POLYGON_API_KEY in the environment changes nothing) and the network guard is on while seeding.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from decimal import Decimal

import pytest
from celery import Signature
from django.apps import apps
from django.conf import settings
from django.core import mail
from django.core.management import CommandError, call_command

from analytics.models import (
    BatchJob,
    FactorDefinition,
    MarketRiskScenario,
    PortfolioAttribution,
    PortfolioFactorExposure,
    PortfolioSnapshot,
    PositionGreeks,
    RiskMetricSnapshot,
)
from marketdata import calendar
from marketdata.models import DailyPrice, Security
from marketdata.providers import universe
from modeling import demo
from modeling.demo_actions import DIVIDEND_NAMES, SESSIONS_BACK
from portfolios.models import AppliedCorporateAction, Portfolio, Position, Strategy
from sigmasight.accounts.models import User
from sigmasight.audit.models import AuditEvent
from sigmasight.celery import app as celery_app
from sigmasight.tests.helpers import assert_envelope, client_for
from stress.models import StressTestResult

pytestmark = pytest.mark.django_db

RESET = "/api/v1/admin/demo/reset/"
KEYS = [book.key for book in demo.BOOKS]


def row_counts() -> dict[str, int]:
    """Rows in every table of the project (and of Django's and the libraries' apps)."""
    return {m._meta.label: m._default_manager.count() for m in apps.get_models()}


@dataclass(frozen=True)
class Seeded:
    as_of: object
    first_output: str
    second_output: str
    after_first: dict[str, int]
    after_second: dict[str, int]


def _seed_command(*args: str) -> str:
    out = io.StringIO()
    call_command("seed_demo", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


@pytest.fixture(scope="module")
def seeded(module_database):
    first = _seed_command()
    after_first = row_counts()
    second = _seed_command()
    after_second = row_counts()
    return Seeded(calendar.last_completed_session(), first, second, after_first, after_second)


@pytest.fixture
def books(seeded) -> dict[str, tuple[User, Portfolio]]:
    """Each demo book's owner and portfolio, by key."""
    result = {}
    for book in demo.BOOKS:
        user = User.objects.get(email=book.email)
        result[book.key] = (user, Portfolio.objects.get(owner=user))
    return result


def test_seed_demo_twice_leaves_the_same_row_counts(seeded):
    assert seeded.after_second == seeded.after_first
    assert "already there" in seeded.second_output
    assert seeded.after_first["portfolios.Position"] > 0


def test_seed_demo_prints_the_logins_and_urls(seeded):
    for output in (seeded.first_output, seeded.second_output):
        for email in (demo.ADMIN_EMAIL, *demo.DEMO_EMAILS):
            assert email in output
        assert settings.SIGMASIGHT_DEMO_PASSWORD in output
        assert "http://127.0.0.1:8000/api/docs/" in output
        # The workbench's sign-in page comes first, before the logins and the other links.
        assert output.index("http://127.0.0.1:8000/ ") < output.index("Logins")
        assert "http://127.0.0.1:8000/admin/" in output


def test_the_first_seed_ran_the_whole_daily_batch(seeded):
    runs = BatchJob.objects.filter(run_date=seeded.as_of)
    assert sorted(runs.values_list("name", flat=True)) == sorted(
        [
            "corporate_actions",
            "market_data",
            "greeks",
            "factors",
            "attribution",
            "market_risk",
            "snapshots",
            "stress",
            "limits",
            "alerts",
            "retention",
        ]
    )
    assert set(runs.values_list("status", flat=True)) == {"succeeded"}


def test_if_empty_seeds_nothing_when_demo_users_exist(seeded):
    output = _seed_command("--if-empty")
    assert "nothing seeded" in output
    assert demo.ADMIN_EMAIL in output
    assert row_counts() == seeded.after_second


def test_reset_and_if_empty_together_are_refused(seeded):
    with pytest.raises(CommandError, match="contradict"):
        _seed_command("--reset", "--if-empty")


def test_accounts_staff_admin_and_demo_users_log_in(seeded, api_client):
    admin = User.objects.get(email=demo.ADMIN_EMAIL)
    assert admin.is_staff and admin.is_superuser
    for email in (demo.ADMIN_EMAIL, *demo.DEMO_EMAILS):
        response = api_client.post(
            "/api/v1/auth/login/",
            {"email": email, "password": settings.SIGMASIGHT_DEMO_PASSWORD},
            format="json",
        )
        assert response.status_code == 200, (email, response.content)
        assert response.json()["access"]
    assert not User.objects.filter(email__in=demo.DEMO_EMAILS, is_staff=True).exists()


def test_books_hold_15_to_30_positions_with_tags_and_40_tickers_beyond_the_proxies(books):
    proxies = set(FactorDefinition.objects.values_list("etf_proxy", flat=True))
    tickers = set()
    for _, portfolio in books.values():
        positions = list(portfolio.positions.prefetch_related("tags"))
        assert 15 <= len(positions) <= 30
        assert all(p.tags.all() for p in positions), "every demo position carries a tag"
        assert portfolio.strategies.filter(is_detected=False).exists()
        tickers |= {p.underlying_symbol for p in positions}
    assert len(tickers - proxies) >= 40


def test_options_are_live_contracts_near_the_money_priced_from_their_own_close(seeded, books):
    for _, portfolio in books.values():
        options = list(portfolio.positions.exclude(option_type=""))
        assert options
        spots = {
            s.symbol: s.prices.get(date=seeded.as_of).close
            for s in Security.objects.filter(symbol__in={o.underlying_symbol for o in options})
        }
        for option in options:
            assert option.expiration > seeded.as_of
            assert option.entry_date <= seeded.as_of
            assert Decimal("0.8") < option.strike / spots[option.underlying_symbol] < Decimal("1.2")
            assert DailyPrice.objects.filter(security=option.security, date=seeded.as_of).exists()
        sources = PositionGreeks.objects.filter(
            position__in=options, date=seeded.as_of
        ).values_list("volatility_source", flat=True)
        assert sorted(sources) == ["implied"] * len(options)


def test_each_book_has_its_style(books):
    growth, value, balanced = (books[key][1] for key in ("growth", "value", "balanced"))

    def types(portfolio: Portfolio) -> set[str]:
        return set(portfolio.positions.values_list("position_type", flat=True))

    def kinds(portfolio: Portfolio) -> set[str]:
        return set(Strategy.objects.filter(portfolio=portfolio).values_list("kind", flat=True))

    def long_stock_by_sector(portfolio: Portfolio) -> dict[str, Decimal]:
        totals: dict[str, Decimal] = {}
        for p in portfolio.positions.filter(position_type="LONG").select_related("security"):
            sector = p.security.sector
            assert p.exposure is not None  # the seeded book is valued
            totals[sector] = totals.get(sector, Decimal(0)) + p.exposure
        return totals

    tech = long_stock_by_sector(growth)
    tech_share = (tech.get("Technology", 0) + tech.get("Communication Services", 0)) / sum(
        tech.values()
    )
    assert tech_share > Decimal("0.5")
    assert {"LC", "SHORT"} <= types(growth)

    sectors = long_stock_by_sector(value)
    value_share = sum(sectors.get(s, 0) for s in ("Financial Services", "Energy", "Industrials"))
    assert value_share / sum(sectors.values()) > Decimal("0.7")
    assert {"covered_call", "protective_put"} <= kinds(value)

    assert {"collar", "pairs"} <= kinds(balanced)
    assert "SHORT" in types(balanced)
    etfs = balanced.positions.filter(security__asset_type=Security.AssetType.ETF)
    assert etfs.count() >= 3


def test_the_batch_stored_every_result_for_every_book(seeded, books):
    for _, portfolio in books.values():
        for model in (
            PortfolioFactorExposure,
            MarketRiskScenario,
            RiskMetricSnapshot,
            StressTestResult,
        ):
            assert model.objects.filter(portfolio=portfolio, date=seeded.as_of).exists(), model


def _close(a: Decimal, b: Decimal) -> bool:
    return abs(a - b) <= Decimal("1e-6") * max(abs(a), abs(b), Decimal(1))


@pytest.mark.parametrize("key", KEYS)
def test_each_demo_user_gets_consistent_answers(seeded, books, key):
    user, portfolio = books[key]
    client = client_for(user)
    pk = portfolio.pk

    summary = client.get(f"/api/v1/portfolios/{pk}/summary/")
    assert summary.status_code == 200, summary.content
    body = summary.json()
    assert body["as_of"] == seeded.as_of.isoformat()
    exposures = {k: Decimal(body["exposures"][k]) for k in ("gross", "net", "long", "short")}
    assert exposures["long"] > 0
    assert _close(exposures["gross"], exposures["long"] + abs(exposures["short"]))
    assert _close(exposures["net"], exposures["long"] - abs(exposures["short"]))
    assert body["exposures"]["long_count"] + body["exposures"]["short_count"] == (
        portfolio.positions.count()
    )
    assert body["factor_betas"]["Market"] != 0
    assert client.get("/api/v1/portfolio/").json()["portfolio"] == pk

    greeks = client.get(f"/api/v1/risk/greeks/?portfolio={pk}").json()
    assert greeks["as_of"] == seeded.as_of.isoformat()
    assert all(math.isfinite(v) for v in greeks["portfolio"].values())
    option_ids = set(portfolio.positions.exclude(option_type="").values_list("id", flat=True))
    assert option_ids <= {row["position"] for row in greeks["positions"]}

    factors = client.get(f"/api/v1/risk/factors/?portfolio={pk}").json()
    assert factors["factors"]
    assert all(row["observations"] >= 60 for row in factors["factors"])

    metrics = client.get(f"/api/v1/risk/metrics/?portfolio={pk}")
    assert metrics.status_code == 200, metrics.content
    metrics = metrics.json()
    for name in ("var_historical", "var_parametric", "var_monte_carlo", "expected_shortfall"):
        assert math.isfinite(metrics[name]) and metrics[name] != 0, name
    assert metrics["volatility"] > 0

    market = client.get(f"/api/v1/risk/scenarios/market/?portfolio={pk}").json()
    rates = client.get(f"/api/v1/risk/scenarios/rates/?portfolio={pk}").json()
    assert market and rates
    assert {row["move"] for row in market} == {-0.01, 0.01}

    stress = client.get(f"/api/v1/stress/results/{pk}/").json()
    assert stress
    assert {row["date"] for row in stress} == {seeded.as_of.isoformat()}
    assert all(math.isfinite(row["total_pnl"]) and row["worst_positions"] for row in stress)

    series = client.get(f"/api/v1/portfolios/{pk}/exposures/").json()
    sessions = calendar.sessions_back(seeded.as_of, demo.HISTORY_SESSIONS)
    assert [row["date"] for row in series] == [d.isoformat() for d in sessions]
    for row in series:
        long, short = Decimal(row["long"]), Decimal(row["short"])
        assert Decimal(row["gross"]) == long + abs(short)
        assert Decimal(row["net"]) == long - abs(short)
    performance = client.get(f"/api/v1/portfolios/{pk}/performance/").json()
    assert len(performance["series"]) == demo.HISTORY_SESSIONS


def test_each_demo_user_sees_only_their_own_portfolio(books):
    for key, (user, portfolio) in books.items():
        client = client_for(user)
        listed = client.get("/api/v1/portfolios/").json()
        assert [p["id"] for p in listed["results"]] == [portfolio.pk]
        positions = client.get("/api/v1/positions/?page_size=500").json()["results"]
        assert {p["portfolio"] for p in positions} == {portfolio.pk}
        for other_key, (_, other) in books.items():
            if other_key == key:
                continue
            for path in (
                f"/api/v1/portfolios/{other.pk}/",
                f"/api/v1/portfolios/{other.pk}/summary/",
                f"/api/v1/portfolios/{other.pk}/exposures/",
                f"/api/v1/stress/results/{other.pk}/",
                f"/api/v1/risk/metrics/?portfolio={other.pk}",
            ):
                assert_envelope(client.get(path), 404, "not_found")


def test_demo_reset_is_staff_only(seeded, books, api_client):
    assert_envelope(api_client.post(RESET), 401, "not_authenticated")
    demo_user, _ = books["growth"]
    api_client.force_authenticate(demo_user)  # no token row: the counts below stay comparable
    assert_envelope(api_client.post(RESET), 403, "permission_denied")
    assert row_counts() == seeded.after_second


def test_demo_reset_rebuilds_the_demo(seeded, books, staff_user, api_client):
    before = {key: portfolio.pk for key, (_, portfolio) in books.items()}
    api_client.force_authenticate(staff_user)
    response = api_client.post(RESET)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["as_of"] == seeded.as_of.isoformat()
    assert body["price_rows"] == 0  # the cache already held every session
    assert [job["status"] for job in body["batch"]] == ["succeeded"] * 11
    rebuilt = {book["key"]: book["portfolio_id"] for book in body["books"]}
    assert set(rebuilt) == set(KEYS)
    assert not set(rebuilt.values()) & set(before.values())
    assert not Portfolio.objects.filter(pk__in=before.values()).exists()
    for book in body["books"]:
        assert (
            Position.objects.filter(portfolio_id=book["portfolio_id"]).count()
            == (book["positions"])
        )
    counts = row_counts()
    # One more run of each daily job (the log, one chunk record each: the demo is one chunk), the
    # staff caller, the reset's audit event and those of the demo dividends applied again to the
    # rebuilt books (the audit trail outlives what it records); every other table the same.
    assert counts.pop("analytics.BatchJob") == seeded.after_second["analytics.BatchJob"] + 11
    chunks = seeded.after_second["analytics.BatchJobChunk"] + 11
    assert counts.pop("analytics.BatchJobChunk") == chunks
    assert counts.pop("accounts.User") == seeded.after_second["accounts.User"] + 1
    # The demo dividends applied to the rebuilt books, one event per holder.
    dividends = AuditEvent.objects.filter(
        action="corporate_action.apply", portfolio_id__in=rebuilt.values()
    ).count()
    assert dividends == len(DIVIDEND_NAMES)
    assert counts.pop("audit.AuditEvent") == seeded.after_second["audit.AuditEvent"] + 1 + dividends
    # The rebuilt growth book's breach is a new one: its digest's deliveries are queued again
    # (through the outbox when a broker is configured; eager runs send them inline).
    queued = counts.pop("outbox.OutboxTask") - seeded.after_second["outbox.OutboxTask"]
    assert queued == (0 if celery_app.conf.task_always_eager else counts["modeling.AlertDelivery"])
    expected = dict(seeded.after_second)
    del expected["analytics.BatchJob"], expected["accounts.User"], expected["audit.AuditEvent"]
    del expected["analytics.BatchJobChunk"], expected["outbox.OutboxTask"]
    assert counts == expected
    event = AuditEvent.objects.get(action="demo.reset")
    assert (event.actor, event.details) == (staff_user, {"as_of": body["as_of"], "books": 3})


def test_demo_reset_with_a_network_source_is_queued_not_run_in_the_request(
    seeded,
    books,
    staff_user,
    api_client,
    settings,
    django_capture_on_commit_callbacks,
    monkeypatch,
):
    """Polygon or yfinance configured: the reset would fetch prices and run the batch, which a
    web request must not wait for; it is queued for a worker (202) and nothing changes here."""
    from modeling.api import demo as demo_api

    settings.SIGMASIGHT_MARKET_DATA_SOURCE = "yfinance"
    api_client.force_authenticate(staff_user)
    queued: list[Signature] = []
    send_task = demo_api.outbox_send

    def record_and_send(task: Signature) -> str:
        queued.append(task)
        return send_task(task)

    monkeypatch.setattr(demo_api, "outbox_send", record_and_send)
    with django_capture_on_commit_callbacks(execute=False) as sent:
        response = api_client.post(RESET)
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["status"] == "queued" and body["job_id"]
    [task] = queued
    assert len(sent) == 1  # sent after commit (with a broker, through the task outbox)
    assert task.task == "portfolios.demo_reset"
    assert task.id == body["job_id"]
    counts = row_counts()
    counts.pop("outbox.OutboxTask")  # the task waiting for the commit, with a broker
    assert counts.pop("audit.AuditEvent") == seeded.after_second["audit.AuditEvent"] + 1
    assert counts.pop("accounts.User") == seeded.after_second["accounts.User"] + 1  # staff
    expected = dict(seeded.after_second)
    del expected["audit.AuditEvent"], expected["accounts.User"], expected["outbox.OutboxTask"]
    assert counts == expected
    event = AuditEvent.objects.get(action="demo.reset")
    assert event.details == {"queued": body["job_id"]}


def test_the_day_again_on_eager_workers_changes_nothing(seeded, books, eager_celery):
    """The daily chain on the demo-sized books through the Celery tasks (eager): every job
    succeeds, and running the session again writes no new row and the same numbers."""
    from analytics.tasks import run_day

    def numbers() -> list:
        return sorted(
            [
                *StressTestResult.objects.values_list(
                    "portfolio_id", "scenario_id", "correlated_pnl"
                ),
                *RiskMetricSnapshot.objects.values_list(
                    "portfolio_id", "confidence", "var_monte_carlo"
                ),
                *PositionGreeks.objects.values_list("position_id", "date", "delta"),
            ]
        )

    before, values = row_counts(), numbers()
    replies = run_day.apply(args=(seeded.as_of.isoformat(),)).get()
    assert [(r["job"], r["status"]) for r in replies] == [
        (name, "succeeded")
        for name in (
            "corporate_actions",
            "market_data",
            "greeks",
            "factors",
            "attribution",
            "market_risk",
            "snapshots",
            "stress",
            "limits",
            "alerts",
            "retention",
        )
    ]
    after = row_counts()
    assert after.pop("analytics.BatchJob") == before.pop("analytics.BatchJob") + 11
    assert after.pop("analytics.BatchJobChunk") == before.pop("analytics.BatchJobChunk") + 11
    assert after == before
    again = numbers()
    assert [row[:2] for row in again] == [row[:2] for row in values]
    assert [row[2] for row in again] == pytest.approx([row[2] for row in values], rel=1e-12)


def test_the_demo_pays_its_dividend_names_and_prices_their_calls_with_their_yields(seeded, books):
    """JPM and XOM (the value book's covered calls): a quarterly dividend (the synthetic yield /
    4 on the previous close) with an ex-date SESSIONS_BACK sessions before the demo date, credited
    to the holders' cash, in that day's rebuilt P&L (equity moves by exactly the day's P&L), and
    their written calls priced American with the names' yields, the early exercise premium
    stored."""
    before, ex_date = calendar.sessions_back(seeded.as_of, SESSIONS_BACK + 2)[:2]
    applied = list(
        AppliedCorporateAction.objects.filter(ex_date=ex_date).select_related("action__security")
    )
    assert sorted(a.action.security.symbol for a in applied) == sorted(DIVIDEND_NAMES)
    for record in applied:
        symbol = record.action.security.symbol
        close = DailyPrice.objects.get(security__symbol=symbol, date=before).close
        yearly = Decimal(str(universe.DIVIDEND_YIELDS[symbol]))
        assert record.action.cash_amount == (close * yearly / 4).quantize(Decimal("0.01"))
        paid = record.old_quantity * record.old_multiplier * record.action.cash_amount
        assert record.cash == paid.quantize(Decimal("0.01")) > 0
    _, portfolio = books["value"]
    days = {s.date: s for s in PortfolioSnapshot.objects.filter(portfolio=portfolio)}
    received = sum(a.cash for a in applied if a.portfolio_id == portfolio.pk)
    assert days[ex_date].cash - days[before].cash == received > 0
    # Each of the two days rounds to the cent on its own.
    assert abs(days[ex_date].equity - days[before].equity - days[ex_date].daily_pnl) <= 0.02
    calls = PositionGreeks.objects.filter(
        position__portfolio=portfolio,
        position__underlying_symbol__in=DIVIDEND_NAMES,
        date=seeded.as_of,
    )
    assert calls.count() == len(DIVIDEND_NAMES)
    for greeks in calls.select_related("position"):
        symbol = greeks.position.underlying_symbol
        assert greeks.exercise_style == "american"
        assert greeks.dividend_yield == universe.DIVIDEND_YIELDS[symbol] > 0
        assert greeks.early_exercise_premium is not None and greeks.early_exercise_premium >= 0


def test_the_demo_attributes_its_90_sessions_of_pnl(seeded, books):
    """Each demo book's P&L of its 90 rebuilt sessions, by factor and specific: the days' parts
    sum to each day's P&L and the cumulative attribution is the cumulative P&L."""
    for _, portfolio in books.values():
        days = list(PortfolioAttribution.objects.filter(portfolio=portfolio).order_by("date"))
        snapshots = list(PortfolioSnapshot.objects.filter(portfolio=portfolio).order_by("date"))
        assert [d.date for d in days] == [s.date for s in snapshots]
        assert len(days) == demo.HISTORY_SESSIONS
        for day in days:
            assert day.factor_pnl + day.specific_pnl == pytest.approx(day.total_pnl, abs=1e-6)
            assert sum(day.by_factor.values()) == pytest.approx(day.factor_pnl, abs=1e-6)
        cumulative = sum(d.total_pnl for d in days)
        assert cumulative == pytest.approx(
            float(snapshots[-1].cumulative_pnl), abs=0.01 * len(days)
        )
        assert any(abs(d.factor_pnl) > 1 for d in days)  # the factors explain some of it


def test_every_demo_book_has_limits_and_the_growth_book_breaches_its_gross_cap(seeded, books):
    """The demo's limits (modeling/demo_limits.py): the growth book's gross-exposure cap, 90% of
    its stock gross, is a hard breach on the demo date, told once in its owner's digest."""
    from modeling.models import AlertDelivery, Breach, Limit

    for _, portfolio in books.values():
        assert Limit.objects.filter(portfolio=portfolio, is_active=True).count() >= 5
    user, growth = books["growth"]
    cap = Limit.objects.get(portfolio=growth, measure="gross_exposure", unit="money")
    breach = Breach.objects.get(limit=cap)
    snapshot = PortfolioSnapshot.objects.get(portfolio=growth, date=seeded.as_of)
    assert breach.status == "open" and breach.level == "hard"
    assert breach.first_seen == breach.last_seen == seeded.as_of
    # The job read the batch's snapshot; the 90-session history rebuilt after it values the
    # session's options by the model instead of their closes (a few dollars in a million).
    assert breach.value == pytest.approx(float(snapshot.gross_exposure), rel=1e-3)
    assert breach.value > breach.bound_value == cap.hard
    events = list(breach.events.values_list("kind", "session"))
    assert events == [("opened", seeded.as_of)]
    digest = breach.events.get().digest
    assert digest is not None and digest.user == user and digest.session == seeded.as_of
    email = AlertDelivery.objects.get(digest=digest, channel="email")
    assert email.target == user.email
    # Sent at commit by the eager task (the module's seed ran inside the test's transaction,
    # which never commits): sent here through the same task.
    if email.status == "pending":
        from modeling.tasks import deliver_alert

        deliver_alert.apply(args=(email.pk,))
        email.refresh_from_db()
        assert len(mail.outbox) == 1 and cap.name in mail.outbox[0].body
    assert email.status == "sent"
