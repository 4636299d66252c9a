from __future__ import annotations

import pytest

from sigmasight.accounts.tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client_logged_in(client):
    admin = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(admin)
    return client


def test_admin_login_page_served(client):
    response = client.get("/admin/login/")
    assert response.status_code == 200
    assert b"Email" in response.content
    assert b"SigmaSight administration" in response.content


def test_admin_user_search_by_email(admin_client_logged_in):
    UserFactory(email="findme@example.com")
    UserFactory(email="other@example.com")
    response = admin_client_logged_in.get("/admin/accounts/user/", {"q": "findme"})
    assert response.status_code == 200
    assert b"findme@example.com" in response.content
    assert b"other@example.com" not in response.content


def test_admin_add_user_form_uses_email(admin_client_logged_in):
    response = admin_client_logged_in.post(
        "/admin/accounts/user/add/",
        {
            "email": "Added@Example.com",
            "full_name": "Added",
            "password1": "a-long-unusual-passphrase",
            "password2": "a-long-unusual-passphrase",
            "usable_password": "true",
        },
    )
    assert response.status_code == 302, response.content[:2000]
    from sigmasight.accounts.models import User

    assert User.objects.get(email="added@example.com").check_password("a-long-unusual-passphrase")
