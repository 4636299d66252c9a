"""`audit_record` itself: what it stores, what it scrubs, and that it never hurts its caller."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from django.db import transaction
from django.test import RequestFactory

from portfolios.models import Tag
from portfolios.tests.factories import PortfolioFactory, TagFactory
from sigmasight.audit.models import AuditEvent
from sigmasight.audit.services import SCRUBBED, audit_record, scrub

pytestmark = pytest.mark.django_db


def _recorded(action: str, **kwargs: Any) -> AuditEvent:
    event = audit_record(action, **kwargs)
    assert event is not None, "the event was not written"
    return event


def test_record_takes_actor_ip_request_id_and_object_from_the_request(user):
    portfolio = PortfolioFactory(owner=user)
    request = RequestFactory().post("/x/", REMOTE_ADDR="203.0.113.7")
    request.user = user
    request.request_id = "req-123"  # type: ignore[attr-defined]  # as RequestLogMiddleware sets it
    event = audit_record("positions.upload", request=request, obj=portfolio, total=3)
    assert event is not None
    event.refresh_from_db()
    assert (event.actor, event.actor_email, event.action) == (user, user.email, "positions.upload")
    assert (event.object_type, event.object_id, event.object_repr) == (
        "portfolios.portfolio",
        str(portfolio.pk),
        portfolio.name,
    )
    assert event.portfolio_id == portfolio.pk
    assert (event.ip, event.request_id, event.details) == ("203.0.113.7", "req-123", {"total": 3})


def test_record_without_request_or_request_id(user):
    request = RequestFactory().get("/", REMOTE_ADDR="not-an-ip")
    event = _recorded("tag.create", request=request, actor=user)
    assert (event.ip, event.request_id, event.actor) == (None, "", user)
    assert _recorded("prices.import", rows=2).actor is None


def test_ip_is_the_throttles_client_address(user, settings):
    factory = RequestFactory()
    forwarded: dict[str, Any] = {
        "REMOTE_ADDR": "10.0.0.2",
        "HTTP_X_FORWARDED_FOR": "6.6.6.6, 198.51.100.9",
    }
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 0}
    assert _recorded("auth.login", actor=user, request=factory.get("/", **forwarded)).ip == (
        "10.0.0.2"
    )
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    assert _recorded("auth.login", actor=user, request=factory.get("/", **forwarded)).ip == (
        "198.51.100.9"
    )


def test_actor_email_survives_the_user(user):
    event = _recorded("auth.login", actor=user)
    email = user.email
    user.delete()
    event.refresh_from_db()
    assert (event.actor, event.actor_email) == (None, email)


def test_details_are_scrubbed_of_secrets_at_any_depth(user):
    token = "eyJhbGciOiJIUzI1NiJ9.eyJ1c2VyX2lkIjoxfQ.c2lnbmF0dXJl"
    event = _recorded(
        "tag.update",
        actor=user,
        password="hunter2-hunter2",
        nested={"Authorization": f"Bearer {token}", "refresh_token": "r", "keep": 1},
        items=[{"client_secret": "s", "API_KEY": "k"}, f"carried {token} along"],
    )
    event.refresh_from_db()
    assert event.details == {
        "password": SCRUBBED,
        "nested": {"Authorization": SCRUBBED, "refresh_token": SCRUBBED, "keep": 1},
        "items": [{"client_secret": SCRUBBED, "API_KEY": SCRUBBED}, f"carried {SCRUBBED} along"],
    }
    assert "hunter2" not in str(event.details) and token not in str(event.details)


def test_scrub_leaves_ordinary_values_alone():
    assert scrub({"mode": "append", "rows": [1, 2], "file": "positions.csv"}) == {
        "mode": "append",
        "rows": [1, 2],
        "file": "positions.csv",
    }


def test_an_event_of_a_rolled_back_change_is_gone(user):
    with pytest.raises(RuntimeError), transaction.atomic():
        TagFactory(owner=user)
        audit_record("tag.create", actor=user)
        raise RuntimeError("the change failed")
    assert not Tag.objects.exists() and not AuditEvent.objects.exists()


def test_a_failed_write_is_logged_and_leaves_the_callers_transaction_usable(user, caplog):
    """portfolio_id is unsigned: the database refuses -1 (a CHECK constraint on SQLite and
    PostgreSQL). Only the event's savepoint is rolled back; the caller's work goes on."""
    with caplog.at_level(logging.ERROR, logger="sigmasight.audit"), transaction.atomic():
        tag = TagFactory(owner=user)
        assert audit_record("tag.create", actor=user, obj=tag, portfolio_id=-1) is None
        assert audit_record("tag.create", actor=user, unserializable=object()) is None
        assert audit_record("no.such.action", actor=user) is None
        assert Tag.objects.filter(pk=tag.pk).exists()
        assert audit_record("tag.create", actor=user, obj=tag) is not None
    assert AuditEvent.objects.count() == 1
    audit_logs = [r.message for r in caplog.records if r.name == "sigmasight.audit"]
    assert audit_logs == ["audit event not recorded"] * 3
