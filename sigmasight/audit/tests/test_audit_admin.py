"""The audit log in the admin: staff read, filter and search it; nobody adds, edits or deletes."""

from __future__ import annotations

import pytest

from sigmasight.accounts.tests.factories import UserFactory
from sigmasight.audit.models import AuditEvent
from sigmasight.audit.services import audit_record

pytestmark = pytest.mark.django_db

URL = "/admin/audit/auditevent/"


@pytest.fixture
def admin_client(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def events(user, other_user):
    return [
        audit_record("auth.login", actor=user),
        audit_record("tag.create", actor=other_user, note="first"),
        audit_record("auth.login_failed", actor_email="typo@example.com"),
    ]


def listed(response) -> list[AuditEvent]:
    assert response.status_code == 200
    return list(response.context["cl"].result_list)


def test_list_filters_by_action_and_user_and_searches(admin_client, events, other_user):
    login, tag, failed = events
    assert listed(admin_client.get(URL)) == [failed, tag, login]
    assert listed(admin_client.get(URL, {"action": "auth.login"})) == [login]
    assert listed(admin_client.get(URL, {"actor__id__exact": other_user.pk})) == [tag]
    assert listed(admin_client.get(URL, {"q": "typo@"})) == [failed]
    page = admin_client.get(URL).content.decode()
    assert "Login failed" in page and "typo@example.com" in page


def test_events_are_read_only(admin_client, events):
    event = events[0]
    assert admin_client.get(f"{URL}add/").status_code == 403
    detail = admin_client.get(f"{URL}{event.pk}/change/")
    assert detail.status_code == 200 and b'name="_save"' not in detail.content
    assert (
        admin_client.post(f"{URL}{event.pk}/change/", {"action": "tag.delete"}).status_code == 403
    )
    assert admin_client.post(f"{URL}{event.pk}/delete/", {"post": "yes"}).status_code == 403
    assert b"delete_selected" not in admin_client.get(URL).content
    admin_client.post(URL, {"action": "delete_selected", "_selected_action": [event.pk]})
    assert AuditEvent.objects.filter(pk=event.pk, action="auth.login").exists()


def test_staff_without_the_view_permission_and_users_cannot_read_it(client, events):
    client.force_login(UserFactory(is_staff=True))
    assert client.get(URL).status_code == 403
    client.force_login(UserFactory())
    assert client.get(URL).status_code == 302  # to the admin login
