"""Limits to the user's inbox and webhook through the evening's own jobs (`limits`, then `alerts`,
run by analytics.batch as the day runs them) on stored snapshots written by hand, so every value
is hand-worked: a breach opens once and is told once (one email, one signed webhook to a real
HTTPS receiver that checks the signature); re-running the session tells nothing; a worsening
sends an update; coming back resolves; a second user is told nothing of the first's."""

from __future__ import annotations

import subprocess
import sys
from datetime import date

import pytest

from analytics import batch
from modeling.limit_models import AlertDelivery, AlertDigest, AlertSettings, Breach
from modeling.limits import webhooks
from modeling.tests.alerts.conftest import Receiver
from modeling.tests.limits.test_evaluate import D1, D2, D3, gross_limit, snap
from portfolios.tests.factories import PortfolioFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("eager_celery")]


def evening(capture, day: date, ids: list[int]) -> tuple[dict, dict]:
    """The day's last two jobs, as the batch runs them; the deliveries run once they commit."""
    with capture(execute=True):
        limits = batch.job_run("limits", day, portfolio_ids=ids)
        alerts = batch.job_run("alerts", day, portfolio_ids=ids)
    assert (limits.status, alerts.status) == ("succeeded", "succeeded"), (limits, alerts)
    return limits.counts, alerts.counts


def test_a_breach_is_told_once_updated_when_worse_and_resolved(
    user, other_user, receiver: Receiver, mailoutbox, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    book = PortfolioFactory(owner=user, name="Main book")
    theirs = PortfolioFactory(owner=other_user, name="Their book")
    receiver.secret = webhooks.secret_generate()
    AlertSettings.objects.create(
        user=user, email=True, webhook_url=receiver.url(), webhook_secret=receiver.secret
    )
    cap = gross_limit(user, book, hard=1_000_000.0, warning=900_000.0, name="Gross cap")
    gross_limit(other_user, theirs, hard=1e12, warning=None, name="Never")
    ids = [book.pk, theirs.pk]
    for day, gross in ((D1, 1_200_000.0), (D2, 1_600_000.0), (D3, 500_000.0)):
        for portfolio in (book, theirs):
            snap(portfolio, day, gross=gross, equity=2_000_000.0)

    # Day 1: 1.2m is beyond the hard level: one breach, one digest, one email, one webhook.
    limits, alerts = evening(capture, D1, ids)
    assert limits["opened"] == 1
    assert (alerts["digests"], alerts["emails"], alerts["webhooks"]) == (1, 1, 1)
    breach = Breach.objects.get()
    assert (breach.limit, breach.portfolio, breach.level, breach.status) == (
        cap,
        book,
        "hard",
        "open",
    )
    assert (breach.value, breach.bound_value, breach.first_seen) == (1_200_000.0, 1e6, D1)
    [mail] = mailoutbox
    assert mail.to == [user.email] and "Gross cap on Main book: 1,200,000.00" in mail.body
    [hook] = receiver.received
    assert hook.verified  # the receiver's own HMAC over t + "." + body, with the user's secret
    assert [item["value"] for item in hook.json()["opened"]] == [1_200_000.0]
    assert hook.json()["session"] == D1.isoformat()

    # The same session again: nothing changes, nothing is sent.
    rows = list(Breach.objects.values()), AlertDigest.objects.count()
    limits, alerts = evening(capture, D1, ids)
    assert (limits["opened"], limits["worsened"], alerts["digests"]) == (0, 0, 0)
    assert (list(Breach.objects.values()), AlertDigest.objects.count()) == rows
    assert len(mailoutbox) == 1 and len(receiver.received) == 1

    # Day 2: 1.6m is 600k beyond the level, 400k further than told (> 25% of 1m): an update.
    limits, alerts = evening(capture, D2, ids)
    assert (limits["worsened"], alerts["digests"]) == (1, 1)
    assert [item["value"] for item in receiver.received[-1].json()["worsened"]] == [1_600_000.0]
    assert receiver.received[-1].verified and "1 worsened" in mailoutbox[-1].subject

    # Day 3: back within: resolved, told once.
    limits, alerts = evening(capture, D3, ids)
    assert (limits["resolved"], alerts["digests"]) == (1, 1)
    breach.refresh_from_db()
    assert (breach.status, breach.resolved_on, breach.last_seen) == ("resolved", D3, D2)
    assert [item["value"] for item in receiver.received[-1].json()["resolved"]] == [500_000.0]

    # Three digests, each delivered by both channels, all to the first user only.
    assert AlertDigest.objects.filter(user=user).count() == 3
    assert not AlertDigest.objects.filter(user=other_user).exists()
    assert {m.to[0] for m in mailoutbox} == {user.email} and len(mailoutbox) == 3
    assert len(receiver.received) == 3 and all(got.verified for got in receiver.received)
    assert set(AlertDelivery.objects.values_list("status", flat=True)) == {"sent"}


def test_the_app_s_tasks_are_registered_in_any_django_process():
    """Queued by name from the web or a command (eager without Redis), a task must be known there,
    not only in workers (Celery imports tasks modules at worker start): an unknown name would be
    sent to no broker and the alert never delivered."""
    code = (
        "import django; django.setup(); from sigmasight.celery import app; "
        "print(sorted(n for n in app.tasks if n.startswith('modeling.')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    registered = done.stdout.strip().splitlines()[-1]
    assert "'modeling.deliver_alert'" in registered and "'modeling.generate_report'" in registered
