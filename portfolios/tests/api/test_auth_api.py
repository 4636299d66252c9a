"""The auth API: login, refresh, logout (ground) and registration and /me/ (they create and list
portfolios: portfolios.api.account_views), with a second user who never sees the first's."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import override_settings
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from portfolios.models import Portfolio
from sigmasight.accounts.models import User
from sigmasight.accounts.tests.factories import DEFAULT_PASSWORD, UserFactory
from sigmasight.tests.helpers import LOGIN, assert_envelope, client_for

pytestmark = pytest.mark.django_db

REFRESH = "/api/v1/auth/refresh/"
LOGOUT = "/api/v1/auth/logout/"
REGISTER = "/api/v1/auth/register/"
ME = "/api/v1/auth/me/"

NEW_USER = {
    "email": "New.Person@Example.com",
    "password": "a-long-unusual-passphrase",
    "full_name": "New Person",
}


def login(api_client, email: str, password: str = DEFAULT_PASSWORD):
    return api_client.post(LOGIN, {"email": email, "password": password}, format="json")


def test_register_refused_for_anonymous_when_registration_is_closed(api_client):
    assert_envelope(api_client.post(REGISTER, NEW_USER, format="json"), 401, "not_authenticated")
    assert not User.objects.filter(email="new.person@example.com").exists()


def test_register_refused_for_non_staff_when_registration_is_closed(auth_client):
    assert_envelope(auth_client.post(REGISTER, NEW_USER, format="json"), 403, "permission_denied")


def test_register_by_staff_creates_user_and_first_portfolio(staff_client):
    response = staff_client.post(REGISTER, NEW_USER, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["email"] == "new.person@example.com"
    assert body["full_name"] == "New Person"
    portfolio = Portfolio.objects.get(pk=body["portfolio_id"])
    assert portfolio.owner_id == body["id"]
    assert User.objects.get(pk=body["id"]).check_password(NEW_USER["password"])


@override_settings(SIGMASIGHT_OPEN_REGISTRATION=True)
def test_register_open_to_anonymous_when_setting_is_on(api_client):
    response = api_client.post(REGISTER, NEW_USER, format="json")
    assert response.status_code == 201, response.content
    assert login(api_client, "new.person@example.com", NEW_USER["password"]).status_code == 200


def test_register_duplicate_email_case_insensitive(staff_client):
    UserFactory(email="new.person@example.com")
    error = assert_envelope(
        staff_client.post(REGISTER, NEW_USER, format="json"), 400, "validation_error"
    )
    assert error["fields"]["email"] == ["A user with this email already exists."]
    assert User.objects.filter(email="new.person@example.com").count() == 1


@pytest.mark.parametrize(
    "password", ["short1", "password123", "12345678901234", "new.person@example.com"]
)
def test_register_weak_password_rejected_with_field_messages(staff_client, password):
    users_before, portfolios_before = User.objects.count(), Portfolio.objects.count()
    response = staff_client.post(REGISTER, {**NEW_USER, "password": password}, format="json")
    error = assert_envelope(response, 400, "validation_error")
    assert error["fields"]["password"], error
    assert all(isinstance(msg, str) and msg for msg in error["fields"]["password"])
    assert (User.objects.count(), Portfolio.objects.count()) == (users_before, portfolios_before)


def test_register_missing_fields_listed(staff_client):
    error = assert_envelope(staff_client.post(REGISTER, {}, format="json"), 400, "validation_error")
    assert set(error["fields"]) == {"email", "password", "full_name"}


def test_login_with_good_password_returns_token_pair(api_client, user):
    response = login(api_client, user.email.upper())
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 30 * 60
    assert AccessToken(body["access"])["user_id"] == str(user.pk)
    me = api_client.get(ME, HTTP_AUTHORIZATION=f"Bearer {body['access']}")
    assert me.status_code == 200
    assert me.json()["email"] == user.email
    user.refresh_from_db()
    assert user.last_login is not None


def test_login_bad_password_and_unknown_email_answer_the_same(api_client, user):
    wrong_password = assert_envelope(login(api_client, user.email, "not-the-password"), 401)
    unknown_email = assert_envelope(login(api_client, "nobody@example.com", "whatever-it-is"), 401)
    assert wrong_password == unknown_email
    assert wrong_password["code"] == "invalid_credentials"


def test_login_inactive_user_refused_like_bad_password(api_client):
    inactive = UserFactory(is_active=False)
    assert_envelope(login(api_client, inactive.email), 401, "invalid_credentials")


def test_login_validates_body(api_client):
    error = assert_envelope(api_client.post(LOGIN, {"email": "not-an-email"}, format="json"), 400)
    assert set(error["fields"]) == {"email", "password"}


def test_refresh_rotates_and_rejects_reuse_of_rotated_token(api_client, user):
    first = login(api_client, user.email).json()["refresh"]
    rotated = api_client.post(REFRESH, {"refresh": first}, format="json")
    assert rotated.status_code == 200, rotated.content
    body = rotated.json()
    assert set(body) == {"access", "refresh"}
    assert body["refresh"] != first
    assert_envelope(
        api_client.post(REFRESH, {"refresh": first}, format="json"), 401, "token_not_valid"
    )
    assert api_client.post(REFRESH, {"refresh": body["refresh"]}, format="json").status_code == 200


def test_refresh_with_garbage_token_is_401(api_client):
    assert_envelope(
        api_client.post(REFRESH, {"refresh": "not.a.jwt"}, format="json"), 401, "token_not_valid"
    )


def test_logout_then_refresh_rejected(api_client, user):
    tokens = login(api_client, user.email).json()
    client = client_for(user)
    assert client.post(LOGOUT, {"refresh": tokens["refresh"]}, format="json").status_code == 205
    assert_envelope(
        api_client.post(REFRESH, {"refresh": tokens["refresh"]}, format="json"),
        401,
        "token_not_valid",
    )
    assert_envelope(
        client.post(LOGOUT, {"refresh": tokens["refresh"]}, format="json"), 400, "token_not_valid"
    )


def test_logout_cannot_revoke_another_users_token(user, other_user):
    victim_refresh = str(RefreshToken.for_user(user))
    error = assert_envelope(
        client_for(other_user).post(LOGOUT, {"refresh": victim_refresh}, format="json"), 400
    )
    assert "refresh" in error["fields"]
    assert (
        client_for(user).post(REFRESH, {"refresh": victim_refresh}, format="json").status_code
        == 200
    )


def test_expired_access_token_rejected(api_client, user):
    token = AccessToken.for_user(user)
    token.set_exp(lifetime=-timedelta(seconds=1))
    response = api_client.get(ME, HTTP_AUTHORIZATION=f"Bearer {token}")
    assert_envelope(response, 401, "token_not_valid")


def test_me_lists_only_own_portfolios(auth_client, user, other_user):
    mine = Portfolio.objects.create(owner=user, name="Mine")
    Portfolio.objects.create(owner=other_user, name="Theirs")
    body = auth_client.get(ME).json()
    assert body["id"] == user.pk
    assert body["is_staff"] is False
    assert [p["id"] for p in body["portfolios"]] == [mine.pk]
    assert body["portfolios"][0]["cash"] == "0.00"


def test_me_costs_a_fixed_number_of_queries(auth_client, user, django_assert_max_num_queries):
    for n in range(5):
        Portfolio.objects.create(owner=user, name=f"P{n}")
    with django_assert_max_num_queries(3):  # user by token, user + prefetched portfolios
        assert len(auth_client.get(ME).json()["portfolios"]) == 5
