"""The alert settings API: defaults until saved (a GET writes nothing), a webhook URL that must be
public https (SSRF targets refused, nothing stored), a signing secret made by the server and shown
once (never by GET, never in the audit log), rotated on request and cleared with the URL."""

from __future__ import annotations

import pytest

from modeling.models import AlertSettings
from sigmasight.audit.models import AuditEvent
from sigmasight.tests.helpers import assert_envelope

pytestmark = pytest.mark.django_db

SETTINGS = "/api/v1/alerts/settings/"
# A public address: an IP literal is checked without a DNS lookup (tests never leave the machine).
HOOK = "https://93.184.216.34/hooks/sigmasight"


@pytest.fixture(autouse=True)
def _public_only(settings) -> None:
    settings.SIGMASIGHT_WEBHOOK_ALLOW_PRIVATE = False


def _put(client, body: dict):
    return client.put(SETTINGS, body, format="json")


def test_alert_settings_default_until_saved_and_a_get_writes_nothing(auth_client):
    response = auth_client.get(SETTINGS)

    assert response.status_code == 200, response.content
    assert response.json() == {
        "email": True,
        "webhook_url": "",
        "webhook_secret_set": False,
        "updated_at": None,
    }
    assert not AlertSettings.objects.exists()


def test_alert_settings_secret_is_made_once_and_never_shown_again(auth_client, user):
    response = _put(auth_client, {"webhook_url": HOOK})

    assert response.status_code == 200, response.content
    body = response.json()
    secret = body["webhook_secret"]
    assert isinstance(secret, str) and len(secret) >= 43  # token_urlsafe(32)
    assert (body["webhook_url"], body["webhook_secret_set"]) == (HOOK, True)
    stored = AlertSettings.objects.get(user=user)
    assert (stored.webhook_url, stored.webhook_secret) == (HOOK, secret)

    shown = auth_client.get(SETTINGS)
    assert "webhook_secret" not in shown.json() and secret not in shown.content.decode()
    assert shown.json()["webhook_secret_set"] is True

    # Changing something else keeps the secret and does not show it.
    kept = _put(auth_client, {"email": False})
    assert kept.status_code == 200, kept.content
    assert kept.json()["webhook_secret"] is None and kept.json()["email"] is False
    stored.refresh_from_db()
    assert (stored.email, stored.webhook_url, stored.webhook_secret) == (False, HOOK, secret)
    # So does another public URL.
    moved = _put(auth_client, {"webhook_url": "https://93.184.216.35/hook"})
    assert moved.json()["webhook_secret"] is None
    stored.refresh_from_db()
    assert stored.webhook_secret == secret


def test_alert_settings_rotate_and_clear_the_secret(auth_client, user):
    first = _put(auth_client, {"webhook_url": HOOK}).json()["webhook_secret"]

    rotated = _put(auth_client, {"rotate_secret": True})

    assert rotated.status_code == 200, rotated.content
    second = rotated.json()["webhook_secret"]
    assert second and second != first
    assert AlertSettings.objects.get(user=user).webhook_secret == second

    cleared = _put(auth_client, {"webhook_url": ""})

    assert cleared.status_code == 200, cleared.content
    assert cleared.json()["webhook_secret_set"] is False
    assert AlertSettings.objects.get(user=user).webhook_secret == ""
    refused = _put(auth_client, {"rotate_secret": True})  # nothing to sign for
    assert "rotate_secret" in assert_envelope(refused, 400, "validation_error")["fields"]


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/hook",
        "https://169.254.169.254/latest/meta-data/",
        "https://10.0.0.8/hook",
        "https://[::1]/hook",
        "https://[::ffff:127.0.0.1]/hook",
        "https://0.0.0.0/hook",
        "http://93.184.216.34/hook",  # not https
        "https://user:pass@93.184.216.34/hook",
        "https://hooks.example.invalid/x",  # does not resolve
        "ftp://93.184.216.34/hook",
        "not a url",
    ],
)
def test_alert_settings_refuse_a_webhook_url_that_is_not_public_https(auth_client, user, url):
    response = _put(auth_client, {"webhook_url": url, "email": False})

    error = assert_envelope(response, 400, "validation_error")
    assert list(error["fields"]) == ["webhook_url"]
    assert not AlertSettings.objects.exists()
    assert not AuditEvent.objects.exists()


def test_alert_settings_refuse_a_secret_sent_by_the_client(auth_client):
    response = _put(auth_client, {"webhook_url": HOOK, "webhook_secret": "mine"})
    assert "webhook_secret" in assert_envelope(response, 400, "validation_error")["fields"]
    assert not AlertSettings.objects.exists()


def test_alert_settings_changes_are_audited_without_the_secret(auth_client, user):
    url = "https://93.184.216.34/services/T000/B000/credential-in-the-path"
    secret = _put(auth_client, {"webhook_url": url}).json()["webhook_secret"]
    _put(auth_client, {"rotate_secret": True})

    events = list(AuditEvent.objects.filter(action="alerts.update").order_by("id"))
    assert [e.details["fields"] for e in events] == [["webhook_url"], []]
    assert [e.details["signing_key_rotated"] for e in events] == [True, True]
    assert events[0].details["webhook_host"] == "93.184.216.34"
    assert all(e.actor_id == user.pk for e in events)
    logged = str([e.details for e in events])
    assert secret not in logged and "credential-in-the-path" not in logged


def test_alert_settings_are_each_users_own(auth_client, other_client, user, other_user):
    _put(auth_client, {"webhook_url": HOOK, "email": False})

    theirs = other_client.get(SETTINGS).json()
    assert (theirs["email"], theirs["webhook_url"], theirs["webhook_secret_set"]) == (
        True,
        "",
        False,
    )
    assert _put(other_client, {"email": False}).json()["webhook_secret"] is None
    mine = AlertSettings.objects.get(user=user)
    assert (mine.webhook_url, bool(mine.webhook_secret)) == (HOOK, True)
    assert AlertSettings.objects.get(user=other_user).webhook_secret == ""


def test_alert_settings_allow_only_get_and_put(auth_client, api_client):
    for method in ("post", "patch", "delete"):
        assert_envelope(getattr(auth_client, method)(SETTINGS, {}, format="json"), 405)
    assert_envelope(api_client.get(SETTINGS), 401, "not_authenticated")


def test_alert_settings_get_query_count(auth_client, user, django_assert_num_queries):
    _put(auth_client, {"webhook_url": HOOK})
    with django_assert_num_queries(2):  # user, settings
        assert auth_client.get(SETTINGS).status_code == 200
