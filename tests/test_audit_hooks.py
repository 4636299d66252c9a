"""Every audited action through its real endpoint: exactly one event with the right actor,
action and object; refused requests record nothing; no password or token is ever stored."""

from __future__ import annotations

import io
from datetime import date
from decimal import Decimal

import pytest
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command

from analytics.models import BatchJob
from marketdata.calendar import sessions_back
from marketdata.providers.synthetic import SyntheticProvider
from marketdata.services import prices_fetch_and_cache
from modeling.models import Report
from portfolios.models import Position, Tag
from portfolios.position_csv import COLUMNS
from portfolios.tests.factories import PortfolioFactory, TagFactory, stock
from portfolios.tests.helpers import as_file, confirm, preview
from sigmasight.accounts.tests.factories import DEFAULT_PASSWORD, UserFactory
from sigmasight.audit.models import AuditEvent
from sigmasight.tests.helpers import assert_envelope, client_for
from stress.models import StressScenario

pytestmark = pytest.mark.django_db

API = "/api/v1"
LOGIN = f"{API}/auth/login/"
AS_OF = date(2026, 11, 20)
HEADER = ",".join(COLUMNS)
CSV = f"{HEADER}\nAAPL,10,150.5,2024-01-02,,,,,,,\nMSFT,-5,300,2024-02-01,,,,,,,\n".encode()


def only_event(action: str | None = None) -> AuditEvent:
    """The one event recorded so far (of `action`, which must be the only action recorded)."""
    events = list(AuditEvent.objects.all())
    assert len(events) == 1, [(e.action, e.details) for e in events]
    if action is not None:
        assert events[0].action == action
    return events[0]


def assert_object(event: AuditEvent, obj, *, actor, portfolio_id=None) -> None:
    assert (event.actor, event.actor_email) == (actor, actor.email)
    assert (event.object_type, event.object_id) == (obj._meta.label_lower, str(obj.pk))
    assert event.portfolio_id == portfolio_id
    assert event.ip == "127.0.0.1"


@pytest.fixture
def portfolio(user):
    return PortfolioFactory(owner=user)


def upload(client, portfolio, raw: bytes = CSV):
    return client.post(
        f"{API}/portfolios/{portfolio.pk}/upload/",
        {"file": SimpleUploadedFile("book.csv", raw, content_type="text/csv"), "mode": "append"},
        format="multipart",
    )


# Logins ------------------------------------------------------------------------------------------
def test_login_success_is_recorded_with_the_user(api_client, user):
    response = api_client.post(LOGIN, {"email": user.email, "password": DEFAULT_PASSWORD})
    assert response.status_code == 200
    event = only_event("auth.login")
    assert (event.actor, event.actor_email, event.ip) == (user, user.email, "127.0.0.1")


def test_login_event_carries_the_request_id_of_the_middleware(api_client, user):
    body = {"email": user.email, "password": DEFAULT_PASSWORD}
    response = api_client.post(LOGIN, body, HTTP_X_REQUEST_ID="trace-7f3a-0001")
    assert response.status_code == 200
    assert only_event("auth.login").request_id == response["X-Request-ID"] != ""


def test_login_failure_is_recorded_with_the_attempted_email(api_client, user):
    response = api_client.post(LOGIN, {"email": user.email.upper(), "password": "wrong-password"})
    assert_envelope(response, 401, "invalid_credentials")
    event = only_event("auth.login_failed")
    assert (event.actor, event.actor_email, event.details) == (None, user.email, {})
    api_client.post(LOGIN, {"email": "nobody@example.com", "password": "wrong-password"})
    assert AuditEvent.objects.filter(actor_email="nobody@example.com").count() == 1


def test_no_event_holds_a_password_or_a_token(api_client, user, other_user):
    bad = "not-the-password-7f3a"
    tokens = api_client.post(LOGIN, {"email": user.email, "password": DEFAULT_PASSWORD}).json()
    assert_envelope(api_client.post(LOGIN, {"email": user.email, "password": bad}), 401)
    refreshed = api_client.post(f"{API}/auth/refresh/", {"refresh": tokens["refresh"]}).json()
    client = client_for(other_user)
    # What credentials() set: private in DRF, so the stubs do not declare it.
    bearer = client._credentials["HTTP_AUTHORIZATION"].split()[1]  # type: ignore[attr-defined]
    assert client.post(f"{API}/tags/", {"name": "Growth"}).status_code == 201
    secrets = [
        DEFAULT_PASSWORD,
        bad,
        tokens["access"],
        tokens["refresh"],
        bearer,
        refreshed["access"],
        refreshed["refresh"],
    ]
    rows = [str(row) for row in AuditEvent.objects.values()]
    assert len(rows) == 3
    assert [secret for secret in secrets for row in rows if secret in row] == []


# The book ----------------------------------------------------------------------------------------
def test_position_upload_is_one_event_on_the_portfolio(auth_client, user, portfolio):
    assert upload(auth_client, portfolio).status_code == 200
    event = only_event("positions.upload")
    assert_object(event, portfolio, actor=user, portfolio_id=portfolio.pk)
    assert event.details == {
        "file": "book.csv",
        "mode": "append",
        "created": 2,
        "updated": 0,
        "total": 2,
    }


def test_a_refused_upload_records_nothing(auth_client, portfolio):
    """Decision: the log records changes; a 400 or 413 upload changed nothing."""
    bad = f"{HEADER}\nAAPL,ten,150.5,2024-01-02,,,,,,,\n".encode()
    assert_envelope(upload(auth_client, portfolio, bad), 400, "validation_error")
    assert not AuditEvent.objects.exists()


def test_another_users_upload_is_refused_and_not_recorded(other_client, portfolio):
    assert_envelope(upload(other_client, portfolio), 404)
    assert not AuditEvent.objects.exists()


def test_admin_position_import_is_recorded_when_confirmed_not_on_preview(client, portfolio):

    admin = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(admin)
    rows = [[portfolio.pk, "AAPL", "10", "150", "2024-01-02", *[""] * 7]]
    page = preview(client, "position", as_file("csv", rows))
    assert page.status_code == 200
    assert not AuditEvent.objects.exists()  # the preview is a dry run, rolled back
    assert confirm(client, "position", page).status_code == 302
    event = only_event("positions.upload")
    assert (event.actor, event.details) == (
        admin,
        {"via": "admin import", "portfolios": [portfolio.pk], "created": 1, "updated": 0},
    )


def test_position_create_update_tags_and_delete(auth_client, user, portfolio):
    body = {
        "portfolio": portfolio.pk,
        "symbol": "NVDA",
        "quantity": "-10",
        "entry_price": "400.25",
        "entry_date": "2024-03-01",
    }
    response = auth_client.post(f"{API}/positions/", body)
    assert response.status_code == 201, response.content
    position = Position.objects.get(pk=response.json()["id"])
    assert_object(only_event("position.create"), position, actor=user, portfolio_id=portfolio.pk)

    AuditEvent.objects.all().delete()
    url = f"{API}/positions/{position.pk}/"
    assert auth_client.patch(url, {"quantity": "-12", "notes": "x"}).status_code == 200
    event = only_event("position.update")
    assert_object(event, position, actor=user, portfolio_id=portfolio.pk)
    assert event.details == {"fields": ["notes", "quantity"]}

    AuditEvent.objects.all().delete()
    tag = TagFactory(owner=user)
    assert auth_client.put(f"{url}tags/", {"tag_ids": [tag.pk]}).status_code == 200
    assert only_event("position.update").details == {"tag_ids": [tag.pk]}

    AuditEvent.objects.all().delete()
    assert auth_client.delete(url).status_code == 204
    event = only_event("position.delete")
    assert (event.object_id, event.portfolio_id, event.actor) == (
        str(position.pk),
        portfolio.pk,
        user,
    )
    assert event.object_repr.startswith("NVDA")


def test_position_changes_by_another_user_are_refused_and_not_recorded(other_client, portfolio):
    position = stock(portfolio, "AAPL", "10")
    url = f"{API}/positions/{position.pk}/"
    assert_envelope(other_client.patch(url, {"quantity": "5"}), 404)
    assert_envelope(other_client.delete(url), 404)
    assert not AuditEvent.objects.exists()


def test_tag_create_update_delete_are_attributed_to_their_user(
    auth_client, other_client, user, other_user
):
    mine = auth_client.post(f"{API}/tags/", {"name": "Income"}).json()["id"]
    theirs = other_client.post(f"{API}/tags/", {"name": "Income"}).json()["id"]
    assert auth_client.patch(f"{API}/tags/{mine}/", {"color": "#112233"}).status_code == 200
    assert_envelope(other_client.delete(f"{API}/tags/{mine}/"), 404)
    assert other_client.delete(f"{API}/tags/{theirs}/").status_code == 204
    events = [
        (e.action, e.actor, e.object_id, e.details) for e in AuditEvent.objects.order_by("id")
    ]
    assert events == [
        ("tag.create", user, str(mine), {}),
        ("tag.create", other_user, str(theirs), {}),
        ("tag.update", user, str(mine), {"fields": ["color"]}),
        ("tag.delete", other_user, str(theirs), {}),
    ]
    assert list(Tag.objects.values_list("pk", flat=True)) == [mine]


# Stress scenarios -------------------------------------------------------------------------------
@pytest.fixture
def library(db):
    call_command("load_stress_scenarios", stdout=io.StringIO())


def test_scenario_create_update_delete(auth_client, other_client, user, library):
    body = {"name": "Mine", "category": "market", "shocks": {"Market": -0.2}}
    created = auth_client.post(f"{API}/stress/scenarios/", body, format="json")
    assert created.status_code == 201, created.content
    scenario = StressScenario.objects.get(pk=created.json()["id"])
    assert_object(only_event("scenario.create"), scenario, actor=user)

    url = f"{API}/stress/scenarios/{scenario.pk}/"
    assert auth_client.patch(url, {"description": "worse"}, format="json").status_code == 200
    assert_envelope(other_client.delete(url), 404)
    library_id = StressScenario.objects.filter(owner__isnull=True).earliest("pk").pk
    assert_envelope(auth_client.delete(f"{API}/stress/scenarios/{library_id}/"), 403)
    assert auth_client.delete(url).status_code == 204
    events = [(e.action, e.actor, e.object_id) for e in AuditEvent.objects.order_by("id")]
    assert events == [
        ("scenario.create", user, str(scenario.pk)),
        ("scenario.update", user, str(scenario.pk)),
        ("scenario.delete", user, str(scenario.pk)),
    ]
    assert AuditEvent.objects.get(action="scenario.update").details == {"fields": ["description"]}


# Operations -------------------------------------------------------------------------------------
def test_batch_trigger_is_recorded_for_the_staff_user(staff_client, staff_user, auth_client):
    assert_envelope(auth_client.post(f"{API}/admin/batch/stress/", {}), 403)
    # The run itself is queued for after the commit, which this test never reaches.
    response = staff_client.post(f"{API}/admin/batch/stress/", {"date": AS_OF.isoformat()})
    assert response.status_code == 202, response.content
    job = BatchJob.objects.get(pk=response.json()["job_id"])
    event = only_event("batch.trigger")
    assert_object(event, job, actor=staff_user)
    assert event.details == {"trigger": "stress", "run_date": "2026-11-20", "portfolios": None}


def test_admin_rerun_records_one_event_per_job(client):
    admin = UserFactory(is_staff=True, is_superuser=True)
    jobs = [
        BatchJob.objects.create(name=name, run_date=AS_OF, status="succeeded")
        for name in ("greeks", "stress")
    ]
    client.force_login(admin)
    response = client.post(
        "/admin/analytics/batchjob/",
        {"action": "rerun", "_selected_action": [job.pk for job in jobs]},
        follow=True,
    )
    assert b"Queued 2 job(s)." in response.content
    events = [
        (e.action, e.actor, e.object_id, e.details) for e in AuditEvent.objects.order_by("id")
    ]
    assert sorted(events, key=lambda e: int(e[2])) == [
        ("batch.rerun", admin, str(job.pk), {"job": job.name}) for job in jobs
    ]


def test_price_import_in_the_admin_is_recorded_and_a_dry_run_is_not(client):
    admin = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(admin)
    raw = b"symbol,date,open,high,low,close,volume\nAAPL,2024-01-02,1,2,0.5,1.5,100\n"
    url = "/admin/marketdata/dailyprice/upload/"
    for dry_run in (True, False):
        form = {"file": SimpleUploadedFile("prices.csv", raw, content_type="text/csv")}
        response = client.post(url, {**form, **({"dry_run": "on"} if dry_run else {})})
        assert response.status_code == 302, response.content[:2000]
    event = only_event("prices.import")
    assert (event.actor, event.details) == (admin, {"rows": 1, "file": "prices.csv"})


def test_price_import_command_is_recorded_without_an_actor(tmp_path):
    path = tmp_path / "prices.csv"
    path.write_bytes(b"symbol,date,open,high,low,close,volume\nAAPL,2024-01-02,1,2,0.5,1.5,100\n")
    call_command("import_prices", str(path), "--dry-run", stdout=io.StringIO())
    call_command("import_prices", str(path), stdout=io.StringIO())
    event = only_event("prices.import")
    assert (event.actor, event.actor_email, event.ip) == (None, "", None)
    assert event.details == {"rows": 1, "file": str(path), "via": "manage.py import_prices"}


# Exports and reports ----------------------------------------------------------------------------
@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


def test_trade_export_and_its_download_are_recorded(
    auth_client, other_client, user, portfolio, media
):
    stock(portfolio, "AAPL", "100")
    prices_fetch_and_cache(
        symbols=["AAPL"],
        start=sessions_back(AS_OF, 5)[0],
        end=AS_OF,
        providers=[SyntheticProvider()],
    )
    sessions = f"{API}/modeling/sessions/"
    body = {"portfolio": portfolio.pk, "name": "what if", "as_of": AS_OF.isoformat()}
    session = auth_client.post(sessions, body, format="json").json()["id"]
    trade = {"symbol": "AAPL", "quantity": "-10", "price": "200"}
    assert auth_client.post(f"{sessions}{session}/trades/", trade, format="json").status_code == 201
    AuditEvent.objects.all().delete()

    response = auth_client.post(f"{API}/export/trades/", {"session": session, "format": "csv"})
    assert response.status_code == 200, response.content
    export_id = response["X-Export-Id"]
    event = only_event("export.create")
    assert (event.actor, event.object_type, event.object_id) == (
        user,
        "modeling.exporthistory",
        export_id,
    )
    assert event.portfolio_id == portfolio.pk
    assert event.details == {"session": session, "format": "csv", "trades": 1}

    AuditEvent.objects.all().delete()
    assert_envelope(other_client.get(f"{API}/export/history/{export_id}/download/"), 404)
    assert auth_client.get(f"{API}/export/history/{export_id}/download/").status_code == 200
    event = only_event("export.download")
    assert (event.actor, event.object_id) == (user, export_id)


def test_report_download_is_recorded_and_a_refused_one_is_not(
    auth_client, other_client, user, portfolio, media
):
    report = Report.objects.create(
        owner=user, portfolio=portfolio, kind="risk_summary", format="csv", status="done"
    )
    report.file.save("risk.csv", ContentFile(b"a,b\n1,2\n"))
    pending = Report.objects.create(owner=user, portfolio=portfolio, kind="stress", format="csv")
    assert_envelope(other_client.get(f"{API}/reports/{report.pk}/download/"), 404)
    assert_envelope(auth_client.get(f"{API}/reports/{pending.pk}/download/"), 404)
    response = auth_client.get(f"{API}/reports/{report.pk}/download/")
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"a,b\n1,2\n"
    event = only_event("report.download")
    assert_object(event, report, actor=user, portfolio_id=portfolio.pk)
    assert event.details == {"format": "csv"}


def test_decimal_and_date_details_are_stored_as_json(user):
    from sigmasight.audit.services import audit_record

    event = audit_record("prices.import", actor=user, price=Decimal("1.50"), day=AS_OF)
    assert event is not None
    event.refresh_from_db()
    assert event.details == {"price": "1.50", "day": "2026-11-20"}
