"""Alert digests and their delivery: one digest per user and session with what opened, worsened
or resolved, one email (locmem backend) and one signed webhook to a real HTTPS receiver; a re-run
sends nothing; a receiver that is down is retried and logged; an unsafe URL is refused without
a request; another user's breaches never reach a user's digest; the admin's delivery log."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from modeling.limit_models import AlertDelivery, AlertDigest, AlertSettings, BreachEvent
from modeling.limits import webhooks
from modeling.limits.delivery import alerts_send, delivery_send
from modeling.tasks import deliver_alert
from modeling.tests.alerts.conftest import (
    DAY,
    LATER,
    NEXT,
    Receiver,
    breach_event,
    closed_port,
)
from portfolios.tests.factories import PortfolioFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("eager_celery")]

NOTHING = {"digests": 0, "emails": 0, "webhooks": 0}
BOTH = {"digests": 1, "emails": 1, "webhooks": 1}


@pytest.fixture
def hooked(user, receiver: Receiver) -> AlertSettings:
    """The user's alerts: email on, the webhook at the receiver, which knows the secret."""
    receiver.secret = webhooks.secret_generate()
    return AlertSettings.objects.create(
        user=user, email=True, webhook_url=receiver.url(), webhook_secret=receiver.secret
    )


def send(capture, as_of: date, *portfolios) -> dict[str, int]:
    """alerts_send as the job's chunk calls it, its deliveries run once it commits."""
    with capture(execute=True):
        return alerts_send(as_of=as_of, portfolio_ids=[p.pk for p in portfolios])


def test_alerts_send_one_digest_one_email_one_signed_webhook_then_nothing(
    book, hooked, receiver, mailoutbox, django_capture_on_commit_callbacks
):
    event = breach_event(book)

    assert send(django_capture_on_commit_callbacks, DAY, book) == BOTH

    digest = AlertDigest.objects.get()
    assert (digest.user_id, digest.session) == (book.owner_id, DAY)
    assert list(BreachEvent.objects.values_list("digest", flat=True)) == [digest.pk]
    [item] = digest.body["opened"]
    assert digest.body["session"] == "2026-11-20"
    assert digest.body["worsened"] == digest.body["resolved"] == []
    assert item["breach"] == event.breach_id
    assert item["limit"] | {"params": {}} == {
        "id": event.breach.limit_id,
        "name": "Gross cap",
        "measure": "gross_exposure",
        "params": {},
        "unit": "money",
        "bound": "max",
        "warning": 900_000.0,
        "hard": 1_000_000.0,
    }
    assert item["portfolio"] == {"id": book.pk, "name": "Main book"}
    assert (item["value"], item["level"], item["bound_value"]) == (1_200_000.0, "hard", 1e6)
    assert (item["first_seen"], item["last_seen"]) == ("2026-11-20", "2026-11-20")

    [mail] = mailoutbox
    assert mail.to == [book.owner.email]
    assert mail.subject == (
        "SigmaSight risk limits, session 2026-11-20: 1 opened, 0 worsened, 0 resolved"
    )
    assert "- Gross cap on Main book: 1,200,000.00, above the hard level of 1,000,000.00" in (
        mail.body
    )

    [got] = receiver.received
    assert got.verified
    assert got.json() == digest.body
    assert got.headers["X-SigmaSight-Signature"].startswith("t=")
    sent = {d.channel: d for d in AlertDelivery.objects.all()}
    assert sent["email"].target == book.owner.email
    assert sent["webhook"].target == receiver.url()
    for delivery in sent.values():
        assert (delivery.status, delivery.attempts, delivery.error) == ("sent", 1, "")
        assert delivery.delivered_at is not None
    assert sent["webhook"].response_status == 200
    assert got.headers["X-SigmaSight-Delivery"] == str(sent["webhook"].pk)

    # The same session again (a re-run, another chunk of the same owner): nothing new.
    assert send(django_capture_on_commit_callbacks, DAY, book) == NOTHING
    assert AlertDigest.objects.count() == 1 and len(mailoutbox) == 1
    assert len(receiver.received) == 1


def test_alerts_send_worsening_updates_and_coming_back_resolves(
    book, hooked, receiver, mailoutbox, django_capture_on_commit_callbacks
):
    opened = breach_event(book)
    send(django_capture_on_commit_callbacks, DAY, book)
    # A breach that only persists makes no event, so its next session says nothing.
    assert send(django_capture_on_commit_callbacks, NEXT, book) == NOTHING

    breach_event(book, kind="worsened", session=NEXT, value=1_500_000.0, limit=opened.breach.limit)
    assert send(django_capture_on_commit_callbacks, NEXT, book) == BOTH
    worsened = receiver.received[-1].json()
    assert [item["value"] for item in worsened["worsened"]] == [1_500_000.0]
    assert worsened["opened"] == worsened["resolved"] == []
    assert "1 worsened" in mailoutbox[-1].subject

    breach_event(book, kind="resolved", session=LATER, value=800_000.0, limit=opened.breach.limit)
    assert send(django_capture_on_commit_callbacks, LATER, book) == BOTH
    resolved = receiver.received[-1].json()
    [item] = resolved["resolved"]
    assert (item["value"], item["level"], item["status"]) == (800_000.0, None, "resolved")
    assert "back within its limit at 800,000.00" in mailoutbox[-1].body

    assert len(mailoutbox) == len(receiver.received) == AlertDigest.objects.count() == 3
    assert all(got.verified for got in receiver.received)


def test_alerts_send_one_digest_per_owner_whichever_chunk_holds_the_portfolios(
    book, user, other_user, mailoutbox, django_capture_on_commit_callbacks
):
    second = PortfolioFactory(owner=user, name="Second book", cash=Decimal("1"))
    theirs = PortfolioFactory(owner=other_user, name="Their book", cash=Decimal("1"))
    mine = {breach_event(book).breach_id, breach_event(second).breach_id}
    other = breach_event(theirs).breach_id

    # Two chunks share the owner: the first claims both books' events, the second finds none.
    assert send(django_capture_on_commit_callbacks, DAY, book, theirs) == {
        "digests": 2,
        "emails": 2,
        "webhooks": 0,
    }
    assert send(django_capture_on_commit_callbacks, DAY, second) == NOTHING

    digests = {d.user_id: d for d in AlertDigest.objects.all()}
    assert {i["breach"] for i in digests[user.pk].body["opened"]} == mine
    assert {i["breach"] for i in digests[other_user.pk].body["opened"]} == {other}
    by_address = {mail.to[0]: mail.body for mail in mailoutbox}
    assert set(by_address) == {user.email, other_user.email}
    assert "Their book" not in by_address[user.email]
    assert "Main book" not in by_address[other_user.email]


def test_alerts_send_no_channel_still_marks_the_events_told(
    book, user, mailoutbox, django_capture_on_commit_callbacks
):
    AlertSettings.objects.create(user=user, email=False)
    breach_event(book)
    assert send(django_capture_on_commit_callbacks, DAY, book) == {
        "digests": 1,
        "emails": 0,
        "webhooks": 0,
    }
    assert mailoutbox == [] and not AlertDelivery.objects.exists()
    assert not BreachEvent.objects.filter(digest__isnull=True).exists()


@pytest.mark.parametrize("down", ["closed port", "HTTP 500"])
def test_webhook_to_a_receiver_that_is_down_is_retried_then_failed(
    book, hooked, receiver, mailoutbox, django_capture_on_commit_callbacks, down
):
    if down == "closed port":
        hooked.webhook_url = f"https://localhost:{closed_port()}/hook"
        hooked.save()
    else:
        receiver.status = 500
    breach_event(book)

    assert send(django_capture_on_commit_callbacks, DAY, book) == BOTH

    tries = (deliver_alert.max_retries or 0) + 1
    webhook = AlertDelivery.objects.get(channel="webhook")
    assert (webhook.status, webhook.attempts, webhook.delivered_at) == ("failed", tries, None)
    if down == "closed port":
        assert "ConnectionError" in webhook.error and webhook.response_status is None
        assert receiver.received == []
    else:
        assert (webhook.error, webhook.response_status) == ("The receiver answered HTTP 500.", 500)
        assert len(receiver.received) == tries
        assert all(got.verified for got in receiver.received)
    # The email is a delivery of its own: sent once.
    assert AlertDelivery.objects.get(channel="email").status == "sent" and len(mailoutbox) == 1


def test_webhook_that_recovers_is_sent_on_a_retry(
    book, hooked, receiver, django_capture_on_commit_callbacks, monkeypatch
):
    breach_event(book)
    real_post = webhooks.post
    calls = []

    def flaky(*args, **kwargs):
        calls.append(args)
        receiver.status = 200 if len(calls) > 2 else 503
        return real_post(*args, **kwargs)

    monkeypatch.setattr(webhooks, "post", flaky)
    send(django_capture_on_commit_callbacks, DAY, book)
    webhook = AlertDelivery.objects.get(channel="webhook")
    assert (webhook.status, webhook.attempts, webhook.response_status) == ("sent", 3, 200)
    assert webhook.error == ""
    assert [got.verified for got in receiver.received] == [True, True, True]


@pytest.mark.parametrize(
    "url",
    [
        "https://169.254.169.254/latest/meta-data/",
        "https://10.0.0.7/hook",
        "https://[::ffff:127.0.0.1]:{port}/hook",
        "https://localhost:{port}/hook",  # the receiver itself, loopback
    ],
)
def test_webhook_to_an_unsafe_url_fails_at_once_without_a_request(
    book, hooked, receiver, settings, django_capture_on_commit_callbacks, url
):
    settings.SIGMASIGHT_WEBHOOK_ALLOW_PRIVATE = False
    hooked.webhook_url = url.format(port=receiver.port)
    hooked.save()
    breach_event(book)

    send(django_capture_on_commit_callbacks, DAY, book)

    webhook = AlertDelivery.objects.get(channel="webhook")
    assert (webhook.status, webhook.attempts) == ("failed", 1)
    assert "may not reach" in webhook.error
    assert receiver.received == []


def test_delivery_send_leaves_a_sent_delivery_alone(
    book, hooked, receiver, django_capture_on_commit_callbacks
):
    breach_event(book)
    send(django_capture_on_commit_callbacks, DAY, book)
    webhook = AlertDelivery.objects.get(channel="webhook")
    assert delivery_send(delivery_id=webhook.pk) is None  # a redelivered task
    assert delivery_send(delivery_id=webhook.pk + 1000) is None  # gone
    assert len(receiver.received) == 1
    assert AlertDelivery.objects.get(pk=webhook.pk).attempts == 1


def test_delivery_send_without_a_secret_fails(
    book, user, receiver, django_capture_on_commit_callbacks
):
    AlertSettings.objects.create(user=user, email=False, webhook_url=receiver.url())
    breach_event(book)
    send(django_capture_on_commit_callbacks, DAY, book)
    webhook = AlertDelivery.objects.get()
    assert (webhook.status, webhook.attempts) == ("failed", 1)
    assert "no secret" in webhook.error and receiver.received == []


def test_email_treats_names_as_data(book, user, mailoutbox, django_capture_on_commit_callbacks):
    book.name = "<b>Book</b> & co"
    book.save()
    event = breach_event(book)
    event.breach.limit.name = "=cmd|' /C calc'!A0\u2028Fake line"
    event.breach.limit.save()
    send(django_capture_on_commit_callbacks, DAY, book)
    [mail] = mailoutbox
    assert mail.content_subtype == "plain"
    line = next(line for line in mail.body.splitlines() if "calc" in line)
    assert line.startswith("- =cmd|' /C calc'!A0 Fake line on <b>Book</b> & co: ")
    assert "calc" not in mail.subject and "Book" not in mail.subject


# --- the admin's delivery log -------------------------------------------------------------------


def test_admin_delivery_log_lists_and_retries_failed_deliveries(
    book, hooked, receiver, admin_client, django_capture_on_commit_callbacks
):
    receiver.status = 500
    breach_event(book)
    send(django_capture_on_commit_callbacks, DAY, book)
    failed = AlertDelivery.objects.get(channel="webhook")
    assert failed.status == "failed"

    page = admin_client.get("/admin/modeling/alertdelivery/?status__exact=failed")
    assert page.status_code == 200
    html = page.content.decode()
    assert receiver.url() in html and "The receiver answered HTTP 500." in html
    assert admin_client.get("/admin/modeling/alertdigest/").status_code == 200
    digest = AlertDigest.objects.get()
    assert admin_client.get(f"/admin/modeling/alertdigest/{digest.pk}/change/").status_code == 200
    assert admin_client.get("/admin/modeling/alertdelivery/add/").status_code == 403

    receiver.status = 200
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            "/admin/modeling/alertdelivery/",
            {"action": "retry", "_selected_action": [failed.pk]},
        )
    assert response.status_code == 302
    failed.refresh_from_db()
    assert (failed.status, failed.error, failed.response_status) == ("sent", "", 200)
    assert failed.attempts == (deliver_alert.max_retries or 0) + 2
